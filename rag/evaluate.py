"""`rag eval`: run a dataset through the same Pipeline.ask as `rag ask` and score it.

MultiHop-RAG query files (a list of {query, answer, question_type, evidence_list})
are scored as the benchmark's official `retrieval_evaluate.py` does: a retrieved
chunk is relevant when a gold `fact`, whitespace removed, is inside its text;
Hits@4, Hits@10, MRR@10 and MAP@10 (divided by min(#facts, 10)) over the
non-null queries, and all_evidence@10: every gold fact is in one of the top 10.
On top: citation hit rate (a cited sentence overlaps a gold
fact) and abstention precision / recall, where `null_query` items (and the
off-topic questions in rag/data/offtopic_questions.txt, shipped with the package)
should abstain.
The answer figures of `answer_figures` follow docs/evaluation.md ("Answers: what a reader gets";
overall and per question type).

SQuAD v1.1 files ({"data": [{"title", "paragraphs": [{"context", "qas"}]}]}) are
indexed paragraph by paragraph and scored on passage hit@3 (the gold paragraph
among the top 3 passages), answer-sentence hit (a cited sentence contains a gold
answer, plain substring), the mean number of cited sentences (abstentions count
0), precision (cited sentences holding a gold answer / all cited sentences), and
how often the bold short answer is shown and right (it and a gold answer, lower-cased,
hold one another).
"""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Iterable
from pathlib import Path

from rag.answer import Answer
from rag.llm import MARKER, NO_ANSWER
from rag.pipeline import Pipeline
from rag.settings import DEFAULT_K

OFFTOPIC = Path(__file__).resolve().parent / "data" / "offtopic_questions.txt"
"""Questions no news corpus answers; package data (pyproject `package-data`), so an
installed `rag eval` scores abstention on the same questions as a checkout."""


def offtopic_questions() -> list[str]:
    """The off-topic questions; a missing file is an error, never a silently different figure."""
    try:
        return [line for line in OFFTOPIC.read_text(encoding="utf-8").splitlines() if line.strip()]
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{OFFTOPIC} is missing (it ships with the rag-news package: reinstall it); "
            "without it the abstention figures would cover other questions"
        ) from None


def squash(text: str) -> str:
    return re.sub(r"\s+", "", text)


def kind_of(data: object) -> str:
    if isinstance(data, dict) and "data" in data:
        return "squad"
    if isinstance(data, list) and data and "evidence_list" in data[0]:
        return "multihop"
    raise ValueError("not a MultiHop-RAG query list or a SQuAD v1.1 file")


def squad_corpus(data: dict) -> list[dict]:
    """SQuAD paragraphs as articles: one article per paragraph, id 'title#i'."""
    return [
        {"url": f"squad://{article['title']}#{i}", "title": article["title"].replace("_", " "), "body": p["context"]}
        for article in data["data"]
        for i, p in enumerate(article["paragraphs"])
    ]


def squad_questions(data: dict) -> list[dict]:
    return [
        {
            "query": qa["question"],
            "article_id": f"squad://{article['title']}#{i}",
            "answers": [a["text"] for a in qa["answers"]],
        }
        for article in data["data"]
        for i, p in enumerate(article["paragraphs"])
        for qa in p["qas"]
    ]


def latency(seconds: list[float]) -> dict:
    ordered = sorted(seconds)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return {"latency_p50_ms": round(pick(0.5), 1), "latency_p95_ms": round(pick(0.95), 1)}


def _ask_all(
    pipeline: Pipeline, questions: Iterable[str], k: int, llm: bool = False
) -> tuple[list[Answer], list[float], list[str]]:
    """Answers, seconds each, and with `llm` the text the model generated, kept
    even where verification or a fallback put the extractive answer in its place."""
    answers, seconds, generated = [], [], []
    for question in questions:
        started = time.perf_counter()
        if llm:
            items = list(pipeline.stream(question, k=k))
            answers.append(items.pop())  # text pieces first, the Answer last
            generated.append("".join(items))
        else:
            answers.append(pipeline.ask(question, k=k))
            generated.append("")
        seconds.append(time.perf_counter() - started)
    return answers, seconds, generated


