"""Question -> ranked chunks: dense (FAISS) and lexical (BM25) lists fused by rank.

Fusion is weighted reciprocal rank; news questions that name an outlet ("according
to TechCrunch") or a day ("on October 31, 2023") get chunks of matching articles
lifted, because in a news corpus the outlet and date are often what separates the
right article from ten similar ones. Filters (outlet, date range) restrict both lists.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from datetime import date

import numpy as np

from rag.embed import Embedder
from rag.settings import DEFAULT_K
from rag.store import IndexStore


@dataclass(frozen=True)
class Filters:
    sources: tuple[str, ...] = ()
    """Keep only articles from these outlets (exact names, any case)."""
    date_from: str = ""
    date_to: str = ""
    """ISO dates, inclusive; articles without a date are dropped when either is set."""
    newest_first: bool = False
    """Lift the newest articles ("the latest on ..."); restricts nothing, so it
    does not make the filters true."""

    def __bool__(self) -> bool:
        return bool(self.sources or self.date_from or self.date_to)


def narrowed(filters: Filters | None, outlets: Sequence[str] = (), days: Collection[str] = ()) -> Filters | None:
    """`filters` narrowed to `outlets`, and to the one day of `days` when there is
    exactly one (none: unchanged). What the filters already leave out stays out:
    the reader's filters win."""
    narrow = filters or Filters()
    if outlets:
        allowed = {s.lower() for s in narrow.sources}
        kept = tuple(o for o in outlets if not allowed or o.lower() in allowed)
        narrow = replace(narrow, sources=kept or narrow.sources)
    if len(days) == 1:
        (day,) = days
        if (narrow.date_from or day)[:10] <= day <= (narrow.date_to or day)[:10]:
            narrow = replace(narrow, date_from=day, date_to=day)
    return narrow if narrow != (filters or Filters()) else filters


@dataclass(frozen=True)
class Hit:
    chunk_id: int
    article_id: str
    text: str
    start: int
    end: int
    first_sentence: int
    last_sentence: int
    score: float
    """Fused score: higher is better; comparable only within one question."""
    similarity: float = 0.0
    """Cosine similarity of the question and the chunk."""
    title: str = ""
    source: str = ""
    published: str = ""
    url: str = ""
    path: str = ""


@dataclass
class _Candidate:
    dense_rank: int | None = None
    lexical_rank: int | None = None
    similarity: float = 0.0
    score: float = 0.0


MONTHS = (
    "january", "february", "march", "april", "may", "june",
    "july", "august", "september", "october", "november", "december",
)  # fmt: skip
_MONTH = r"\b(?P<month>" + "|".join(f"{m[:3]}(?:{m[3:]}|\\.)?" for m in MONTHS) + r"|sept\.?)"
# "October 31, 2023", "Oct. 31 2023", "31 October 2023", "2023-10-31".
_DATE_PATTERNS = (
    re.compile(_MONTH + r"\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?,?\s+(?P<year>\d{4})\b", re.I),
    re.compile(r"\b(?P<day>\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?" + _MONTH + r",?\s+(?P<year>\d{4})\b", re.I),
    re.compile(r"\b(?P<year>\d{4})-(?P<month>\d{2})-(?P<day>\d{2})\b"),
)


def mentioned_dates(question: str) -> set[str]:
    """Calendar days named in a question, as ISO dates ("2023-10-31")."""
    found = set()
    for pattern in _DATE_PATTERNS:
        for m in pattern.finditer(question):
            month = m["month"].lower()
            number = int(month) if month.isdigit() else [name[:3] for name in MONTHS].index(month[:3]) + 1
            try:
                found.add(date(int(m["year"]), number, int(m["day"])).isoformat())
            except ValueError:  # "February 30, 2023"
                continue
    return found


def outlet_names(source: str) -> list[str]:
    """How a question may name an outlet: its name without a leading "The", and
    the part before a feed's subtitle ("Cnbc | World Business News Leader",
    "BBC News - Technology", "Live Science: The Most Interesting Articles")."""
    names = [source]
    for separator in (" | ", " - ", ": "):
        if separator in source:
            names.append(source.split(separator)[0])
    bare = [re.sub(r"^the\s+", "", n.strip(), flags=re.I) for n in names]
    return list(dict.fromkeys(n for n in bare if n))


