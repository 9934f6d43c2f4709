"""Abstention trade-off: how the `abstain_below` threshold on `Answer.confidence` (best similarity +
0.5 x word coverage) trades answering for abstaining.

    python bench/abstain.py [--queries ../shared/data/multihop/queries_dev.json] [--index index-eval/multihop]

Runs every MultiHop-RAG dev query (null_query items should abstain, the others should not) and the
hand-written off-topic questions through the answerer once, records each answer's confidence, then
prints precision / recall of abstaining and the rate of wrongly abstaining
on answerable questions for a range of thresholds. Build the index first with `rag eval QUERIES`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rag.evaluate import abstention, offtopic_questions
from rag.pipeline import Pipeline
from rag.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=Path, default=ROOT.parent / "shared/data/multihop/queries_dev.json")
    parser.add_argument("--index", type=Path, default=ROOT / "index-eval" / "multihop")
    parser.add_argument("--limit", type=int, help="only the first N answerable queries (all null ones are kept)")
    args = parser.parse_args()
    queries = json.loads(args.queries.read_text())
    if args.limit:
        answerable = [q for q in queries if q["evidence_list"]][: args.limit]
        queries = answerable + [q for q in queries if not q["evidence_list"]]
    pipeline = Pipeline(Settings.from_env(index_dir=args.index))
    pipeline.answerer.abstain_below = float("-inf")  # record every confidence
    rows = [(pipeline.ask(q["query"]).confidence, not q["evidence_list"], "null" if not q["evidence_list"] else "answerable") for q in queries]
    rows += [(pipeline.ask(q).confidence, True, "off-topic") for q in offtopic_questions()]
    for group in ("answerable", "null", "off-topic"):
        values = sorted(c for c, _, g in rows if g == group)
        print(f"{group:>10}: n={len(values):4d}  confidence p10={values[len(values) // 10]:.3f}"
              f"  median={values[len(values) // 2]:.3f}  p90={values[9 * len(values) // 10]:.3f}")
    print(f"\n{'threshold':>9}  {'precision':>9}  {'recall':>6}  {'recall(off-topic)':>17}  {'false abstain':>13}")
    for threshold in [x / 100 for x in range(40, 72, 3)]:
        should = [s for _, s, _ in rows]
        did = [c < threshold for c, _, _ in rows]
        figures = abstention(should, did)
        offtopic = [c < threshold for c, _, g in rows if g == "off-topic"]
        print(f"{threshold:9.2f}  {figures['abstain_precision']:9.3f}  {figures['abstain_recall']:6.3f}"
              f"  {sum(offtopic) / len(offtopic):17.3f}  {figures['false_abstain_rate']:13.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
