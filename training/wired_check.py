"""End-to-end check of the scorer wired into `Answerer.evidence`, before rag/answer.py is.

    python -m training.wired_check squad|multihop KEEP SEVERAL_KEEP MIN_NAMED --index DIR
    python -m training.wired_check squad|multihop today --candidates DIR   # main's answers, from the cache

`evidence` below is main's `Answerer.evidence` with the scorer's lines added (marked);
it is patched in for the run only. The scorer was fitted on these same questions, so
the figures are in-sample: a check that the wiring works and how the ratios of
`Answerer` behave on the probability scale, not an estimate (see SCORER.md for CV).
Delete this file once `Answerer` uses the scorer.
"""

import argparse
import json
import pickle
import time
from pathlib import Path
from types import SimpleNamespace as NS

from rag import cues
from rag import evaluate as ev
from rag.answer import Answerer, Evidence
from rag.cues import previous_key
from rag.followup import contextual_query, not_repeated
from rag.pipeline import Pipeline
from rag.retrieve import mentioned_dates
from rag.scorer import Scorer, features
from rag.settings import DEFAULT_K, Settings
from rag.sources import named_outlets, needs_several, unknown_outlets

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

def evidence(self, question, history=(), k=DEFAULT_K, filters=None):
    question = " ".join(question.split())
    query = contextual_query(question, history)
    vectors = self.embedder([question] if query == question else [question, query])
    outlets = named_outlets(question, self.retriever.mentioned_sources(question))
    unknown = unknown_outlets(question, self.retriever.sources)
    days = mentioned_dates(question)
    several = needs_several(question, outlets, days)
    read = self.read_chunks_several if several else self.read_chunks
    hits = self.retriever(query, k=max(k, read), filters=filters, query_vector=vectors[-1:])
    candidates = self._candidates(hits[:read])
    asked = self._terms(question)
    words = {c.key: self._terms(c.text) for c in candidates}
    asks = cues.asks_for(question)
    confidence = 0.0
    if candidates:
        self._score(question, query, vectors[0], vectors[-1], candidates, asked, words)
        self._cue(question, asks, candidates)
        # --- the wiring ---
        chunk_rank = {h.chunk_id: i for i, h in enumerate(hits)}
        table = features(
            question,
            similarities=[c.similarity for c in candidates],
            asked=asked,
            words=[words[c.key] for c in candidates],
            before=[words.get(previous_key(c.key), set()) for c in candidates],
            texts=[c.text for c in candidates],
            chunk_ranks=[chunk_rank[c.hit.chunk_id] for c in candidates],
            hit_similarities=[c.hit.similarity for c in candidates],
            article_ids=[c.sentence.article_id for c in candidates],
            positions=[c.sentence.position for c in candidates],
            sources=[c.hit.source for c in candidates],
            published=[c.hit.published for c in candidates],
            outlets=outlets, days=days, asks=asks,
        )
        probabilities = self.scorer(table)
        for c, p in zip(candidates, probabilities):
            c.score = float(p)
        confidence = self.scorer.answerable(table, probabilities)
        # --- end ---
    ranked = sorted(candidates, key=lambda c: -c.score)
    if query != question:
        ranked = not_repeated(ranked, history, self.keep_ratio)
    abstain = confidence < self.scorer.weights.abstain_below or bool(unknown)
    return Evidence(question, query, hits[:k], ranked, confidence, abstain, outlets, days, several, asks, unknown)

def run(kind, index, keep, several_keep, min_named):
    Answerer.evidence = evidence
    Answerer.scorer = Scorer()
    pipe = Pipeline(Settings.from_env(index_dir=Path(index)), watch=False)
    a = pipe.answerer
    a.keep_ratio, a.several_keep, a.min_named = keep, several_keep, min_named
    if kind == "squad":
        qs = ev.squad_questions(json.loads((DATA / "squad" / "dev-v1.1.dev.json").read_text()))
    else:
        qs = json.loads((DATA / "multihop" / "queries_dev.json").read_text())
        qs += [{"query": q, "evidence_list": [], "question_type": "offtopic", "answer": ""} for q in ev.offtopic_questions()]
    t = time.time()
    answers = [pipe.ask(q["query"]) for q in qs]
    return qs, answers, time.time() - t

def squad_figs(qs, answers):
    hit = hold = cited = 0
    for q, a in zip(qs, answers):
        h = [any(g in c.sentence for g in q["answers"]) for c in a.citations]
        hit += any(h)
        hold += sum(h)
        cited += len(h)
    return dict(hit=round(hit/len(qs),4), cited=round(cited/len(qs),2), precision=round(hold/max(1,cited),4),
                refused=round(sum(a.abstained for a in answers)/len(qs),4))

def mh_figs(qs, answers):
    real = [(q, a) for q, a in zip(qs, answers) if q["question_type"] != "offtopic"]
    f = ev.answer_figures([q for q, _ in real], [a for _, a in real])
    off = [a for q, a in zip(qs, answers) if q["question_type"] == "offtopic"]
    keys = ["all.cite_hit", "all.precision", "all.cited", "all.every_article_cited", "all.name_in_answer", "all.refused",
            "comparison.every_article_cited", "inference.every_article_cited", "temporal.every_article_cited", "null.refused"]
    out = {k: round(f[k], 4) for k in keys}
    out["offtopic.refused"] = round(sum(a.abstained for a in off) / max(1, len(off)), 4)
    return out

def today(kind, candidates):
    rows = pickle.load((candidates / f"{'sq' if kind == 'squad' else 'mh'}.pkl").open("rb"))
    qs = [r["q"] for r in rows]
    answers = [NS(abstained=r["answer"]["abstained"], text=r["answer"]["answer"],
                  citations=[NS(sentence=c["sentence"], url=c["url"]) for c in r["answer"]["citations"]]) for r in rows]
    return qs, answers

def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("kind", choices=("squad", "multihop"))
    p.add_argument("rule", nargs="+", help="'today', or KEEP SEVERAL_KEEP MIN_NAMED")
    p.add_argument("--index", type=Path, help="a copy of the development index")
    p.add_argument("--candidates", type=Path, help="the folder of train_scorer's mh.pkl / sq.pkl")
    args = p.parse_args()
    figures = squad_figs if args.kind == "squad" else mh_figs
    if args.rule == ["today"]:
        print(args.kind, "today", figures(*today(args.kind, args.candidates)), flush=True)
        return
    keep, several_keep, min_named = map(float, args.rule)
    qs, answers, seconds = run(args.kind, args.index, keep, several_keep, min_named)
    print(args.kind, f"keep={keep} several_keep={several_keep} min_named={min_named}", figures(qs, answers), f"{seconds:.0f} s")


if __name__ == "__main__":
    main()
