"""BM25 over the chunks of one index segment (bm25s), scored with the index-wide
statistics (document frequencies, number and average length of the live chunks)
so that a chunk scores the same whatever segment holds it and whatever was
removed: an index built in several steps ranks as one built at once."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import Stemmer

if TYPE_CHECKING:
    import bm25s

# bm25s (and scipy under it, ~0.35 s) is imported where it is used: `rag stats`, a refusal
# of a foreign index and the start of a process that opens an index do not need it.

IDS_FILE = "chunk_ids.json"
LENGTHS_FILE = "chunk_lengths.npy"
"""Each chunk's length in words as BM25 counts them (segments written before it
existed keep their own average length: `_Posting`)."""
ROUNDING = 1 + 1e-4
"""Margin on score bounds for float32 rounding in sums of word scores."""
PRUNE_MIN_CHUNKS = 20_000
"""Segments this large are searched with MaxScore (`LexicalIndex.best`); smaller ones
by scoring every chunk, which is quicker there (MaxScore's own steps cost 0.37
against 0.24 ms at 10k chunks), while at 973k MaxScore takes 2.7 ms against 17.7
(bench/lexical.py, docs/benchmarks.md)."""
SEED_CHUNKS_PER_RESULT = 4
"""The first threshold comes from at least this many chunks per result wanted."""
SAMPLE = 4096
"""Values sampled to estimate a cut among many (`_top_cut`)."""
SEARCH_STEPS = 16
"""About how many steps a binary search in a posting list takes: candidates are
looked up one by one while they are this many times fewer than the postings."""


def _top_cut(values: np.ndarray, count: int) -> float:
    """A value that about `count` of `values` reach (at least `count` of them),
    estimated from a sample: a full partition of many values costs more."""
    sample = values[:: max(1, len(values) // SAMPLE)]
    rank = len(sample) - 1 - count * len(sample) // len(values)  # the sample's share of `count`
    cut = float(np.partition(sample, rank)[rank])
    if np.count_nonzero(values >= cut) < count:  # the sample missed: take the exact one
        cut = float(np.partition(values, len(values) - count)[len(values) - count])
    return cut


@dataclass(frozen=True)
class _Posting:
    """One question word's chunks (positions in the segment, ascending) with their
    stored bm25s scores, and what turns those into index-wide scores.

    bm25s stores idf x tf-part per (chunk, word), both from the segment's own
    statistics. With the chunk's length known, the term frequency comes back
    exactly (an integer) and the score is computed anew with the index-wide idf
    and average length; without lengths (an older segment), only the idf is
    replaced (`factor`)."""

    chunks: np.ndarray
    scores: np.ndarray
    factor: np.float32
    """Index-wide idf / segment idf."""
    upper: float
    """The highest index-wide score it gives any chunk."""
    lengths: np.ndarray | None = None
    """The segment's chunk lengths, by position (None: an older segment, `factor` only)."""
    own: tuple[float, float] = (1.0, 1.0)
    """The segment's idf of the word and its average chunk length."""
    wide: tuple[float, float] = (1.0, 1.0)
    """The index-wide idf of the word and average chunk length."""
    k1: float = 1.5
    b: float = 0.75

    def values(self, selection=slice(None)) -> np.ndarray:
        """Index-wide scores of the postings `selection` picks."""
        stored = self.scores[selection]
        if self.lengths is None or self.own == self.wide:  # (the latter: one segment, nothing removed)
            return stored * self.factor
        # Gathered for the selected postings only: MaxScore looks most words up for a few chunks.
        return rescore(stored, self.lengths[self.chunks[selection]], self.own, self.wide, self.k1, self.b)

    def add_to(self, scores: np.ndarray) -> None:
        """Add its scores to the scores of all chunks (one per position)."""
        np.add.at(scores, self.chunks, self.values())

    def lookup(self, positions: np.ndarray) -> np.ndarray:
        """Its index-wide score for each of `positions` (ascending; 0 where absent),
        searching the shorter of the two sorted lists in the longer."""
        out = np.zeros(len(positions), dtype=np.float32)
        if not len(self.chunks) or not len(positions):
            return out
        if len(self.chunks) < len(positions):
            at = np.minimum(np.searchsorted(positions, self.chunks), len(positions) - 1)
            found = positions[at] == self.chunks
            out[at[found]] = self.values(found)
        else:
            at = np.minimum(np.searchsorted(self.chunks, positions), len(self.chunks) - 1)
            found = self.chunks[at] == positions
            out[found] = self.values(at[found])
        return out