def evaluate_multihop(
    pipeline: Pipeline, queries: list[dict], k: int = DEFAULT_K, offtopic: bool = True, llm: bool = False
) -> dict:
    answers, seconds, generated = _ask_all(pipeline, (q["query"] for q in queries), k, llm)
    hits4 = hits10 = rr = average_precision = cited_hit = all_found = 0.0
    answerable = 0
    for query, answer in zip(queries, answers):
        facts = [squash(e["fact"]) for e in query["evidence_list"]]
        if not facts:
            continue
        answerable += 1
        texts = [squash(p.text) for p in answer.passages[:10]]
        ranks = [i for i, text in enumerate(texts) if any(f in text for f in facts)]
        if ranks:
            hits10 += 1
            hits4 += ranks[0] < 4
            rr += 1 / (ranks[0] + 1)
        found: set[str] = set()
        relevant = 0
        precision_sum = 0.0
        for i, text in enumerate(texts):
            new = [f for f in facts if f in text and f not in found]
            if new:
                found.update(new)
                relevant += 1
                precision_sum += relevant / (i + 1)
        average_precision += precision_sum / min(len(facts), 10)
        all_found += len(found) == len(set(facts))
        cited_hit += any(overlaps_fact(c.sentence, facts) for c in answer.citations)
    should_abstain = [not q["evidence_list"] for q in queries]
    did_abstain = [a.abstained for a in answers]
    if offtopic:
        extra, extra_seconds, _ = _ask_all(pipeline, offtopic_questions(), k)
        should_abstain += [True] * len(extra)
        did_abstain += [a.abstained for a in extra]
        seconds += extra_seconds
    result = {
        "questions": len(queries),
        "answerable": answerable,
        "hits@4": hits4 / answerable,
        "hits@10": hits10 / answerable,
        "mrr@10": rr / answerable,
        "map@10": average_precision / answerable,
        "all_evidence@10": all_found / answerable,
        "citation_hit_rate": cited_hit / answerable,
        "mean_cited_sentences": statistics.mean(len(a.citations) for a in answers),
        **abstention(should_abstain, did_abstain),
        **answer_figures(queries, answers),
        **latency(seconds),
        **(llm_figures(queries, answers, generated) if llm else {}),
    }
    return {key: round(v, 4) if isinstance(v, float) else v for key, v in result.items()}


YES_NO = {"yes", "no", "before", "after", "insufficient information."}
"""Gold answers that are not a name: "name in the answer" skips their questions."""


def overlaps_fact(sentence: str, squashed_facts: list[str]) -> bool:
    """A cited sentence is a gold fact: one holds the other, whitespace removed."""
    s = squash(sentence)
    return any(s in f or f in s for f in squashed_facts)


def answer_figures(queries: list[dict], answers: list[Answer]) -> dict:
    """What a reader gets, per MultiHop-RAG question type and over all answerable
    questions: cite-hit (some cited sentence is a gold fact), precision (share of
    cited sentences that are gold facts, pooled), cited (citations per answer,
    abstentions count 0), every needed article cited (the gold evidence urls are
    a subset of the cited urls), name in the answer (gold answer, lower-cased, in
    the answer text; only questions whose answer is not yes / no / before / after),
    and the share refused. Null queries: the share refused."""
    groups: dict[str, list[tuple[dict, Answer]]] = {}
    for query, answer in zip(queries, answers):
        kind = str(query.get("question_type", "")).removesuffix("_query") or "all"
        if not query["evidence_list"]:
            kind = "null"
        groups.setdefault(kind, []).append((query, answer))
        if kind != "null" and kind != "all":
            groups.setdefault("all", []).append((query, answer))
    out: dict[str, float | int] = {}
    for kind, items in sorted(groups.items()):
        n = len(items)
        if kind == "null":
            out["null.n"] = n
            out["null.refused"] = sum(a.abstained for _, a in items) / n
            continue
        cited = [c for _, a in items for c in a.citations]
        gold = {id(q): [squash(e["fact"]) for e in q["evidence_list"]] for q, _ in items}
        named = [(q, a) for q, a in items if str(q.get("answer", "")).strip().lower() not in YES_NO and q.get("answer")]
        out[f"{kind}.n"] = n
        out[f"{kind}.cite_hit"] = sum(any(overlaps_fact(c.sentence, gold[id(q)]) for c in a.citations) for q, a in items) / n
        out[f"{kind}.precision"] = (
            sum(overlaps_fact(c.sentence, gold[id(q)]) for q, a in items for c in a.citations) / max(1, len(cited))
        )
        out[f"{kind}.cited"] = len(cited) / n
        out[f"{kind}.every_article_cited"] = (
            sum({e.get("url", "") for e in q["evidence_list"]} <= {c.url for c in a.citations} for q, a in items) / n
        )
        out[f"{kind}.name_in_answer"] = sum(q["answer"].lower() in a.text.lower() for q, a in named) / max(1, len(named))
        out[f"{kind}.name_questions"] = len(named)
        out[f"{kind}.refused"] = sum(a.abstained for _, a in items) / n
    return out


