"""A trained sentence scorer: for a question and its candidate sentences, the
probability that each one answers it.

Logistic regression over cheap features of each (question, sentence) pair, all of
which `Answerer.evidence` already has: cosine similarity, weighted word overlap of
the sentence and of the one before it, the same relative to the question's best
candidate, the chunk's retrieval rank, the sentence's place in its article, its
length, whether it leans on the one before, whether it holds the name, date or
number the question asks for, and whether its outlet or day is one the question
names. A cross-encoder was measured too slow on 2 CPU cores (~45 ms a pair); this
is one small matmul per question. The weights are trained on the development
files by `training/train_scorer.py` (model card: `training/SCORER.md`) and ship
as `training/scorer.json`. A second, question-level regression stacked on the
first (`Scorer.answerable`) says whether any candidate answers; below
`ScorerWeights.abstain_below` the answer refuses.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag import cues
from rag.cues import leans_back, weighted_overlap

WEIGHTS = Path(__file__).resolve().parent / "scorer.json"
"""The shipped weights (pyproject `package-data`)."""

_BASE = (
    "similarity",
    "overlap",
    "overlap_before",
    "similarity_gap",
    "combined_gap",
    "overlap_gap",
    "log_rank",
    "log_chunk_rank",
    "hit_similarity",
    "log_position",
    "log_words",
    "leans_back",
    "lacks_asked",
    "holds_asked",
    "named_outlet",
    "other_outlet",
    "named_day",
    "other_day",
    "article_best_gap",
    "question_words_share",
    "coverage",
    "best_coverage",
    "best_similarity",
)
FEATURES = (*_BASE, *(f"{name} x outlet named" for name in _BASE), "outlet named")
"""The columns `features` computes, in order (the weights file must list the same).
A question that names outlets (MultiHop-RAG's "according to TechCrunch and
Wired") weighs them differently: every feature comes again, multiplied by
whether the question names one (MultiHop-RAG dev first pick 0.528 -> 0.552
under cross-validation, SQuAD 0.790 -> 0.787)."""

ANSWERABLE = ("best_similarity", "best_coverage", "best_logit")
"""What `Scorer.answerable` weighs: the question's best similarity and word
coverage (as the old confidence did) and the log-odds of its best candidate."""


@dataclass(frozen=True)
class ScorerWeights:
    """A fitted logistic regression over `FEATURES` (raw, unscaled units)."""

    names: tuple[str, ...]
    coef: np.ndarray
    intercept: float
    abstain_below: float
    """Refuse when `Scorer.answerable` is below this (chosen on the development
    data to refuse <= 1 % of answerable questions of each data set)."""
    keep_ratio: float
    """Suggested picking rule: keep further sentences whose probability is at
    least this share of the best one's."""
    answerable_coef: np.ndarray
    """Question-level logistic regression over `ANSWERABLE` (`Scorer.answerable`)."""
    answerable_intercept: float

    @classmethod
    def load(cls, path: Path | str = WEIGHTS) -> ScorerWeights:
        """The weights in `path`; a missing or malformed file is an error naming it."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            names = tuple(data["features"])
            coef = np.asarray(data["coef"], dtype=np.float64)
            weights = cls(
                names,
                coef,
                float(data["intercept"]),
                float(data["abstain_below"]),
                float(data["keep_ratio"]),
                np.asarray(data["answerable_coef"], dtype=np.float64),
                float(data["answerable_intercept"]),
            )
        except FileNotFoundError:
            raise FileNotFoundError(f"{path} is missing (it ships with the rag-news package: reinstall it)") from None
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"{path}: not a scorer weights file ({e!r})") from None
        if names != FEATURES or coef.shape != (len(FEATURES),) or weights.answerable_coef.shape != (len(ANSWERABLE),):
            raise ValueError(f"{path}: its features {list(names)} do not match training.scorer.FEATURES {list(FEATURES)}")
        return weights

    def to_json(self) -> dict:
        return {
            "features": list(self.names),
            "coef": [round(float(c), 6) for c in self.coef],
            "intercept": round(self.intercept, 6),
            "abstain_below": round(self.abstain_below, 6),
            "keep_ratio": round(self.keep_ratio, 4),
            "answerable": list(ANSWERABLE),
            "answerable_coef": [round(float(c), 6) for c in self.answerable_coef],
            "answerable_intercept": round(self.answerable_intercept, 6),
        }


def features(
    question: str,
    similarities: Sequence[float],
    asked: set[str],
    words: Sequence[set[str]],
    before: Sequence[set[str]],
    texts: Sequence[str],
    chunk_ranks: Sequence[int],
    hit_similarities: Sequence[float],
    article_ids: Sequence[str],
    positions: Sequence[int],
    sources: Sequence[str],
    published: Sequence[str],
    outlets: Sequence[str] = (),
    days: set[str] | frozenset[str] = frozenset(),
    asks: str | None = None,
) -> np.ndarray:
    """The feature table (len(texts), len(FEATURES)) of one question's candidates.

    `similarities`: cosine of each sentence's vector to the question's; `asked`:
    the question's stemmed content words, `words` / `before` each sentence's and
    its predecessor's (empty when that is not a candidate), as `Answerer._terms`
    makes them; `chunk_ranks`: the rank of the retrieved chunk it came from (0 =
    best) and `hit_similarities` that chunk's similarity; `positions`: sentence
    number in its article; `sources` / `published`: its article's outlet and date;
    `outlets` / `days` / `asks`: what the question names and asks for."""
    n = len(texts)
    per_candidate = {
        "similarities": similarities, "words": words, "before": before, "chunk_ranks": chunk_ranks,
        "hit_similarities": hit_similarities, "article_ids": article_ids, "positions": positions,
        "sources": sources, "published": published,
    }
    for name, values in per_candidate.items():
        if len(values) != n:
            raise ValueError(f"features: {name} has {len(values)} values for {n} candidate texts")
    if n == 0:
        return np.zeros((0, len(FEATURES)))
    table = _base_features(
        question, similarities, asked, words, before, texts, chunk_ranks, hit_similarities,
        article_ids, positions, sources, published, outlets, days, asks,
    )
    named = np.full((n, 1), float(bool(outlets)))
    return np.hstack([table, table * named, named])


def _base_features(
    question: str,
    similarities: Sequence[float],
    asked: set[str],
    words: Sequence[set[str]],
    before: Sequence[set[str]],
    texts: Sequence[str],
    chunk_ranks: Sequence[int],
    hit_similarities: Sequence[float],
    article_ids: Sequence[str],
    positions: Sequence[int],
    sources: Sequence[str],
    published: Sequence[str],
    outlets: Sequence[str],
    days: set[str] | frozenset[str],
    asks: str | None,
) -> np.ndarray:
    n = len(texts)
    sim = np.asarray(similarities, dtype=np.float64)
    own = np.asarray(weighted_overlap(asked, list(words), [set()] * n, 0.0))
    with_before = np.asarray(weighted_overlap(asked, list(words), list(before), 1.0))
    combined = sim + own + 0.5 * (with_before - own)
    order = np.argsort(-combined, kind="stable")
    rank = np.empty(n)
    rank[order] = np.arange(n)
    best_of_article: dict[str, float] = {}
    for a, c in zip(article_ids, combined):
        best_of_article[a] = max(best_of_article.get(a, -math.inf), c)
    # Unweighted share of the question's words in the sentence with the one before:
    # the best of it over the candidates says whether anything here speaks of the
    # question at all (a weighted overlap is relative to the candidates, so it cannot).
    cover = np.array([len(asked & (w | b)) / len(asked) if asked else 0.0 for w, b in zip(words, before)])
    said = cues.question_words(question)
    named = {o.lower() for o in outlets}
    table = np.zeros((n, len(_BASE)))
    for i, text in enumerate(texts):
        holds = asks is not None and cues.holds(text, asks, said)
        source = sources[i].lower()
        day = published[i][:10]
        table[i] = (
            sim[i],
            own[i],
            with_before[i] - own[i],
            sim[i] - sim.max(),
            combined[i] - combined.max(),
            own[i] - own.max(),
            math.log1p(rank[i]),
            math.log1p(chunk_ranks[i]),
            hit_similarities[i],
            math.log1p(positions[i]),
            math.log1p(len(text.split())),
            float(leans_back(text)),
            float(asks is not None and not holds),
            float(holds),
            float(bool(named) and source in named),
            float(bool(named) and source not in named),
            float(bool(days) and day in days),
            float(bool(days) and day not in days),
            combined[i] - best_of_article[article_ids[i]],
            len(asked & words[i]) / len(asked) if asked else 0.0,
            cover[i],
            cover.max(),
            sim.max(),
        )
    return table


def answerable_features(table: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """The `ANSWERABLE` values of one question from its candidates' features and probabilities."""
    if table.shape[0] == 0:
        return np.array([0.0, 0.0, -20.0])
    best = float(np.clip(probabilities.max(), 1e-9, 1 - 1e-9))
    at = {name: i for i, name in enumerate(FEATURES)}
    return np.array([table[0, at["best_similarity"]], table[0, at["best_coverage"]], math.log(best / (1 - best))])


def _sigmoid(z: np.ndarray | float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.asarray(z, dtype=np.float64)))


class Scorer:
    """`Scorer(weights)(table)` -> the probability that each candidate answers;
    `Scorer.answerable(table, probabilities)` -> that any of them does (refuse
    below `weights.abstain_below`)."""

    def __init__(self, weights: ScorerWeights | None = None):
        self.weights = weights or ScorerWeights.load()

    def __call__(self, table: np.ndarray) -> np.ndarray:
        if table.shape[0] == 0:
            return np.zeros(0)
        return _sigmoid(table @ self.weights.coef + self.weights.intercept)

    def answerable(self, table: np.ndarray, probabilities: np.ndarray) -> float:
        """The probability that the question is answered by one of these candidates
        (0 when there are none). Trained on which development questions have an
        answer, so the best candidate's probability (how it compares with its
        neighbours) and the question's best similarity and coverage (how close
        anything came) both count."""
        if table.shape[0] == 0:
            return 0.0
        z = answerable_features(table, probabilities) @ self.weights.answerable_coef
        return float(_sigmoid(z + self.weights.answerable_intercept))
