"""What an answer is made of: the candidate sentences of the retrieved passages,
each scored against the question (`Answerer.evidence` fills them in), and what the
question asks for. `Answerer.compose` turns it into an answer; the LLM answerer
reuses the same evidence for its sources and its fallback."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from rag.chunk import Sentence
from rag.retrieve import Hit


@dataclass
class ScoredSentence:
    """A candidate sentence of an answer, the passage it was found in, and how well
    it matches the question (filled in by `Answerer.evidence`)."""

    sentence: Sentence
    """Offsets are of the part inside the passage: a passage may hold only a piece
    of an over-long sentence, and that piece is what gets cited."""
    hit: Hit
    vector: np.ndarray
    """The sentence's unit vector from the build."""
    score: float = 0.0
    """similarity + `Answerer.overlap_weight` x weighted word overlap."""
    similarity: float = 0.0
    """Cosine similarity to the question."""

    @property
    def key(self) -> tuple[str, int]:
        """(article id, position): which sentence of which article."""
        return self.sentence.article_id, self.sentence.position

    @property
    def text(self) -> str:
        return self.sentence.text


@dataclass
class Evidence:
    """What an answer is made of: the passages, and their sentences best first."""

    question: str
    query: str
    passages: list[Hit]
    sentences: list[ScoredSentence]
    confidence: float
    abstain: bool
    outlets: list[str] = field(default_factory=list)
    """Outlets the question names, in its order."""
    days: set[str] = field(default_factory=set)
    """Days the question names (ISO)."""
    several: bool = False
    """The question needs several sources (`rag.sources.needs_several`)."""
    asks: str | None = None
    """What the question asks for (`rag.cues.asks_for`)."""
    unknown_outlets: list[str] = field(default_factory=list)
    """Outlets the question cites that no indexed article comes from."""
    parts: list[str] = field(default_factory=list)
    """The clauses of a question that needs several sources (`rag.parts`), when it has more than one."""
    part_scores: np.ndarray | None = None
    """How well each sentence of `sentences` matches each part: (parts, sentences)."""
    part_eligible: np.ndarray | None = None
    """(parts, sentences): the sentences of the outlet a part names."""


def by_best_sentence(hits: list[Hit], sentences: list[ScoredSentence]) -> list[Hit]:
    """The passages whose sentences were read, best sentence first; passages
    none of whose sentences were read keep their order, after them. A chunk's
    best sentence says better than its fused retrieval rank whether it holds
    what was asked (MultiHop-RAG dev MRR@10 0.690 -> 0.745)."""
    best: dict[int, float] = {}
    for c in sentences:  # best first
        best.setdefault(c.hit.chunk_id, c.score)
    read = sorted((h for h in hits if h.chunk_id in best), key=lambda h: -best[h.chunk_id])
    return read + [h for h in hits if h.chunk_id not in best]


def cited_first(passages: list[Hit], cited: list[ScoredSentence]) -> list[Hit]:
    """The passages to show, as many as `passages`: those holding a cited sentence first,
    best sentence first, then the rest in their order. A reader looks for an answer's
    sources among the first passages; a multi-source answer cites chunks that a single
    ranking spreads out or leaves below the first ten (MultiHop-RAG dev: MRR@10
    0.745 -> 0.768, MAP@10 0.500 -> 0.539, all evidence in the top 10 0.454 -> 0.471)."""
    lead: dict[int, Hit] = {}
    for c in sorted(cited, key=lambda c: -c.score):
        lead.setdefault(c.hit.chunk_id, c.hit)
    return [*lead.values(), *(h for h in passages if h.chunk_id not in lead)][: len(passages)]


def lifted(evidence: Evidence, lift: np.ndarray) -> Evidence:
    """`evidence` with each sentence's scores, against the whole question and each part, raised
    by `lift` (one number per sentence of `evidence.sentences`), and the sentences re-ranked."""
    scores = np.array([c.score for c in evidence.sentences]) + lift
    order = np.argsort(-scores, kind="stable")
    sentences = [replace(evidence.sentences[i], score=float(scores[i])) for i in order]
    part_scores = None if evidence.part_scores is None else (evidence.part_scores + lift)[:, order]
    eligible = None if evidence.part_eligible is None else evidence.part_eligible[:, order]
    return replace(evidence, sentences=sentences, part_scores=part_scores, part_eligible=eligible)
