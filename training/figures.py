"""Development figures of the sentence scorer from cross-validated probabilities."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import roc_auc_score

RATIOS = (0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 1.01)
"""Picking rules tried: keep further sentences whose probability >= r x the best (1.01: the best alone)."""
MAX_SENTENCES = 3
MAX_REDUNDANCY = 0.95
REFUSE_AT_MOST = 0.01


def answerable(record: dict) -> bool:
    q = record["q"]
    return "answers" in q or bool(q.get("evidence_list"))


def pick(values: np.ndarray, vectors: np.ndarray, ratio: float) -> list[int]:
    """Best first, further ones while >= ratio x best and not repeating a picked one."""
    order = np.argsort(-values, kind="stable")
    picked = [int(order[0])]
    for i in order[1:]:
        if len(picked) >= MAX_SENTENCES or values[i] < ratio * values[order[0]]:
            break
        if max(float(vectors[i] @ vectors[j]) for j in picked) < MAX_REDUNDANCY:
            picked.append(int(i))
    return picked


def threshold(best: np.ndarray, share: float = REFUSE_AT_MOST) -> float:
    """The highest threshold that refuses (best < threshold) at most `share` of `best`."""
    ordered = np.sort(best)
    return float(ordered[int(np.floor(share * len(ordered)))])


def report(records: list[dict], ys: list[np.ndarray], probs: list[np.ndarray], answerable_probs: np.ndarray) -> dict:
    """Per data set: first pick, AUC, picking rules, and refusals at the threshold on
    `answerable_probs` (and, for comparison, on the best candidate's probability)
    that refuses at most 1 % of each set's answerable questions."""
    out: dict = {}
    limits = {}
    best_limits = {}
    for name in ("sq", "mh"):
        idx = [i for i, r in enumerate(records) if r["set"] == name]
        ans = [i for i in idx if answerable(records[i])]
        # A question without candidates has best probability 0 (refused).
        best = {i: float(probs[i].max()) if len(probs[i]) else 0.0 for i in idx}
        best_limits[name] = threshold(np.array([best[i] for i in ans]))
        limits[name] = threshold(np.array([answerable_probs[i] for i in ans]))
        d = {"questions": len(idx), "answerable": len(ans)}
        d["candidates_per_question"] = round(float(np.mean([len(ys[i]) for i in idx])), 1)
        d["a_positive_among_candidates"] = round(float(np.mean([ys[i].sum() > 0 for i in ans])), 4)
        d["first_pick"] = round(float(np.mean([len(ys[i]) > 0 and ys[i][np.argmax(probs[i])] == 1 for i in ans])), 4)
        today = [np.array([c["score"] for c in records[i]["cands"]]) for i in idx]
        d["first_pick_today"] = round(
            float(np.mean([len(ys[i]) > 0 and ys[i][np.argmax(t)] == 1 for i, t in zip(idx, today) if i in set(ans)])), 4
        )
        y = np.concatenate([ys[i] for i in idx])
        d["auc"] = round(float(roc_auc_score(y, np.concatenate([probs[i] for i in idx]))), 4)
        d["auc_today"] = round(float(roc_auc_score(y, np.concatenate(today))), 4)
        for r in RATIOS:
            cited = hits = good = 0
            for i in ans:
                if not len(ys[i]):
                    continue
                vectors = np.stack([c["vector"] for c in records[i]["cands"]])
                chosen = pick(probs[i], vectors, r)
                cited += len(chosen)
                good += int(ys[i][chosen].sum())
                hits += bool(ys[i][chosen].any())
            d[f"pick r={r}"] = {"hit": round(hits / len(ans), 4), "cited": round(cited / len(ans), 2),
                                "precision": round(good / max(1, cited), 4)}
        cited = hits = good = 0
        for i, t in zip(idx, today):
            if i not in set(ans) or not len(ys[i]):
                continue
            vectors = np.stack([c["vector"] for c in records[i]["cands"]])
            chosen = pick(t, vectors, 0.87)
            cited += len(chosen)
            good += int(ys[i][chosen].sum())
            hits += bool(ys[i][chosen].any())
        d["pick today (score, keep 0.87)"] = {"hit": round(hits / len(ans), 4), "cited": round(cited / len(ans), 2),
                                              "precision": round(good / max(1, cited), 4)}
        d["_best"] = best
        d["_ans"] = ans
        d["_idx"] = idx
        out[name] = d
    limit, best_limit = min(limits.values()), min(best_limits.values())
    out["abstain_below"] = limit
    out["abstain_below_per_set"] = {k: round(v, 6) for k, v in limits.items()}
    out["best_probability_threshold"] = round(best_limit, 6)
    for name in ("sq", "mh"):
        d = out[name]
        best, ans, idx = d.pop("_best"), d.pop("_ans"), d.pop("_idx")
        unanswerable = [i for i in idx if not answerable(records[i])]
        ev = {i: records[i]["ev"] or {"abstain": True, "unknown": []} for i in idx}
        unknown = {i: bool(ev[i].get("unknown")) for i in idx}
        rules = {
            "answerable": {i: answerable_probs[i] < limit for i in idx},
            "answerable_or_unknown_outlet": {i: answerable_probs[i] < limit or unknown[i] for i in idx},
            "best_probability": {i: best[i] < best_limit for i in idx},
            "best_probability_or_unknown_outlet": {i: best[i] < best_limit or unknown[i] for i in idx},
            "today": {i: bool(ev[i]["abstain"]) for i in idx},
        }
        for rule, refused in rules.items():
            d[f"refused answerable, {rule}"] = round(float(np.mean([refused[i] for i in ans])), 4)
            if unanswerable:
                d[f"refused unanswerable, {rule}"] = round(float(np.mean([refused[i] for i in unanswerable])), 4)
        d["unanswerable"] = len(unanswerable)
    # The suggested rule: the one with the best SQuAD + MultiHop-RAG hit among those citing <= 1.6 on SQuAD.
    fits = [r for r in RATIOS if out["sq"][f"pick r={r}"]["cited"] <= 1.6] or [max(RATIOS)]
    out["keep_ratio"] = max(fits, key=lambda r: out["sq"][f"pick r={r}"]["hit"] + out["mh"][f"pick r={r}"]["hit"])
    return out
