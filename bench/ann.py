"""Exact (flat) against approximate (HNSW) search of one index segment: per-query
time and recall@10 of HNSW against exact search, at growing sizes.

Vectors are drawn around a few thousand random centres (news chunks cluster by
story), unit length, 384-d like the bundled model's. Queries are perturbed
copies of stored vectors, as a question lands near its passages. This sets
`rag.segment.ANN_MIN_CHUNKS` (where HNSW starts) and checks `HNSW_*` give recall
>= 0.95.

    python bench/ann.py                       # 10k, 50k, 200k, 1M vectors
    python bench/ann.py --sizes 10000,100000  # quicker
"""

from __future__ import annotations

import argparse
import time

import faiss
import numpy as np
from common import percentile, time_each

from rag import segment


def clustered(n: int, dimension: int, rng: np.random.Generator) -> np.ndarray:
    centres = rng.normal(size=(max(10, n // 200), dimension)).astype(np.float32)
    vectors = centres[rng.integers(0, len(centres), n)] + 0.6 * rng.normal(size=(n, dimension)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


DEPTH = 100
"""Chunks the retriever asks each list for (`Retriever.depth`)."""


def per_query_ms(index: faiss.Index, queries: np.ndarray, params=None) -> tuple[float, np.ndarray]:
    """Median time of one query for `DEPTH` results (searched one at a time, as
    questions come), and the 10 best ids found."""
    found = []
    times = time_each(lambda q: found.append(index.search(q[None], DEPTH, params=params)[1][0][:10]), queries)
    return 1000 * percentile(times, 50), np.array(found)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,50000,200000,1000000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--dimension", type=int, default=384)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads; HNSW M={segment.HNSW_NEIGHBOURS} "
          f"efConstruction={segment.HNSW_EF_CONSTRUCTION} efSearch={segment.HNSW_EF_SEARCH} per {segment.HNSW_EF_SEARCH_PER_CHUNKS:,} vectors")
    print("| vectors | flat ms/query | HNSW ms/query | HNSW recall@10 | HNSW build s | flat / HNSW |")
    print("|---|---|---|---|---|---|")
    for n in [int(s) for s in args.sizes.split(",")]:
        vectors = clustered(n, args.dimension, rng)
        picks = rng.integers(0, n, args.queries)
        queries = vectors[picks] + 0.05 * rng.normal(size=(args.queries, args.dimension)).astype(np.float32)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        ids = np.arange(n, dtype=np.int64)
        flat = faiss.IndexIDMap2(faiss.IndexFlatIP(args.dimension))
        flat.add_with_ids(vectors, ids)
        flat_ms, exact = per_query_ms(flat, queries)
        started = time.perf_counter()
        graph = faiss.IndexIDMap2(faiss.IndexHNSWFlat(args.dimension, segment.HNSW_NEIGHBOURS, faiss.METRIC_INNER_PRODUCT))
        faiss.downcast_index(graph.index).hnsw.efConstruction = segment.HNSW_EF_CONSTRUCTION
        graph.add_with_ids(vectors, ids)
        build_s = time.perf_counter() - started
        graph_ms, approximate = per_query_ms(graph, queries, faiss.SearchParametersHNSW(efSearch=segment.ef_search(n, DEPTH)))
        recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approximate, exact)])
        print(f"| {n:,} | {flat_ms:.2f} | {graph_ms:.2f} | {recall:.3f} | {build_s:.1f} | {flat_ms / graph_ms:.1f}x |", flush=True)
        del flat, graph, vectors
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