def interleave(ranked: list[int], group_of: dict[int, str]) -> list[int]:
    """Chunks that belong to a group taken in turns, each group's best first
    (groups in the order of their best chunk), then all other chunks.

    A question naming two outlets ("Did TechCrunch and The Verge agree…") or two
    days needs evidence from each; without this the stronger one can fill the top
    ranks. On the MultiHop-RAG dev queries, by outlet: Hits@4 0.816 -> 0.853,
    MAP@10 0.410 -> 0.447."""
    queues: dict[str, list[int]] = {}
    others = []
    for chunk_id in ranked:
        group = group_of.get(chunk_id)
        if group:
            queues.setdefault(group, []).append(chunk_id)
        else:
            others.append(chunk_id)
    turns = [chunk_id for round_ in itertools.zip_longest(*queues.values()) for chunk_id in round_ if chunk_id is not None]
    return turns + others


def groups(ranked: list[int], where: dict[int, tuple[str, str]], named: set[str], days: set[str]) -> dict[int, str]:
    """What takes turns at the top (see `interleave`): the outlets a question
    names, when it names several, else the days it names. `where`: chunk id ->
    (lower-cased outlet, ISO day)."""
    if len(named) > 1:
        return {c: where[c][0] for c in ranked if c in where and where[c][0] in named}
    if len(days) > 1:
        return {c: where[c][1] for c in ranked if c in where and where[c][1] in days}
    return {}


