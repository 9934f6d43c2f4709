"""BM25 over the index's chunks (bm25s), kept in step with FAISS by the build."""

from __future__ import annotations

import json
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

IDS_FILE = "chunk_ids.json"


def _tokenize(texts: list[str], stemmer) -> bm25s.tokenization.Tokenized:
    return bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False)


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
        model = bm25s.BM25.load(str(folder), show_progress=False) if ids else bm25s.BM25()
        return cls(model, ids)

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
