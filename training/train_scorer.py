"""Train the sentence scorer (training/scorer.py) on the development files and write
its weights to training/scorer.json.

    python -m training.train_scorer --candidates /tmp/scorer-cands      # reuse collected candidates
    python -m training.train_scorer --multihop-index /tmp/mh --squad-index /tmp/sq --candidates /tmp/c

Candidates are the sentences `Answerer.evidence` ranks for each development
question (MultiHop-RAG queries_dev.json plus the off-topic questions, SQuAD
dev-v1.1.dev.json); they are collected once into `--candidates` (mh.pkl, sq.pkl)
and reused. Figures are k-fold cross-validated: SQuAD folds by article title,
MultiHop-RAG folds by question. See training/README.md and training/SCORER.md.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from pathlib import Path

import numpy as np
import Stemmer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

from rag.cues import STOPWORDS, WORD, previous_key
from rag.evaluate import squash
from training.figures import answerable, report
from training.scorer import ANSWERABLE, FEATURES, ScorerWeights, answerable_features, features

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def collect(kind: str, index: Path, data: Path) -> list[dict]:
    """Each question's candidate sentences, as `Answerer.evidence` ranks them."""
    from rag import evaluate as ev
    from rag.answer import Answerer
    from rag.pipeline import Pipeline
    from rag.settings import Settings

    pipe = Pipeline(Settings.from_env(index_dir=index), watch=False)
    captured: dict = {}
    original = Answerer.compose

    def compose(self, evidence):
        captured["e"] = evidence
        return original(self, evidence)

    Answerer.compose = compose
    if kind == "squad":
        qs = ev.squad_questions(json.loads((data / "squad" / "dev-v1.1.dev.json").read_text()))
    else:
        qs = json.loads((data / "multihop" / "queries_dev.json").read_text())
        qs += [{"query": q, "evidence_list": [], "question_type": "offtopic", "answer": ""} for q in ev.offtopic_questions()]
    rows = []
    for q in qs:
        captured.clear()
        a = pipe.ask(q["query"])
        e = captured.get("e")
        cands = []
        if e is not None:
            rank = {h.chunk_id: i for i, h in enumerate(e.passages)}
            for c in e.sentences:
                cands.append(dict(article_id=c.sentence.article_id, position=c.sentence.position, text=c.text,
                                  vector=c.vector.astype(np.float32), similarity=c.similarity, score=c.score,
                                  chunk_rank=rank.get(c.hit.chunk_id, 99), hit_score=c.hit.score,
                                  hit_similarity=c.hit.similarity, source=c.hit.source, published=c.hit.published,
                                  url=c.hit.url))
        rows.append(dict(q=q, cands=cands, answer=a.to_dict(),
                         ev=None if e is None else dict(outlets=e.outlets, days=sorted(e.days), several=e.several,
                                                        asks=e.asks, unknown=e.unknown_outlets,
                                                        confidence=e.confidence, abstain=e.abstain, query=e.query)))
    Answerer.compose = original
    return rows


def labels(record: dict) -> np.ndarray:
    """1 for a sentence that answers: SQuAD, it holds a gold answer text; MultiHop-RAG,
    it and a gold fact hold one another (whitespace removed). None for null/off-topic."""
    q, texts = record["q"], [c["text"] for c in record["cands"]]
    if "answers" in q:
        return np.array([any(a in t for a in q["answers"]) for t in texts], dtype=float)
    facts = [squash(e["fact"]) for e in q["evidence_list"]]
    return np.array([any(s in f or f in s for f in facts) for s in map(squash, texts)], dtype=float)


def table(record: dict, stem) -> np.ndarray:
    """The features of one record's candidates, computed as Answerer would."""
    terms = lambda text: {stem(w.lower()) for w in WORD.findall(text) if w.lower() not in STOPWORDS}  # noqa: E731
    cands, ev = record["cands"], record["ev"] or {}
    question = " ".join(record["q"]["query"].split())
    words = {(c["article_id"], c["position"]): terms(c["text"]) for c in cands}
    keys = [(c["article_id"], c["position"]) for c in cands]
    return features(
        question,
        similarities=[c["similarity"] for c in cands],
        asked=terms(question),
        words=[words[k] for k in keys],
        before=[words.get(previous_key(k), set()) for k in keys],
        texts=[c["text"] for c in cands],
        chunk_ranks=[c["chunk_rank"] for c in cands],
        hit_similarities=[c["hit_similarity"] for c in cands],
        article_ids=[c["article_id"] for c in cands],
        positions=[c["position"] for c in cands],
        sources=[c["source"] or "" for c in cands],
        published=[c["published"] or "" for c in cands],
        outlets=ev.get("outlets", []),
        days=set(ev.get("days", [])),
        asks=ev.get("asks"),
    )


def fact_groups(rows: list[dict]) -> list[str]:
    """MultiHop-RAG questions joined when they share a gold fact (directly or through
    others): 2,385 evidence items of the dev queries are only 660 facts, so folds by
    question alone would test on sentences already seen as positives."""
    parent: dict = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            x = parent[x]
        return x

    for i, r in enumerate(rows):
        for e in r["q"]["evidence_list"]:
            parent[find(("q", i))] = find(("f", e["fact"]))
    return [f"mh:{find(('q', i))}" for i in range(len(rows))]


