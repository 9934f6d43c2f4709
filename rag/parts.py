"""Question parts: a question that asks several things at once, one clause each.

"Which individual, associated with both the beginning of a criminal trial reported
by TechCrunch and the persuasion of a former Jane Street colleague as detailed by
Fortune, is the same person who has entered a not-guilty plea …?" needs a fact
from a different article for each clause. Searched as one text, the question finds
the articles of its strongest clause; searched part by part, each clause finds its
own (MultiHop-RAG dev, inference questions: every needed article among the
candidate sentences 113 -> 185 of 316). `Answerer` then cites the best sentence of
each part's best article (`pick_per_part`).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import TypeVar

import numpy as np

from rag.cues import NAME_KINDS, STOPWORDS, WORD
from rag.embed import Span
from rag.retrieve import Hit
from rag.sources import Candidate

C = TypeVar("C", bound=Candidate)
H = TypeVar("H", bound="Hit")

_CLAUSE_START = (
    r"the|a|an|in|on|is|was|are|were|has|had|have|does|did|do|what|which|who|whom|whose|according|as|also|after|"
    r"before|this|that|its|his|her|their|how|whether|while|when|where|"
    r"may|might|can|could|will|would|should|must"
)
BOUNDARY = re.compile(
    # A comma or semicolon (not the one of "October 22, 2023" or "1,000"), with the
    # conjunction that may follow it ...
    r"(?<!\d)\s*[,;](?!\s*\d)\s*(?:(?:and|but|while|whereas)\s+)?"
    # ... or a conjunction that starts a new clause ("… and the persuasion of …"; the
    # word whole: "app distribution and in-app payments" goes on).
    r"|\s+(?:and|while|whereas|but)\s+(?=(?:" + _CLAUSE_START + r")(?![\w'\u2019-]))",
    re.I,
)
"""Where one clause of a question ends and the next begins."""

_ATTRIBUTIVE = re.compile(r"\b(the|a|an|another|both)\s+['\"\u2018\u201c]?$", re.I)
"""An outlet named after one of these words names the report that follows it, so no clause ends there."""

_ATTRIBUTION = re.compile(
    r"^\W*(as\s+(\w+\s+){0,2}(by|on|in|from)|according\s+to|"
    r"(reported|discussed|covered|described|mentioned|featured|highlighted|noted)\s+(by|on|in))\b",
    re.I,
)
"""How a piece that says where the clause before it was reported starts: "…, as discussed on TalkSport, …"."""


def content_words(text: str, outlets: Sequence[str] = ()) -> list[str]:
    """The words of `text` that say something: not stop words, not an outlet's name."""
    names = {w.lower() for o in outlets for w in WORD.findall(o)}
    return [w for w in WORD.findall(text) if w.lower() not in STOPWORDS and w.lower() not in names]


def parts(
    question: str, outlets: Sequence[str] = (), min_words: int = 4, max_parts: int = 4
) -> list[Span]:
    """Where the clauses of `question` are (character ranges): split where a clause
    ends (a comma, "and the …") and after each outlet it names ("… as reported by
    Wired, its dominance … according to The Verge"), each part with at least
    `min_words` words that say something (a shorter piece joins the next one, or,
    when it is the last or says where the one before was reported ("as reported by
    Wired"), the one before it); at most `max_parts`, the shortest neighbours
    joined first. A question of one clause is one part."""
    cuts = [(m.start(), m.end()) for m in BOUNDARY.finditer(question)]
    if outlets:
        names = "|".join(re.escape(o) for o in sorted(outlets, key=len, reverse=True))
        cuts += [
            (m.end(1), m.end())
            for m in re.finditer(r"(" + names + r")[\u2019's]*\s+", question, re.I)
            if not _ATTRIBUTIVE.search(question, 0, m.start())  # "the TechCrunch report on …" goes on
        ]
    spans: list[Span] = []
    at = 0
    for start, end in sorted(cuts):
        if start > at:
            spans.append((at, start))
        at = max(at, end)
    if at < len(question):
        spans.append((at, len(question)))

    def words(span: Span) -> int:
        found = content_words(question[span[0] : span[1]], outlets)
        # The kind of name the question's opening asks for ("Which AI company")
        # is nothing to search for: such an opening joins the clause after it.
        return len([w for w in found if not NAME_KINDS.fullmatch(w)] if span[0] == 0 else found)

    def attribution(span: Span) -> bool:
        text = question[span[0] : span[1]]
        return bool(_ATTRIBUTION.match(text)) and any(o.lower() in text.lower() for o in outlets)

    out: list[Span] = []
    for span in spans:
        # A short piece joins the next one, unless it says where the one before was
        # reported ("… for Sir Jim Ratcliffe, as discussed on TalkSport, that also …").
        if out and (words(out[-1]) < min_words or (words(span) < min_words and attribution(span))):
            out[-1] = (out[-1][0], span[1])
        else:
            out.append(span)
    if len(out) > 1 and words(out[-1]) < min_words:
        last = out.pop()
        out[-1] = (out[-1][0], last[1])
    while len(out) > max_parts:
        sizes = [words((a[0], b[1])) for a, b in itertools.pairwise(out)]
        i = sizes.index(min(sizes))
        out[i : i + 2] = [(out[i][0], out[i + 1][1])]
    return out


def with_outlets(part: str, outlets: Sequence[str], named_in_part: Sequence[str]) -> str:
    """The text to search for a part: a part that names no outlet of its own
    searches the question's ("…, according to reports from Sporting News" holds
    for every clause)."""
    return part if named_in_part or not outlets else f"{part} {' '.join(outlets)}"


def pick_per_part(
    ranked: Sequence[C], part_scores: np.ndarray, eligible: np.ndarray | None = None
) -> list[C]:
    """For each part (row of `part_scores`, one column per sentence of `ranked`),
    its best sentence, from an article no earlier pick came from unless that
    article's sentence is clearly the best (the next article scores under 0.9 of
    it). `eligible` (parts, sentences), when given, says which sentences a part
    may take: those of the outlet it names; a part with none eligible takes any."""
    out: list[C] = []
    used: set[str] = set()
    for i, row in enumerate(part_scores):
        allowed = (
            eligible[i] if eligible is not None and eligible[i].any() else np.ones(len(row), bool)
        )
        order = [j for j in np.argsort(-row, kind="stable") if allowed[j]]
        if not order:
            continue
        fresh = next((j for j in order if ranked[j].key[0] not in used), None)
        choice = ranked[
            fresh if fresh is not None and row[fresh] >= 0.9 * row[order[0]] else order[0]
        ]
        if choice not in out:
            out.append(choice)
            used.add(choice.key[0])
    return out


def with_parts(hits: Sequence[H], part_hits: Sequence[Sequence[H]], k: int, lead: int = 1) -> list[H]:
    """The `k` passages to show: the whole question's best `lead`, then each part's
    best chunk in turn (round by round) that is not shown yet, then the rest of
    the whole question's, so every part's evidence is among the first few."""
    out: dict[int, H] = {h.chunk_id: h for h in hits[:lead]}
    for round_ in itertools.zip_longest(*part_hits):
        for h in round_:
            if h is not None and len(out) < k and h.chunk_id not in out:
                out[h.chunk_id] = h
        if len(out) >= min(k, lead + len(part_hits)):
            break
    for h in hits[lead:]:
        if len(out) >= k:
            break
        out.setdefault(h.chunk_id, h)
    return list(out.values())
