"""Question latency: start-up once, then warm questions through Pipeline.ask (what `rag ask` does).

    python bench/ask.py [--index index-eval/multihop] [--queries ../shared/data/multihop/queries_dev.json] [--n 100]

Times the start-up (model + index load) once, then asks N questions one after another and prints the
p50 / p95 / max of the warm answer time, split into retrieval and the whole answer.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.pipeline import Pipeline  # noqa: E402
from rag.settings import Settings  # noqa: E402


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

    retrieval, total = [], []
    for question in questions:
        started = time.perf_counter()
        pipeline.retriever(question, k=10)
        retrieval.append(time.perf_counter() - started)
        started = time.perf_counter()
        pipeline.ask(question)
        total.append(time.perf_counter() - started)
    chunks = pipeline.store.counts()["chunks"]
    print(f"index: {args.index} ({chunks} chunks); {len(questions)} questions")
    print(f"start-up (model + index load): {startup:.1f} s")
    for name, values in (("retrieval", retrieval), ("whole answer", total)):
        print(f"{name:>13}: p50 {percentile(values, 0.5):6.0f} ms   p95 {percentile(values, 0.95):6.0f} ms"
              f"   max {max(values) * 1000:6.0f} ms   mean {statistics.mean(values) * 1000:6.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
