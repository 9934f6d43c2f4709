"""Questions that need several sources: the best sentence of each one's best article.

"Do TechCrunch and The Verge both report …", "Which company, according to Engadget
and Wired, …", "… reported on October 31 and on December 15": the answer must bring
a fact from each outlet (or day) the question names, and say plainly which one had
nothing. Retrieval already lets named outlets and days take turns at the top
(`rag.retrieve.interleave`); here each named outlet's best article gives its best
sentence, further articles the question may need follow while they score close to
the best, and the answer is grouped by outlet.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

COMPARISON = re.compile(
    r"\b(both|compared?|comparison|in contrast|contrast(s|ing)?|differ(s|ent|ently|ence)?|(in)?consisten(t|cy)|"
    r"same|similar(ly)?|unlike|while|whereas|versus|vs\.?|either|neither|also|as well as|"
    r"between|chang(e|ed|es)|shift(ed|s)?|agree(s|ment)?|align(s)?|before|after|subsequent(ly)?|another|"
    r"articles|reports|reporting[s]?|sources|outlets)\b",
    re.I,
)
"""Words of a question that reads as a comparison or speaks of several reports."""


class Candidate(Protocol):
    """What a scored sentence must offer (`rag.evidence.ScoredSentence`)."""

    score: float

    @property
    def key(self) -> tuple[str, int]: ...


class Cited(Protocol):
    """What a citation must offer (`rag.answer.Citation`)."""

    n: int
    sentence: str
    source: str


C = TypeVar("C", bound=Candidate)


@dataclass(frozen=True)
class SourceGroup:
    """One outlet's part of a grouped answer: the numbers of its citations, none
    when a named outlet had nothing on the question."""

    source: str
    citations: tuple[int, ...] = ()
    named: bool = True
    """The question names this outlet (an outlet it does not name may still add an article)."""


def named_outlets(question: str, mentioned: Sequence[str]) -> list[str]:
    """The outlets of `mentioned` (as `Retriever.mentioned_sources` found them, any
    case) written with their capitals in the question ("The Age", not "the age of
    AI"), in the order the question names them."""
    from rag.retrieve import outlet_names

    found = []
    for source in mentioned:
        names = "|".join(r"(?<!\w)" + re.escape(name) + r"(?!\w)" for name in outlet_names(source))
        m = re.search(names, question)
        if m:
            found.append((m.start(), source))
    return [source for _, source in sorted(found)]


_KIND = r"(?:article|report|piece|story|coverage|editorial|feature|column|podcast|review|analysis|investigation)s?\b"
_NAME = r"([A-Z][\w.&\u2019-]*(?:\s+(?:of\s+|&\s+)?[A-Z][\w.&\u2019-]*)*)"
_CITED_OUTLET = (
    # "an article by Forbes", "a report from The Wall Street Journal", "a piece in Rolling Stone"
    re.compile(r"\b" + _KIND + r"\s+(?:by|from|in|published by|published in)\s+(?:the\s+)?'?" + _NAME),
    # "a CNET article", "the New York Times report"
    re.compile(r"\b(?:a|an|the)\s+'?" + _NAME + r"'?\s+(?:article|report|piece|story|coverage|editorial|column|podcast)s?\b"),
)
_MONTHS = frozenset("january february march april may june july august september october november december".split())


def unknown_outlets(question: str, known: Sequence[str]) -> list[str]:
    """Outlets the question cites as a source ("according to an article by
    Forbes", "a CNET piece") that no article of the index comes from. Only an
    index whose articles name their outlets can tell; otherwise nothing is unknown."""
    from rag.retrieve import outlet_names

    names = {n.lower() for source in known for n in outlet_names(source)}
    if not names:
        return []
    found = []
    for pattern in _CITED_OUTLET:
        for m in pattern.finditer(question):
            name = m.group(1).strip(".\u2019 ")
            if name.endswith(("'s", "\u2019s")) or name.lower() in _MONTHS:
                continue  # "a report on Google's ...", "a November article"
            bare = re.sub(r"^the\s+", "", name, flags=re.I).lower()
            if bare not in names and not any(bare.startswith(n + " ") for n in names):
                found.append(name)
    return list(dict.fromkeys(found))


def needs_several(question: str, outlets: Sequence[str], days: set[str], clauses: int = 1) -> bool:
    """A question that names two or more outlets or days, or names one and reads as
    a comparison ("Does the TechCrunch article on X, in contrast to the one on Y, …")
    or asks several things of it in `clauses` clauses (`rag.parts`: "Which entity is
    engaged with Amazon …, deploys staff within its new AI Office, and has focused on
    illegal content on X, as reported by TechCrunch?" needs the report of each).
    Comparison words or clauses alone ("also", "while") do not make a question about
    several reports: most questions that use them want one fact."""
    named = bool(outlets or days)
    return len(outlets) > 1 or len(days) > 1 or (named and (clauses > 1 or bool(COMPARISON.search(question))))


def best_per_article(ranked: Sequence[Candidate]) -> list[Candidate]:
    """Each article's best sentence, best articles first (`ranked` is best first)."""
    seen: set[str] = set()
    out = []
    for c in ranked:
        if c.key[0] not in seen:
            seen.add(c.key[0])
            out.append(c)
    return out


def pick_per_source(
    ranked: Sequence[Candidate],
    outlet_of: dict[str, str],
    day_of: dict[str, str],
    outlets: Sequence[str],
    days: set[str],
    max_articles: int,
    keep: float,
    min_named: float,
    first: Sequence[Candidate] = (),
) -> tuple[list[Candidate], list[str]]:
    """The sentences of a multi-source answer, and the named outlets that had nothing.

    First the best sentence of each named outlet's best article (and of each named
    day's best article), when it scores at least `min_named` x the best sentence;
    then the best sentences of further articles that score at least `keep` x the
    best, up to `max_articles` articles in all.

    `first`: sentences picked already (one per part of the question, `rag.parts`);
    a named outlet or day one of them comes from has its sentence."""
    tops = best_per_article(ranked)
    if not tops:
        return [], list(outlets)
    best = tops[0].score
    picked: list[Candidate] = list(first)
    missing = []
    for outlet in outlets:
        if any(outlet_of.get(c.key[0], "").lower() == outlet.lower() for c in first):
            continue
        own = [c for c in tops if outlet_of.get(c.key[0], "").lower() == outlet.lower()]
        if own and own[0].score >= best * min_named:
            if own[0] not in picked:
                picked.append(own[0])
        else:
            missing.append(outlet)
    articles = {c.key[0] for c in picked}
    for day in sorted(days):
        if any(day_of.get(c.key[0], "")[:10] == day for c in first):
            continue
        own = [c for c in tops if day_of.get(c.key[0], "")[:10] == day]
        if own and own[0].score >= best * min_named and own[0].key[0] not in articles and len(articles) < max_articles:
            picked.append(own[0])
            articles.add(own[0].key[0])
    if not picked:
        picked.append(tops[0])
        articles.add(tops[0].key[0])
    # Further articles, not a second sentence of one already cited: two parts of the
    # question often pick the same article, and the next article is what it still needs.
    for c in tops:
        if len(articles) >= max_articles or c.score < best * keep:
            break
        if c.key[0] not in articles:
            picked.append(c)
            articles.add(c.key[0])
    return picked, missing


def in_outlet_order(picked: Sequence[C], outlet_of: dict[str, str], outlets: Sequence[str]) -> tuple[list[C], list[str]]:
    """The picked sentences grouped by outlet: the outlets the question names
    first, in its order, then any other outlet an article came from; within an
    outlet, by article (best first) and position. Also that order of outlets
    (lower-cased), for `source_groups`."""
    order = [o.lower() for o in outlets]
    for c in picked:
        if outlet_of[c.key[0]].lower() not in order:
            order.append(outlet_of[c.key[0]].lower())
    article_rank: dict[str, int] = {}
    for c in picked:
        article_rank.setdefault(c.key[0], len(article_rank))
    ordered = sorted(
        picked,
        key=lambda c: (order.index(outlet_of[c.key[0]].lower()), article_rank[c.key[0]], c.key[1]),
    )
    return ordered, order


def source_groups(citations: Sequence[Cited], order: Sequence[str], outlets: Sequence[str]) -> list[SourceGroup]:
    """Each outlet's citations, in `order`; a named outlet with nothing close
    enough gets an empty group."""
    named = {o.lower() for o in outlets}
    by_outlet: dict[str, list[Cited]] = {}
    for c in citations:
        by_outlet.setdefault(c.source.lower(), []).append(c)
    groups = []
    for key in order:
        own = by_outlet.get(key, [])
        label = own[0].source if own else next(o for o in outlets if o.lower() == key)
        groups.append(SourceGroup(label, tuple(c.n for c in own), named=key in named))
    return groups


def grouped_text(citations: Sequence[Cited], groups: Sequence[SourceGroup]) -> str:
    """"TechCrunch: … [1] The Verge: … [2] Wired: nothing found on this." """
    by_n = {c.n: c for c in citations}
    parts = []
    for g in groups:
        if g.citations:
            parts.append(f"{g.source}: " + " ".join(f"{by_n[n].sentence} [{n}]" for n in g.citations))
    for g in groups:
        if not g.citations:
            parts.append(f"{g.source}: nothing found on this in the indexed articles.")
    return " ".join(parts)
