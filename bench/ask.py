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

from common import percentile, time_each

from rag.embed import resolve_model
from rag.pipeline import Pipeline
from rag.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def ms(values: list[float], q: float) -> float:
    """The `q`-th percentile of `values` (seconds) in milliseconds (common.percentile)."""
    return percentile(values, q) * 1000


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

    from sentence_transformers import SentenceTransformer

    raw_model = SentenceTransformer(resolve_model(pipeline.settings.model), device="cpu")
    warmup = ["warm-up question"]
    raw = time_each(lambda q: raw_model.encode([q], normalize_embeddings=True, show_progress_bar=False), questions, warmup)
    retrieval = time_each(lambda q: pipeline.retriever(q, k=10), questions, warmup)
    total = time_each(pipeline.ask, questions, warmup)
    chunks = pipeline.store.counts()["chunks"]
    print(f"index: {args.index} ({chunks} chunks, backend {pipeline.settings.backend}); {len(questions)} questions")
    print(f"start-up (model + index load): {startup:.1f} s")
    for name, values in (("retrieval", retrieval), ("whole answer", total), ("raw encode", raw)):
        print(f"{name:>13}: p50 {ms(values, 50):6.1f} ms   p95 {ms(values, 95):6.1f} ms"
              f"   max {max(values) * 1000:6.1f} ms   mean {statistics.mean(values) * 1000:6.1f} ms")
    print(f"whole answer / raw question encode (torch fp32), p50: {ms(total, 50) / ms(raw, 50):.2f}x"
          " (goal <= 4)")
    print(f"whole answer p95 / p50: {ms(total, 95) / ms(total, 50):.2f} (goal <= 2)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
