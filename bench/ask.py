"""Question latency: start-up once, then warm questions through Pipeline.ask (what `rag ask` does),
next to a raw `SentenceTransformer.encode` of each question (torch fp32) timed in the same run.

    python bench/ask.py [--index index-eval/multihop] [--queries ../shared/data/multihop/queries_dev.json] [--n 100]

Prints p50 / p95 / max of retrieval alone, of the whole answer and of the raw question encode, and the
ratio of the answer's p50 to the raw encode's p50 (goal <= 4) and of the answer's p95 to its p50 (goal
<= 2). Build the index first with `rag eval QUERIES`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from rag.embed import resolve_model
from rag.pipeline import Pipeline
from rag.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, default=ROOT / "index-eval" / "multihop")
    parser.add_argument("--queries", type=Path, default=ROOT.parent / "shared/data/multihop/queries_dev.json")
    parser.add_argument("--n", type=int, default=100)
    args = parser.parse_args()
    questions = [q["query"] for q in json.loads(args.queries.read_text())][: args.n]

    started = time.perf_counter()
    pipeline = Pipeline(Settings.from_env(index_dir=args.index))
    startup = time.perf_counter() - started
    pipeline.ask("warm-up question")

    from sentence_transformers import SentenceTransformer

    raw_model = SentenceTransformer(resolve_model(pipeline.settings.model), device="cpu")
    raw_model.encode(["warm-up question"], show_progress_bar=False)

    retrieval, total, raw = [], [], []
    for question in questions:
        started = time.perf_counter()
        raw_model.encode([question], normalize_embeddings=True, show_progress_bar=False)
        raw.append(time.perf_counter() - started)
        started = time.perf_counter()
        pipeline.retriever(question, k=10)
        retrieval.append(time.perf_counter() - started)
        started = time.perf_counter()
        pipeline.ask(question)
        total.append(time.perf_counter() - started)
    chunks = pipeline.store.counts()["chunks"]
    print(f"index: {args.index} ({chunks} chunks, backend {pipeline.settings.backend}); {len(questions)} questions")
    print(f"start-up (model + index load): {startup:.1f} s")
    for name, values in (("retrieval", retrieval), ("whole answer", total), ("raw encode", raw)):
        print(f"{name:>13}: p50 {percentile(values, 0.5):6.1f} ms   p95 {percentile(values, 0.95):6.1f} ms"
              f"   max {max(values) * 1000:6.1f} ms   mean {statistics.mean(values) * 1000:6.1f} ms")
    print(f"whole answer / raw question encode (torch fp32), p50: {percentile(total, 0.5) / percentile(raw, 0.5):.2f}x"
          " (goal <= 4)")
    print(f"whole answer p95 / p50: {percentile(total, 0.95) / percentile(total, 0.5):.2f} (goal <= 2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