def rescore(stored: np.ndarray, lengths: np.ndarray, own: tuple[float, float], wide: tuple[float, float], k1: float, b: float) -> np.ndarray:
    """bm25s scores (its Lucene BM25: idf x tf / (tf + k1 (1 - b + b length / average)))
    computed with the segment's (idf, average length) `own`, as they are with `wide`."""
    own_idf, own_average = own
    wide_idf, wide_average = wide
    lengths = lengths.astype(np.float32)
    tf_part = stored / np.float32(own_idf)
    # Solved for tf, a whole number (float32 keeps it to ~1e-4 for any tf a chunk has).
    tf = np.rint(tf_part * (np.float32(k1 * (1 - b)) + np.float32(k1 * b / own_average) * lengths) / (1 - tf_part))
    return np.float32(wide_idf) * tf / (tf + np.float32(k1 * (1 - b)) + np.float32(k1 * b / wide_average) * lengths)


def _tokenize(texts: list[str], stemmer) -> bm25s.tokenization.Tokenized:
    import bm25s

    return bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False)


def query_terms(query: str, stemmer=None) -> list[str]:
    """The question's words as the index holds them: stemmed, stopwords dropped
    (repeats kept: a word asked twice counts twice, as in bm25s)."""
    import bm25s.tokenization

    tokens = _tokenize([query], stemmer or Stemmer.Stemmer("english"))
    if not tokens.vocab:
        return []
    return bm25s.tokenization.convert_tokenized_to_string_list(tokens)[0]


def idf(document_frequency: np.ndarray, documents: int) -> np.ndarray:
    """BM25's inverse document frequency, Lucene's variant (bm25s's default)."""
    return np.log1p((documents - document_frequency + 0.5) / (document_frequency + 0.5))