class Retriever:
    """`Retriever(store, embedder)(question, k=DEFAULT_K, filters=None)` -> list[Hit]."""

    def __init__(
        self,
        store: IndexStore,
        embedder: Embedder,
        depth: int = 100,
        rrf_k: int = 10,
        dense_weight: float = 1.0,
        lexical_weight: float = 2.0,
        metadata_weight: float = 2.0,
        date_weight: float = 2.0,
    ):
        """Weights measured on the MultiHop-RAG dev queries (docs/evaluation.md):
        BM25 over title + outlet + text is the stronger list on news questions,
        so it counts double; a small `rrf_k` trusts the top ranks of each list.
        `metadata_weight` lifts chunks of articles from an outlet the question
        names, `date_weight` those published on a day it names."""
        self.store = store
        self.embedder = embedder
        self.depth = depth
        self.rrf_k = rrf_k
        self.dense_weight = dense_weight
        self.lexical_weight = lexical_weight
        self.metadata_weight = metadata_weight
        self.date_weight = date_weight
        self._allowed: dict[tuple, np.ndarray] = {}
        self._load_articles()

    def _load_articles(self) -> None:
        self.sources = sorted((s for s in self.store.sources() if s), key=len, reverse=True)
        # Outlet names as they appear in questions: "The Verge", "TechCrunch", "the Guardian".
        # (Matching the short names of `outlet_names` here too lowered dev Hits@10 0.961 -> 0.959.)
        self._source_patterns = [
            (source, re.compile(r"(?<!\w)" + re.escape(re.sub(r"^the\s+", "", source, flags=re.I)) + r"(?!\w)", re.I))
            for source in self.sources
        ]

    def mentioned_sources(self, question: str) -> list[str]:
        """Outlets of the index named in the question, longest names first."""
        found = []
        for source, pattern in self._source_patterns:
            if pattern.search(question) and not any(source.lower() in f.lower() for f in found):
                found.append(source)
        return found

    def __call__(
        self, question: str, k: int = DEFAULT_K, filters: Filters | None = None, query_vector: np.ndarray | None = None
    ) -> list[Hit]:
        """`query_vector`: the question's (1, dimension) embedding when the caller has it already."""
        candidates: dict[int, _Candidate] = {}
        allowed = self.allowed_chunks(filters) if filters else None
        query = self.embedder([question]) if query_vector is None else query_vector
        for rank, (chunk_id, score) in enumerate(self.dense(query, allowed)):
            candidates.setdefault(chunk_id, _Candidate()).dense_rank = rank
            candidates[chunk_id].similarity = score
        for rank, (chunk_id, _) in enumerate(self.lexical(question, allowed)):
            candidates.setdefault(chunk_id, _Candidate()).lexical_rank = rank
        if not candidates:
            return []
        named = {s.lower() for s in self.mentioned_sources(question)}
        days = mentioned_dates(question)
        newest_first = filters is not None and filters.newest_first
        # Outlet and day of each candidate (lower-cased outlet, ISO day).
        where = self.store.chunk_outlets_and_days(list(candidates)) if named or days or newest_first else {}
        # "The latest on ...": the candidates' newest day first, lifted as a top rank of a list would be.
        recency = {day: rank for rank, day in enumerate(sorted({d for _, d in where.values() if d}, reverse=True))}
        for chunk_id, c in candidates.items():
            c.score = self._rrf(c.dense_rank, self.dense_weight) + self._rrf(c.lexical_rank, self.lexical_weight)
            outlet, day = where.get(chunk_id, ("", ""))
            if outlet in named:
                c.score += self.metadata_weight / self.rrf_k
            if day in days:
                c.score += self.date_weight / self.rrf_k
            if newest_first and day:
                c.score += self._rrf(recency[day], self.date_weight)
        ranked = sorted(candidates, key=lambda chunk_id: -candidates[chunk_id].score)
        ranked = interleave(ranked, groups(ranked, where, named, days))
        best = [(chunk_id, candidates[chunk_id]) for chunk_id in ranked[:k]]
        lexical_only = [chunk_id for chunk_id, c in best if c.dense_rank is None]
        for chunk_id, vector in self.store.chunk_vectors(lexical_only).items():
            candidates[chunk_id].similarity = float(vector @ query[0])  # still report its similarity
        return self._hits(best)

    def allowed_chunks(self, filters: Filters, most: int = 256) -> np.ndarray:
        """Ids of the chunks `filters` let through, kept for the next search with the same
        filters (the parts of a question, and its second look, search one outlet again and
        again): like `sources`, a retriever reads the index as it was when it was made (one
        snapshot, `rag.pipeline`). At most `most` filters are kept."""
        key = (tuple(sorted({s.lower() for s in filters.sources})), filters.date_from, filters.date_to)
        found = self._allowed.get(key)
        if found is None:
            if len(self._allowed) >= most:
                self._allowed.clear()
            found = self.store.chunk_ids_where(filters.sources, filters.date_from, filters.date_to)
            found.flags.writeable = False
            self._allowed[key] = found
        return found

    def _rrf(self, rank: int | None, weight: float) -> float:
        return 0.0 if rank is None else weight / (self.rrf_k + rank + 1)

    def dense(self, query: np.ndarray, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Nearest chunks to the (1, dimension) query vector (only `allowed` ids, when given)."""
        return self.store.segments.dense(query, self.depth, allowed)

    def lexical(self, question: str, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Best chunks by BM25 over title, outlet and text (only `allowed` ids, when given)."""
        return self.store.segments.lexical(question, self.depth, allowed)

    def _hits(self, best: list[tuple[int, _Candidate]]) -> list[Hit]:
        rows = self.store.chunks([chunk_id for chunk_id, _ in best])
        hits = []
        for chunk_id, c in best:
            r = rows.get(chunk_id)
            if r is None:
                continue
            hits.append(
                Hit(
                    chunk_id=chunk_id,
                    article_id=r["article_id"],
                    text=r["text"],
                    start=r["start"],
                    end=r["end"],
                    first_sentence=r["first_sentence"],
                    last_sentence=r["last_sentence"],
                    score=c.score,
                    similarity=c.similarity,
                    title=r["title"] or "",
                    source=r["source"] or "",
                    published=r["published"] or "",
                    url=r["url"] or "",
                    path=r["path"] or "",
                )
            )
        return hits
