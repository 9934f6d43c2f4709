"""Time in questions on MultiHop-RAG, per question type: the default pipeline
against the same pipeline with the question's time ignored (rag/timeframe.py off).

    python bench/timeframe.py [--queries ../shared/data/multihop/queries_dev.json] --index COPY-OF-index-eval/multihop

Prints, per question type, how many questions named a time and the retrieval
and citation figures of `rag eval` with and without it. Build the index first
with `rag eval QUERIES --index DIR`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rag.evaluate import evaluate_multihop
from rag.pipeline import Pipeline
from rag.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SHOWN = ("hits@4", "hits@10", "mrr@10", "citation_hit_rate", "abstain_recall", "false_abstain_rate")


class Timeless(Pipeline):
    """The pipeline as it was before: no time read from questions."""

    def time_asked(self, *args, **kwargs):
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=Path, default=ROOT.parent / "shared/data/multihop/queries_dev.json")
    parser.add_argument("--index", type=Path, required=True)
    args = parser.parse_args()
    queries = json.loads(args.queries.read_text())
    settings = Settings.from_env(index_dir=args.index)
    timed = Pipeline(settings)
    timeless = Timeless(settings, embedder=timed.embedder)
    for kind in sorted({q["question_type"] for q in queries}):
        group = [q for q in queries if q["question_type"] == kind]
        named = [q for q in group if timed.time_asked(q["query"])]
        print(f"{kind}: {len(group)} questions, {len(named)} name a time")
        for label, pipeline in (("without", timeless), ("with", timed)):
            if not any(q["evidence_list"] for q in group):  # null queries: only abstaining counts
                abstained = sum(pipeline.ask(q["query"]).abstained for q in group) / len(group)
                print(f"  {label:<8}abstained {abstained:.4f}")
                continue
            result = evaluate_multihop(pipeline, group, offtopic=False)
            print(f"  {label:<8}" + "  ".join(f"{key} {result[key]}" for key in SHOWN if key in result))
        for q in named:
            print(f"    {timed.time_asked(q['query']).describe()}  <- {q['query'][:110]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