class LexicalIndex:
    """`LexicalIndex.build(ids, texts)`; answering asks `best(terms, weights, depth)`
    (exact top chunks scored with index-wide statistics, MaxScore). `search` is
    bm25s's own retrieval with this segment's statistics alone: a reference for tests."""

    def __init__(self, model: bm25s.BM25, ids: list[int], lengths: np.ndarray | None = None):
        self.model = model
        self.ids = np.asarray(ids, dtype=np.int64)
        self.lengths = lengths
        """Each chunk's length in words (None in segments written before they were kept)."""
        self._stemmer = Stemmer.Stemmer("english")
        self._highest: dict[tuple, float] = {}
        """Each word's highest index-wide score (MaxScore's bound), as first asked."""

    @classmethod
    def build(cls, ids: list[int], texts: list[str]) -> LexicalIndex:
        import bm25s

        model = bm25s.BM25()
        lengths = np.zeros(0, dtype=np.int32)
        if texts:
            tokens = _tokenize(texts, Stemmer.Stemmer("english"))
            lengths = np.array([len(words) for words in tokens.ids], dtype=np.int32)  # as bm25s counts them
            model.index(tokens, show_progress=False)
        return cls(model, ids, lengths)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        if len(self.ids):
            self.model.save(str(folder), show_progress=False)
        if self.lengths is not None:
            np.save(folder / LENGTHS_FILE, self.lengths)
        (folder / IDS_FILE).write_text(json.dumps(self.ids.tolist()))

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        import bm25s

        ids = json.loads((folder / IDS_FILE).read_text())
        # Memory-mapped: the OS pages in the postings of the words asked about, so
        # a large segment's BM25 need not fit in RAM.
        model = bm25s.BM25.load(str(folder), mmap=True, show_progress=False) if ids else bm25s.BM25()
        lengths = np.load(folder / LENGTHS_FILE) if (folder / LENGTHS_FILE).exists() else None
        if lengths is not None and len(lengths) != len(ids):
            raise ValueError(f"{len(lengths)} chunk lengths for {len(ids)} chunks")
        return cls(model, ids, lengths)

    @property
    def average_length(self) -> float:
        """The average chunk length bm25s scored this segment with."""
        # Summed as `SegmentSet` sums them: the same figure, to the last bit, for one segment.
        return int(self.lengths.sum()) / len(self.lengths) if self.lengths is not None and len(self.lengths) else 1.0

    def document_frequencies(self, terms: list[str], live: np.ndarray | None = None) -> np.ndarray:
        """In how many of this segment's chunks (only `live` positions, a mask in
        `ids` order, when given) each term occurs."""
        if not len(self.ids):
            return np.zeros(len(terms))
        indptr, indices, vocab = self.model.scores["indptr"], self.model.scores["indices"], self.model.vocab_dict
        counts = []
        for term in terms:
            if term not in vocab:
                counts.append(0)
            elif live is None:
                counts.append(indptr[vocab[term] + 1] - indptr[vocab[term]])
            else:
                counts.append(int(np.count_nonzero(live[np.asarray(indices[indptr[vocab[term]] : indptr[vocab[term] + 1]])])))
        return np.array(counts, dtype=np.float64)

    def scores(self, terms: list[str], weights: np.ndarray, average_length: float | None = None) -> np.ndarray:
        """BM25 score of every chunk of the segment with the index-wide idf of each
        term (`weights`) and average chunk length (default: the segment's own)."""
        return self._sum(self._postings(terms, weights, average_length))

    def _sum(self, postings: list[_Posting]) -> np.ndarray:
        out = np.zeros(len(self.ids), dtype=np.float32)
        for posting in postings:
            posting.add_to(out)
        return out

    def best(
        self,
        terms: list[str],
        weights: np.ndarray,
        depth: int,
        live: np.ndarray | None = None,
        allowed: np.ndarray | None = None,
        average_length: float | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The `depth` best chunks (ids, scores; best first, ties by id) by the
        scores of `scores`, among `live` positions (a mask in `ids` order) and
        `allowed` chunk ids when given.

        Exact, without scoring every chunk that has a word of the question
        (MaxScore, as in Lucene; docs/scale.md). A lower bound of the depth-th
        best score shows which common words cannot lift a chunk that has none of
        the rarer ones to it: those are looked up only for the chunks that the
        rarer words bring close enough. Questions are mostly common words, and a
        common word's posting list grows with the index."""
        postings = self._postings(terms, weights, average_length)
        if not postings:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        if len(self.ids) < PRUNE_MIN_CHUNKS:
            return self._best_of_all(postings, depth, live, allowed)
        strongest_first = sorted(postings, key=lambda p: -p.upper)
        # Scores so far, of the words added: lower bounds of the chunks' scores.
        partial = np.zeros(len(self.ids), dtype=np.float32)
        rarest, seen = 0, 0
        for posting in strongest_first:  # enough chunks for a first threshold
            posting.add_to(partial)
            rarest += 1
            seen += len(posting.chunks)
            if seen >= SEED_CHUNKS_PER_RESULT * depth:
                break
        # In one posting list each chunk occurs once: the depth-th best of their
        # scores so far is a lower bound of the depth-th best score.
        seed = strongest_first[:rarest]
        threshold = max(self._kth(partial[self._kept(p.chunks, live, allowed)], depth) for p in seed)
        # The weakest words whose best scores, all together, stay under the
        # threshold are optional: a chunk with none of the other words cannot reach it.
        optional, bound = 0, 0.0
        for posting in reversed(strongest_first[rarest:]):
            if (bound + posting.upper) * ROUNDING >= threshold:
                break
            optional += 1
            bound += posting.upper
        optional_postings = strongest_first[len(strongest_first) - optional :]
        for posting in strongest_first[rarest : len(strongest_first) - optional]:
            posting.add_to(partial)
        if optional:
            # The rarest words' chunks that score best so far, scored whole: their
            # depth-th best is a much higher threshold (the best chunks mostly
            # have the rarest words).
            seeded = np.unique(np.concatenate([self._top(partial, self._kept(p.chunks, live, allowed), 2 * depth) for p in seed]))
            threshold = max(threshold, self._kth(partial[seeded] + sum(p.lookup(seeded) for p in optional_postings), depth))
        # Chunks that the optional words could still lift to the threshold.
        candidates = self._kept(np.flatnonzero(partial >= max((threshold - bound) / ROUNDING, 1e-30)), live, allowed)
        if optional and len(candidates) > 4 * depth:
            # Those best so far, with the optional words' scores added, are nearly
            # the final best: a much higher threshold, that drops most of the rest.
            values = partial[candidates]
            best = candidates[values >= _top_cut(values, 4 * depth)]
            threshold = max(threshold, self._kth(partial[best] + sum(p.lookup(best) for p in optional_postings), depth))
            candidates = candidates[values >= max((threshold - bound) / ROUNDING, 1e-30)]
        # Each optional word, strongest first, adds its score to the candidates
        # only, and those it leaves short of the threshold go.
        alive = None
        for posting in optional_postings:
            bound -= posting.upper
            if len(candidates) * SEARCH_STEPS < len(posting.chunks):  # few candidates: look each up
                partial[candidates] += posting.lookup(candidates)
            else:  # many: one pass over the posting list
                if alive is None:
                    alive = np.zeros(len(self.ids), dtype=bool)
                    alive[candidates] = True
                found = alive[posting.chunks]
                np.add.at(partial, posting.chunks[found], posting.values(found))
            keep = partial[candidates] * ROUNDING + bound >= threshold
            if alive is not None:
                alive[candidates[~keep]] = False
            candidates = candidates[keep]
        scores = partial[candidates]
        order = np.lexsort((candidates, -scores))[:depth]
        order = order[scores[order] > 0]
        return self.ids[candidates[order]], scores[order]

    def _best_of_all(
        self, postings: list[_Posting], depth: int, live: np.ndarray | None, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """`best` by scoring every chunk: quicker for a small segment."""
        scores = self._sum(postings)
        positions = self._kept(np.flatnonzero(scores > 0), live, allowed)
        if len(positions) > depth:
            positions = positions[np.argpartition(-scores[positions], depth - 1)[:depth]]
        order = np.lexsort((positions, -scores[positions]))
        return self.ids[positions[order]], scores[positions[order]]

    def _postings(self, terms: list[str], weights: np.ndarray, average_length: float | None = None) -> list[_Posting]:
        """Each known term's posting list (repeats kept), with what turns its stored
        scores into index-wide ones (`weights`: idf; `average_length`)."""
        if not len(self.ids):
            return []
        vocab = self.model.vocab_dict
        # Plain views of the (memory-mapped) arrays: slicing a numpy memmap costs more.
        indptr, indices, data = (np.asarray(self.model.scores[key]) for key in ("indptr", "indices", "data"))
        own = idf(self.document_frequencies(terms), len(self.ids))
        own_average = self.average_length
        wide_average = average_length or own_average
        k1, b = float(self.model.k1), float(self.model.b)
        postings = []
        for term, weight, own_weight in zip(terms, weights, own):
            if term not in vocab:
                continue
            column = slice(indptr[vocab[term]], indptr[vocab[term] + 1])
            chunks = indices[column]
            posting = _Posting(
                chunks, data[column], np.float32(weight / own_weight), 0.0, self.lengths,
                (float(own_weight), own_average), (float(weight), wide_average), k1, b,
            )  # fmt: skip
            key = (term, float(weight), wide_average)
            if key not in self._highest:  # segments never change: once per word and snapshot
                self._highest[key] = float(np.max(posting.values())) if len(chunks) else 0.0
            postings.append(replace(posting, upper=self._highest[key]))
        return postings

    @staticmethod
    def _top(scores: np.ndarray, positions: np.ndarray, count: int) -> np.ndarray:
        """The `count` of `positions` (distinct) with the highest `scores` (all if fewer)."""
        if len(positions) <= count:
            return positions
        return positions[np.argpartition(scores[positions], len(positions) - count)[-count:]]

    @staticmethod
    def _kth(scores: np.ndarray, depth: int) -> float:
        """The depth-th highest of `scores` (0 if there are fewer)."""
        return float(np.partition(scores, len(scores) - depth)[len(scores) - depth]) if len(scores) >= depth else 0.0

    def _kept(self, positions: np.ndarray, live: np.ndarray | None, allowed: np.ndarray | None) -> np.ndarray:
        if live is not None:
            positions = positions[live[positions]]
        if allowed is not None:
            positions = positions[np.isin(self.ids[positions], allowed)]
        return positions

    def search(self, query: str, k: int = 100, mask: np.ndarray | None = None) -> list[tuple[int, float]]:
        """Best chunks for `query`; `mask` (one 0/1 per chunk, in `ids` order) restricts the search."""
        if not len(self.ids):
            return []
        tokens = _tokenize([query], self._stemmer)
        if not tokens.vocab:
            return []
        k = min(k, len(self.ids))
        docs, scores = self.model.retrieve(tokens, k=k, show_progress=False, weight_mask=mask)
        return [(int(self.ids[d]), float(s)) for d, s in zip(docs[0], scores[0]) if s > 0]
