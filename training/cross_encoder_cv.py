"""Cross-validate a small cross-encoder trained here from the bundled MiniLM, against the
answerer's own sentence score. Measured, not shipped: see docs/evaluation.md ("Fourth pass").

    python -m training.cross_encoder_cv --candidates /tmp/scorer-cands            # 1 of 2 folds
    python -m training.cross_encoder_cv --candidates /tmp/scorer-cands --run-folds 2

The candidates are those `training.train_scorer` collects (mh.pkl, sq.pkl: the sentences
`Answerer.evidence` ranks for each development question), labelled and grouped into folds the
same way (SQuAD by article, MultiHop-RAG by shared gold facts). For each question the `--top`
best candidates by today's score become (question, sentence) pairs. The model is the bundled
all-MiniLM-L6-v2's first `--layers` layers with a one-logit head, embeddings frozen, trained
with binary cross-entropy for `--epochs` (seed 0). Printed for each held-out fold: how often
the first sentence answers by today's score, by the cross-encoder, and by the two blended.
"""

from __future__ import annotations

import argparse
import json
import pickle
import random
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import GroupKFold

from training.train_scorer import fact_groups, labels


def pairs_of(candidates: Path, top: int) -> tuple[list[dict], list[str]]:
    """Each question's `top` best candidates (by today's score) with their labels, and its fold group."""
    records, groups = [], []
    for name in ("sq", "mh"):
        rows = pickle.load((candidates / f"{name}.pkl").open("rb"))
        by_fact = fact_groups(rows) if name == "mh" else None
        for i, r in enumerate(rows):
            if not r["cands"] or (name == "mh" and not r["q"]["evidence_list"]):
                continue
            order = np.argsort([-c["score"] for c in r["cands"]])[:top]
            records.append(dict(
                set=name,
                question=" ".join(r["q"]["query"].split()),
                texts=[r["cands"][j]["text"] for j in order],
                y=labels(r)[order],
                score=np.array([r["cands"][j]["score"] for j in order]),
            ))
            groups.append(f"sq:{r['q']['article_id'].split('#')[0]}" if name == "sq" else by_fact[i])
    return records, groups


def model(layers: int, seed: int):
    from transformers import AutoModelForSequenceClassification

    from rag.embed import resolve_model
    from rag.settings import DEFAULT_MODEL

    torch.manual_seed(seed)
    m = AutoModelForSequenceClassification.from_pretrained(resolve_model(DEFAULT_MODEL), num_labels=1)
    m.bert.encoder.layer = m.bert.encoder.layer[:layers]
    for p in m.bert.embeddings.parameters():
        p.requires_grad = False
    return m


def schedule(steps: int):
    """Linear warm-up over the first tenth of the steps, then linear decay to 0."""
    warm = max(1, steps // 10)
    return lambda step: min(1.0, (step + 1) / warm) * max(0.0, (steps - step) / steps)


def first_answers(records: list[dict], weight: float, today: float = 1.0) -> float:
    """How often the first sentence by `today` x today's score + `weight` x the cross-encoder's answers."""
    return round(float(np.mean([r["y"][np.argmax(today * r["score"] + weight * r["ce"])] for r in records])), 3)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--candidates", type=Path, required=True, help="folder of mh.pkl / sq.pkl (training.train_scorer)")
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--top", type=int, default=8, help="candidates per question")
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--folds", type=int, default=2)
    p.add_argument("--run-folds", type=int, default=1, help="stop after this many folds")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    from transformers import AutoTokenizer

    from rag.embed import resolve_model
    from rag.settings import DEFAULT_MODEL

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(DEFAULT_MODEL))

    def encode(batch):
        return tokenizer([q for q, *_ in batch], [t for _, t, *_ in batch], truncation="longest_first",
                         max_length=args.max_length, padding=True, return_tensors="pt")

    records, groups = pairs_of(args.candidates, args.top)
    print(f"{len(records)} questions, {sum(len(r['y']) for r in records)} pairs", flush=True)
    for fold, (train, test) in enumerate(GroupKFold(n_splits=args.folds).split(records, groups=groups)):
        if fold >= args.run_folds:
            break
        m = model(args.layers, args.seed)
        pairs = [(records[i]["question"], t, float(y)) for i in train for t, y in zip(records[i]["texts"], records[i]["y"])]
        random.Random(args.seed).shuffle(pairs)
        opt = torch.optim.AdamW([w for w in m.parameters() if w.requires_grad], lr=args.lr, weight_decay=0.01)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule(args.epochs * -(-len(pairs) // args.batch)))
        t0 = time.time()
        m.train()
        for _ in range(args.epochs):
            for at in range(0, len(pairs), args.batch):
                batch = pairs[at : at + args.batch]
                logits = m(**encode(batch)).logits.squeeze(-1)
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.tensor([y for *_, y in batch]))
                loss.backward()
                opt.step()
                sched.step()
                opt.zero_grad()
        train_s = time.time() - t0
        m.eval()
        with torch.inference_mode():
            for i in test:
                r = records[i]
                r["ce"] = m(**encode([(r["question"], t) for t in r["texts"]])).logits.squeeze(-1).numpy()
        figures = {"fold": fold, "train_pairs": len(pairs), "train_s": round(train_s), "pairs_per_s": round(len(pairs) * args.epochs / train_s, 1)}
        for name in ("sq", "mh"):
            held = [records[i] for i in test if records[i]["set"] == name and records[i]["y"].any()]
            figures[name] = {"questions": len(held), "today": first_answers(held, 0, 1), "cross_encoder": first_answers(held, 1, 0)}
            figures[name].update({f"blend_{w}": first_answers(held, w) for w in (0.1, 0.5, 1.0)})
        print(json.dumps(figures), flush=True)


if __name__ == "__main__":
    main()
