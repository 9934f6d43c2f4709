"""Index segments: the FAISS vectors and the BM25 index of one range of chunk ids.

A build writes the chunks it added as one new segment instead of rewriting the
whole index, so an update costs the change, not the index (Lucene's design).
Segments never change once written: a removed chunk stays in its segment, hidden
at search time by a tombstone, until a merge writes the segment's live chunks
anew. Chunk ids only grow, so a segment is named by its id range, and adjacent
segments merge into one range.

Small segments are searched exactly (flat); one of `ANN_MIN_CHUNKS` chunks or
more gets an HNSW graph (approximate; recall@10 against exact search measured
by bench/ann.py, docs/benchmarks.md).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from rag.lexical import LexicalIndex, idf, query_terms

ANN_MIN_CHUNKS = 20_000
"""Segments this large are searched through an HNSW graph. Exact search of a flat
segment, 100 results, took 0.66 ms at 10,000 chunks and 6.9 ms at 50,000 here;
HNSW 0.09 / 0.18 / 0.30 ms at 10k / 50k / 200k with recall@10 1.0 / 1.0 / 0.985,
and 0.4 / 4.1 / 28 s to build (bench/ann.py, docs/benchmarks.md). Below 20,000
exact search costs under ~1.5 ms, not worth a graph's build time or its error."""

HNSW_NEIGHBOURS = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 128
"""HNSW's graph degree and search breadths: recall@10 0.985 against exact search at
200,000 clustered 384-d vectors (bench/ann.py)."""
HNSW_EF_SEARCH_PER_CHUNKS = 500_000
"""A larger graph is searched more broadly: efSearch grows by `HNSW_EF_SEARCH` per
this many vectors. At 1M vectors efSearch 128 gave recall@10 0.917, 256 gave 0.977
(0.49 and 0.96 ms a query; bench/ann.py)."""


