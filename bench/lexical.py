"""BM25 on a built index: the pruned search the retriever runs (MaxScore,
`LexicalIndex.best`) against scoring every chunk that has a word of the question
and sorting (what bm25s and the code before it did), on the same index and
questions, in one process.

    python bench/lexical.py --index DIR [--questions FILE.json] [--depth 100]

Prints per-question median and 95th percentile of both, their ratio, and whether
the pruned search returned the same chunks (it should: it is exact; scores may
differ in the last float32 digit, which can swap chunks of equal score).
`--questions`: a JSON list of strings (bench/scale.py writes one to its folder);
default: the first 8 words of 50 chunks of the index itself.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from common import percentile

from rag.lexical import idf, query_terms
from rag.store import IndexStore


def every_chunk(segments, terms: list[str], weights: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """The best `depth` by scoring every chunk of every segment."""
    ids, scores = [], []
    for segment, live in zip(segments.segments, segments._live):
        all_scores = segment.lexical.scores(terms, weights, segments.average_length)
        keep = all_scores > 0 if live is None else (all_scores > 0) & live
        ids.append(segment.lexical.ids[keep])
        scores.append(all_scores[keep])
    ids, scores = np.concatenate(ids), np.concatenate(scores)
    if len(scores) > depth:  # the best `depth` first, then only those sorted (as before MaxScore)
        top = np.argpartition(-scores, depth - 1)[:depth]
        ids, scores = ids[top], scores[top]
    best = np.lexsort((ids, -scores))
    return ids[best], scores[best]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--questions", type=Path)
    parser.add_argument("--depth", type=int, default=100, help="results per question (the retriever's depth)")
    args = parser.parse_args()
    store = IndexStore(args.index, snapshot=True)
    segments = store.segments
    if args.questions:
        questions = json.loads(args.questions.read_text())
    else:
        rows = store.query("SELECT text FROM chunks ORDER BY id LIMIT 50")
        questions = [" ".join(r[0].split()[:8]) for r in rows]
    chunks = sum(len(s.lexical.ids) for s in segments.segments)
    times = {"pruned": [], "every chunk": []}
    same = 0
    for question in questions * 2:  # the first round warms the page cache and the word bounds
        if not query_terms(question):
            continue
        started = time.perf_counter()
        found = segments.lexical(question, args.depth)
        pruned = time.perf_counter() - started
        started = time.perf_counter()  # the same work on the question's words, then every chunk
        terms = query_terms(question)
        weights = idf(np.array([segments._frequency(t) for t in terms]), segments.live_chunks)
        expected_ids, expected_scores = every_chunk(segments, terms, weights, args.depth)
        exhaustive = time.perf_counter() - started
        times["pruned"].append(pruned)
        times["every chunk"].append(exhaustive)
        found_scores = np.array([s for _, s in found], dtype=np.float32)
        # Equal up to float32 rounding; chunks of equal score may come in either order.
        if len(found) == len(expected_ids) and np.allclose(found_scores, expected_scores, rtol=1e-5):
            same += 1
    half = len(times["pruned"]) // 2
    print(f"{chunks:,} chunks in {len(segments.segments)} segment(s); {half} questions, depth {args.depth}")
    print("| search | p50 ms | p95 ms |")
    print("|---|---:|---:|")
    medians = {}
    for name, values in times.items():
        timed = values[half:]
        medians[name] = percentile(timed, 50)
        print(f"| {name} | {medians[name] * 1000:.2f} | {percentile(timed, 95) * 1000:.2f} |")
    print(f"\nevery chunk / pruned: {medians['every chunk'] / medians['pruned']:.1f}x; same results: {same}/{len(times['pruned'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