def llm_figures(queries: list[dict], answers: list[Answer], generated: list[str]) -> dict:
    """`answer_accuracy` as the benchmark counts it: the gold short answer appears
    in the text the model generated (a null query is right when the model said the
    sources do not contain it, or the pipeline abstained before asking). The same
    test on the answer finally shown (after verification and any fallback), the
    share of generated texts with any [n] marker, of answers shown as the model
    gave them, and of their sentences whose citations verified."""

    def correct(query: dict, text: str, abstained: bool) -> bool:
        if not query["evidence_list"]:
            return abstained or NO_ANSWER in text.lower()
        return query["answer"].lower() in text.lower()

    claims = [c for a in answers for c in a.claims]
    n = len(queries)
    return {
        "answer_accuracy": sum(correct(q, g, a.abstained and not g) for q, a, g in zip(queries, answers, generated)) / n,
        "shown_answer_accuracy": sum(correct(q, a.text, a.abstained) for q, a in zip(queries, answers)) / n,
        "generated_with_citations": sum(bool(MARKER.search(g)) for g in generated) / max(1, sum(bool(g) for g in generated)),
        "llm_answers": sum(a.mode == "llm" for a in answers) / n,
        "fallbacks": sum(bool(a.notice) for a in answers) / n,
        "verified_sentences": sum(c.supported for c in claims) / max(1, len(claims)),
    }


def abstention(should: list[bool], did: list[bool]) -> dict:
    true_positive = sum(s and d for s, d in zip(should, did))
    return {
        "abstain_expected": sum(should),
        "abstain_precision": true_positive / max(1, sum(did)),
        "abstain_recall": true_positive / max(1, sum(should)),
        "false_abstain_rate": sum(d and not s for s, d in zip(should, did)) / max(1, len(should) - sum(should)),
    }


def evaluate_squad(pipeline: Pipeline, questions: list[dict], k: int = DEFAULT_K) -> dict:
    answers, seconds, _ = _ask_all(pipeline, (q["query"] for q in questions), k)
    passage_hit = sentence_hit = holding = direct = direct_right = 0
    for question, answer in zip(questions, answers):
        passage_hit += any(p.article_id == question["article_id"] for p in answer.passages[:3])
        # Plain substring, as the acceptance scores it.
        holds = [any(g in c.sentence for g in question["answers"]) for c in answer.citations]
        sentence_hit += any(holds)
        holding += sum(holds)
        if answer.direct:
            shown = answer.direct.lower()
            direct += 1
            direct_right += any(g.lower() in shown or shown in g.lower() for g in question["answers"])
    n = len(questions)
    cited = sum(len(a.citations) for a in answers)
    result = {
        "questions": n,
        "passage_hit@3": passage_hit / n,
        "answer_sentence_hit": sentence_hit / n,
        "mean_cited_sentences": cited / n,
        "precision": holding / max(1, cited),
        "abstained": sum(a.abstained for a in answers) / n,
        # The bold short answer: how often one is shown, and how often it is (in) a gold answer.
        "direct_shown": direct / n,
        "direct_right": direct_right / max(1, direct),
        **latency(seconds),
    }
    return {key: round(v, 4) if isinstance(v, float) else v for key, v in result.items()}