def fit(x: np.ndarray, y: np.ndarray, c: float, seed: int) -> tuple[np.ndarray, float]:
    """Logistic regression on standardised columns, returned in raw units."""
    mean, scale = x.mean(0), x.std(0) + 1e-9
    model = LogisticRegression(C=c, max_iter=2000, random_state=seed).fit((x - mean) / scale, y)
    coef = model.coef_[0] / scale
    return coef, float(model.intercept_[0] - coef @ mean)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--candidates", type=Path, required=True, help="folder of mh.pkl / sq.pkl (collected when missing)")
    p.add_argument("--multihop-index", type=Path, help="MultiHop-RAG dev index (`rag eval` builds it); for collecting")
    p.add_argument("--squad-index", type=Path, help="SQuAD dev index; for collecting")
    p.add_argument("--data", type=Path, default=DATA, help="the development data folder (../shared/data)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--c", type=float, default=1.0, help="inverse regularisation strength")
    p.add_argument("--multihop-folds", choices=("fact", "question"), default="fact",
                   help="group MultiHop-RAG questions by shared gold facts (default) or by question")
    p.add_argument("--out", type=Path, default=ROOT / "training" / "scorer.json")
    p.add_argument("--report", type=Path, help="write the figures here as JSON")
    args = p.parse_args(argv)
    t0 = time.time()
    sets = {}
    for kind, name, index in (("multihop", "mh", args.multihop_index), ("squad", "sq", args.squad_index)):
        path = args.candidates / f"{name}.pkl"
        if not path.exists():
            if index is None:
                sys.exit(f"{path} is missing: give --{kind}-index to collect it")
            args.candidates.mkdir(parents=True, exist_ok=True)
            pickle.dump(collect(kind, index, args.data), path.open("wb"))
        sets[name] = pickle.load(path.open("rb"))
    stem = Stemmer.Stemmer("english").stemWord
    t1 = time.time()
    records, tables, ys, groups = [], [], [], []
    for name, rows in sets.items():
        by_fact = fact_groups(rows) if name == "mh" and args.multihop_folds == "fact" else None
        for i, r in enumerate(rows):
            r["set"] = name
            records.append(r)
            tables.append(table(r, stem))
            ys.append(labels(r) if r["cands"] else np.zeros(0))
            if name == "sq":
                groups.append(f"sq:{r['q']['article_id'].split('#')[0]}")  # the article title
            else:
                groups.append(by_fact[i] if by_fact else f"mh:{i}")
    t2 = time.time()
    print(f"features: {t2 - t1:.1f} s for {len(records)} questions", file=sys.stderr)
    # k-fold by group: SQuAD by article title, MultiHop-RAG by question.
    folds = GroupKFold(n_splits=args.folds)
    probs: list[np.ndarray] = [np.zeros(0)] * len(records)
    idx = np.arange(len(records))
    splits = list(folds.split(idx, groups=groups))
    for train, test in splits:
        x = np.concatenate([tables[i] for i in train])
        y = np.concatenate([ys[i] for i in train])
        coef, b = fit(x, y, args.c, args.seed)
        for i in test:
            probs[i] = 1 / (1 + np.exp(-(tables[i] @ coef + b)))
    # The question-level model (is anything here an answer?) is stacked on the
    # out-of-fold candidate probabilities, and cross-validated on the same folds.
    q = np.stack([answerable_features(t, p) for t, p in zip(tables, probs)])
    has_answer = np.array([answerable(r) for r in records], dtype=float)
    answerable_probs = np.zeros(len(records))
    for train, test in splits:
        a_coef, a_b = fit(q[train], has_answer[train], args.c, args.seed)
        answerable_probs[test] = 1 / (1 + np.exp(-(q[test] @ a_coef + a_b)))
    t3 = time.time()
    figures = report(records, ys, probs, answerable_probs)
    x, y = np.concatenate(tables), np.concatenate(ys)
    t4 = time.time()
    coef, b = fit(x, y, args.c, args.seed)
    a_coef, a_b = fit(q, has_answer, args.c, args.seed)
    fit_s = time.time() - t4
    weights = ScorerWeights(FEATURES, coef, b, figures["abstain_below"], figures["keep_ratio"], a_coef, a_b)
    args.out.write_text(json.dumps(weights.to_json(), indent=1) + "\n")
    figures["cost"] = {"features_s": round(t2 - t1, 1), "cv_fit_s": round(t3 - t2, 1), "final_fit_s": round(fit_s, 2),
                       "pairs": len(y), "positives": int(y.sum()), "total_s": round(time.time() - t0, 1)}
    figures["weights"] = dict(zip(FEATURES, np.round(coef, 4).tolist()))
    figures["answerable_weights"] = dict(zip(ANSWERABLE, np.round(a_coef, 4).tolist()))
    figures["folds"] = {"k": args.folds, "squad": "by article title", "multihop": f"by {args.multihop_folds}"}
    text = json.dumps(figures, indent=1)
    print(text)
    if args.report:
        args.report.write_text(text + "\n")


if __name__ == "__main__":
    main()
