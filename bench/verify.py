"""Calibrate the LLM citation verifier (rag.llm.Verifier) on SQuAD.

    python bench/verify.py [--limit 600]

For each SQuAD question, a claim is made the way a model restates an answer: the question followed by
its gold answer ("When did X happen? 1998"). The sentence of the paragraph that holds the answer is a
source that supports it; another sentence of the same paragraph (same topic, same names) is one that
does not. Prints, for thresholds of cosine similarity and of word overlap, how often the rule
"similarity >= s or overlap >= o" accepts supporting sources and rejects the others.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

from rag.chunk import SentenceSplitter
from rag.embed import Embedder
from rag.llm import word_share

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--squad", type=Path, default=ROOT.parent / "shared/data/squad/dev-v1.1.dev.json")
    parser.add_argument("--limit", type=int, default=600)
    args = parser.parse_args()
    split = SentenceSplitter()
    rng = random.Random(7)
    claims, good, bad = [], [], []
    for article in json.loads(args.squad.read_text())["data"]:
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            sentences = [(s, e) for s, e in split(context)]
            for qa in paragraph["qas"]:
                answer = qa["answers"][0]
                start = answer["answer_start"]
                holding = [(s, e) for s, e in sentences if s <= start < e]
                others = [(s, e) for s, e in sentences if not s <= start < e and answer["text"] not in context[s:e]]
                if not holding or not others:
                    continue
                claims.append(f"{qa['question']} {answer['text']}")
                good.append(context[slice(*holding[0])])
                bad.append(context[slice(*rng.choice(others))])
    pick = rng.sample(range(len(claims)), min(args.limit, len(claims)))
    claims, good, bad = [claims[i] for i in pick], [good[i] for i in pick], [bad[i] for i in pick]
    embed = Embedder()
    c, g, b = embed(claims), embed(good), embed(bad)
    sim_good, sim_bad = (c * g).sum(1), (c * b).sum(1)
    over_good = [word_share(x, y) for x, y in zip(claims, good)]
    over_bad = [word_share(x, y) for x, y in zip(claims, bad)]
    print(f"{len(claims)} claims; accept = supporting source accepted, reject = other sentence rejected\n")
    print(f"{'similarity':>10} {'overlap':>8} {'accept':>7} {'reject':>7} {'balanced':>9}")
    best = None
    for s in [0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7]:
        for o in [0.5, 0.6, 0.7, 0.8, 1.01]:
            accept = sum(x >= s or y >= o for x, y in zip(sim_good, over_good)) / len(claims)
            reject = sum(not (x >= s or y >= o) for x, y in zip(sim_bad, over_bad)) / len(claims)
            balanced = (accept + reject) / 2
            best = max(best or (0, 0, 0), (balanced, s, o))
            print(f"{s:10.2f} {o:8.2f} {accept:7.3f} {reject:7.3f} {balanced:9.3f}")
    print(f"\nbest balanced accuracy {best[0]:.3f} at similarity >= {best[1]}, overlap >= {best[2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
