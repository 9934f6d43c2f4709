"""BM25 over the chunks of one index segment (bm25s), scored with the index-wide
word statistics so that segments of any size rank alike."""

from __future__ import annotations

import json
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

IDS_FILE = "chunk_ids.json"


def _tokenize(texts: list[str], stemmer) -> bm25s.tokenization.Tokenized:
    return bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False)


def query_terms(query: str, stemmer=None) -> list[str]:
    """The question's words as the index holds them: stemmed, stopwords dropped
    (repeats kept: a word asked twice counts twice, as in bm25s)."""
    tokens = _tokenize([query], stemmer or Stemmer.Stemmer("english"))
    if not tokens.vocab:
        return []
    return bm25s.tokenization.convert_tokenized_to_string_list(tokens)[0]


def idf(document_frequency: np.ndarray, documents: int) -> np.ndarray:
    """BM25's inverse document frequency, Lucene's variant (bm25s's default)."""
    return np.log1p((documents - document_frequency + 0.5) / (document_frequency + 0.5))


class LexicalIndex:
    """`LexicalIndex.build(ids, texts)`, then `search(query, k)` -> [(chunk_id, score)]."""

    def __init__(self, model: bm25s.BM25, ids: list[int]):
        self.model = model
        self.ids = np.asarray(ids, dtype=np.int64)
        self._stemmer = Stemmer.Stemmer("english")

    @classmethod
    def build(cls, ids: list[int], texts: list[str]) -> LexicalIndex:
        model = bm25s.BM25()
        if texts:
            model.index(_tokenize(texts, Stemmer.Stemmer("english")), show_progress=False)
        return cls(model, ids)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        if len(self.ids):
            self.model.save(str(folder), show_progress=False)
        (folder / IDS_FILE).write_text(json.dumps(self.ids.tolist()))

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        ids = json.loads((folder / IDS_FILE).read_text())
        # Memory-mapped: the OS pages in the postings of the words asked about, so
        # a large segment's BM25 need not fit in RAM.
        model = bm25s.BM25.load(str(folder), mmap=True, show_progress=False) if ids else bm25s.BM25()
        return cls(model, ids)

    def document_frequencies(self, terms: list[str]) -> np.ndarray:
        """In how many of this segment's chunks each term occurs."""
        if not len(self.ids):
            return np.zeros(len(terms))
        indptr, vocab = self.model.scores["indptr"], self.model.vocab_dict
        return np.array([indptr[vocab[t] + 1] - indptr[vocab[t]] if t in vocab else 0 for t in terms], dtype=np.float64)

    def scores(self, terms: list[str], weights: np.ndarray) -> np.ndarray:
        """BM25 score of every chunk of the segment, each term's idf replaced by
        `weights` (the index-wide idf: bm25s stored idf x term frequency part)."""
        out = np.zeros(len(self.ids), dtype=np.float32)
        if not len(self.ids):
            return out
        scores, vocab = self.model.scores, self.model.vocab_dict
        own = idf(self.document_frequencies(terms), len(self.ids))
        for term, weight, own_weight in zip(terms, weights, own):
            if term not in vocab:
                continue
            column = slice(scores["indptr"][vocab[term]], scores["indptr"][vocab[term] + 1])
            out[scores["indices"][column]] += scores["data"][column] * np.float32(weight / own_weight)
        return out

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