def ef_search(vectors: int, depth: int) -> int:
    """HNSW's search breadth for a graph of `vectors` and `depth` results."""
    return max(HNSW_EF_SEARCH * (1 + vectors // HNSW_EF_SEARCH_PER_CHUNKS), depth)


@dataclass(frozen=True)
class SegmentInfo:
    """A segment as the database records it."""

    first: int
    last: int
    """The chunk id range it covers (inclusive)."""
    chunks: int
    """Chunks written into it (live ones, and those removed since: tombstones)."""

    @property
    def name(self) -> str:
        return f"seg-{self.first}-{self.last}-{self.chunks}"

    def files(self, folder: Path) -> tuple[Path, Path]:
        """Its FAISS file and its BM25 folder."""
        return folder / f"{self.name}.faiss", folder / f"{self.name}.bm25"


@dataclass
class Segment:
    info: SegmentInfo
    vectors: faiss.Index
    """Chunk vectors by chunk id (an IndexIDMap2 around a flat index or an HNSW graph)."""
    lexical: LexicalIndex

    @classmethod
    def build(cls, info: SegmentInfo, ids: np.ndarray, vectors: np.ndarray, texts: list[str]) -> Segment:
        """A segment of the chunks `ids` (their vectors and BM25 texts)."""
        return cls(info, vector_index(ids, vectors), LexicalIndex.build(ids.tolist(), texts))

    def save(self, folder: Path) -> None:
        """Write both files, each atomically (written aside, flushed, renamed)."""
        vectors_path, lexical_path = self.info.files(folder)
        tmp = vectors_path.with_name(vectors_path.name + ".tmp")
        if vectors_path.is_dir():  # damaged into a folder: os.replace cannot overwrite that
            shutil.rmtree(vectors_path)
        try:
            with open(tmp, "wb") as handle:
                handle.write(memoryview(faiss.serialize_index(self.vectors)))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, vectors_path)
        finally:
            tmp.unlink(missing_ok=True)
        tmp = lexical_path.with_name(lexical_path.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            self.lexical.save(tmp)
            if lexical_path.is_dir():
                shutil.rmtree(lexical_path)
            else:
                lexical_path.unlink(missing_ok=True)
            os.replace(tmp, lexical_path)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    @classmethod
    def load(cls, info: SegmentInfo, folder: Path) -> Segment:
        """Read a segment, its vectors (flat or HNSW) memory-mapped: the OS pages
        them in and out, so many millions of chunks need not fit in RAM."""
        vectors_path, lexical_path = info.files(folder)
        vectors = faiss.read_index(str(vectors_path), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
        lexical = LexicalIndex.load(lexical_path)
        if vectors.ntotal != info.chunks or len(lexical.ids) != info.chunks:
            raise ValueError(f"holds {vectors.ntotal} vectors and {len(lexical.ids)} BM25 entries for {info.chunks} chunks")
        return cls(info, vectors, lexical)


def vector_index(ids: np.ndarray, vectors: np.ndarray) -> faiss.Index:
    """Flat (exact) below `ANN_MIN_CHUNKS` chunks, HNSW from there."""
    dimension = vectors.shape[1]
    if len(ids) >= ANN_MIN_CHUNKS:
        inner = faiss.IndexHNSWFlat(dimension, HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT)
        inner.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    else:
        inner = faiss.IndexFlatIP(dimension)
    index = faiss.IndexIDMap2(inner)
    if len(ids):
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))
    return index


class SegmentSet:
    """The segments of one index snapshot, searched as one index.

    `removed` are the tombstones: ids of chunks that are still in a segment but
    no longer in the index."""

    def __init__(self, segments: list[Segment], removed: np.ndarray):
        self.segments = segments
        self.removed = np.asarray(removed, dtype=np.int64)
        # Per segment, which of its BM25 entries are live: computed once per snapshot.
        self._live = [~np.isin(s.lexical.ids, self.removed) if len(self.removed) else None for s in segments]
        self.ntotal = sum(s.vectors.ntotal for s in segments) - len(self.removed)
        # BM25's index-wide statistics over the live chunks, as one segment holding
        # just them would have: an index answers alike however it was built.
        self.live_chunks = sum(len(s.lexical.ids) if live is None else int(np.count_nonzero(live)) for s, live in zip(segments, self._live))
        measured = [(s.lexical.lengths if live is None else s.lexical.lengths[live]) for s, live in zip(segments, self._live) if s.lexical.lengths is not None]
        counted = sum(len(lengths) for lengths in measured)
        self.average_length = float(sum(int(lengths.sum()) for lengths in measured) / counted) if counted else None
        """Average live chunk length (over segments that record lengths)."""
        self._frequencies: dict[str, float] = {}
        """Live chunks holding each word asked about so far (the snapshot never changes)."""

    def ids(self) -> np.ndarray:
        """Every chunk id the segments' FAISS indexes hold and no tombstone hides, in
        segment order (ascending, as each holds a range)."""
        held = [faiss.vector_to_array(s.vectors.id_map) for s in self.segments]
        held = np.concatenate(held) if held else np.zeros(0, dtype=np.int64)
        return held[~np.isin(held, self.removed)]

    def vector(self, chunk_id: int) -> np.ndarray:
        """The stored vector of one chunk."""
        for segment in self.segments:
            if segment.info.first <= chunk_id <= segment.info.last:
                return segment.vectors.reconstruct(chunk_id)
        raise KeyError(chunk_id)

    def dense(self, query: np.ndarray, depth: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """The `depth` chunks nearest to the (1, dimension) query vector, best
        first; only `allowed` ids when given."""
        if allowed is not None:
            selector = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64))
        elif len(self.removed):
            selector = faiss.IDSelectorNot(faiss.IDSelectorBatch(self.removed))
        else:
            selector = None
        found: list[tuple[int, float]] = []
        for segment in self.segments:
            index = segment.vectors
            if index.ntotal == 0:
                continue
            if isinstance(faiss.downcast_index(index.index), faiss.IndexHNSW):
                params = faiss.SearchParametersHNSW(sel=selector, efSearch=ef_search(index.ntotal, depth))
            else:
                params = faiss.SearchParameters(sel=selector)
            scores, ids = index.search(query, min(depth, index.ntotal), params=params)
            found += [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]
        found.sort(key=lambda hit: -hit[1])
        return found[:depth]

    def _frequency(self, term: str) -> float:
        if term not in self._frequencies:
            self._frequencies[term] = float(
                sum(s.lexical.document_frequencies([term], live)[0] for s, live in zip(self.segments, self._live))
            )
        return self._frequencies[term]

    def lexical(self, question: str, depth: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """The `depth` best chunks by BM25, scored with the statistics of the whole
        index's live chunks (each word's rarity, the average chunk length), not of
        one segment."""
        terms = query_terms(question)
        if not terms or not self.segments:
            return []
        weights = idf(np.array([self._frequency(term) for term in terms]), self.live_chunks)
        found = [
            s.lexical.best(terms, weights, depth, live, allowed, self.average_length) for s, live in zip(self.segments, self._live)
        ]
        ids, scores = np.concatenate([f[0] for f in found]), np.concatenate([f[1] for f in found])
        best = np.lexsort((ids, -scores))[:depth]  # best first, ties by id
        return [(int(ids[i]), float(scores[i])) for i in best]
