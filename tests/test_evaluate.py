"""`rag eval`: the MultiHop-RAG scorer on hand-made cases, and a real SQuAD run when the data is there."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import SHARED_DATA

from rag.answer import Answer, Citation
from rag.evaluate import abstention, answer_figures, evaluate_multihop, evaluate_squad
from rag.retrieve import Hit


class FakePipeline:
    """Returns prepared answers: lets the scorer be checked against hand-computed figures."""

    def __init__(self, answers, generated=()):
        self.answers = iter(answers)
        self.generated = iter(generated)

    def ask(self, question, k=10, llm=False):
        return next(self.answers)

    def stream(self, question, k=10):
        yield next(self.generated)
        yield next(self.answers)


def hit(text):
    return Hit(chunk_id=0, article_id="a", text=text, start=0, end=len(text), first_sentence=0, last_sentence=0, score=1.0)


def cite(sentence, url=""):
    return Citation(1, sentence, "a", "", "", "", url, "", 0, len(sentence), 1.0)


def test_answer_figures_follow_the_metric_definitions():
    """docs/evaluation.md "Answers: what a reader gets": per question type, hand-computed."""
    queries = [
        {"query": "q1", "answer": "OpenAI", "question_type": "inference_query",
         "evidence_list": [{"fact": "OpenAI  made it.", "url": "u1"}, {"fact": "It is big.", "url": "u2"}]},
        {"query": "q2", "answer": "Yes", "question_type": "comparison_query",
         "evidence_list": [{"fact": "A fact.", "url": "u3"}]},
        {"query": "q3", "answer": "Insufficient information.", "question_type": "null_query", "evidence_list": []},
        {"query": "q4", "answer": "Insufficient information.", "question_type": "null_query", "evidence_list": []},
    ]
    answers = [
        # both articles cited, one of three sentences a gold fact (whitespace differs), name in text
        Answer(question="q1", text="openai made it. [1]", abstained=False,
               citations=[cite("OpenAI made it.", "u1"), cite("Other.", "u2"), cite("Noise.", "u9")]),
        Answer(question="q2", text="x", abstained=True),
        Answer(question="q3", text="x", abstained=True),
        Answer(question="q4", text="x", abstained=False, citations=[cite("Noise.")]),
    ]
    f = answer_figures(queries, answers)
    assert f["inference.cite_hit"] == 1 and f["inference.every_article_cited"] == 1
    assert f["inference.precision"] == 1 / 3 and f["inference.cited"] == 3
    assert f["inference.name_in_answer"] == 1 and f["inference.name_questions"] == 1
    assert f["comparison.cited"] == 0 and f["comparison.refused"] == 1 and f["comparison.name_questions"] == 0
    assert f["all.n"] == 2 and f["all.cited"] == 1.5 and f["all.precision"] == 1 / 3 and f["all.every_article_cited"] == 0.5
    assert f["null.n"] == 2 and f["null.refused"] == 0.5


def test_squad_figures_are_plain_substring_and_pooled_precision():
    questions = [
        {"query": "q1", "article_id": "a", "answers": ["Normandy"]},
        {"query": "q2", "article_id": "a", "answers": ["1066"]},
    ]
    answers = [
        Answer(question="q1", text="x", abstained=False, citations=[cite("They settled in Normandy."), cite("Other.")],
               direct="normandy"),
        # lower-cased answer text does not count: the acceptance's substring is plain
        Answer(question="q2", text="x", abstained=False, citations=[cite("In normandy 1066 it was.")], direct="1067"),
    ]
    f = evaluate_squad(FakePipeline(answers), questions)
    assert f["answer_sentence_hit"] == 1 and f["mean_cited_sentences"] == 1.5
    assert f["precision"] == round(2 / 3, 4)
    # the bold short answer: shown for both, right (case aside) for one
    assert f["direct_shown"] == 1 and f["direct_right"] == 0.5


def test_multihop_scoring_matches_the_official_rules():
    queries = [
        {"query": "q1", "evidence_list": [{"fact": "Fact  one here."}, {"fact": "Fact two."}]},
        {"query": "q2", "evidence_list": [{"fact": "Missing fact."}]},
        {"query": "q3", "evidence_list": []},  # null_query: should abstain
    ]
    answers = [
        # fact one (whitespace differs) at rank 2, fact two at rank 5
        Answer(
            question="q1",
            text="x",
            abstained=False,
            citations=[cite("Fact one here.")],
            passages=[hit("a"), hit("xx Fact one\nhere. yy"), hit("b"), hit("c"), hit("Fact two.")],
        ),
        Answer(question="q2", text="x", abstained=False, citations=[cite("Nothing.")], passages=[hit("nothing")] * 10),
        Answer(question="q3", text="x", abstained=True),
    ]
    result = evaluate_multihop(FakePipeline(answers), queries, offtopic=False)
    assert result["answerable"] == 2
    assert result["hits@10"] == 0.5 and result["hits@4"] == 0.5
    assert result["mrr@10"] == 0.25  # (1/2 + 0) / 2
    assert result["map@10"] == round(((1 / 2 + 2 / 5) / 2) / 2, 4)
    assert result["all_evidence@10"] == 0.5  # q1 has both facts in its top 10, q2 none
    assert result["citation_hit_rate"] == 0.5
    assert (result["abstain_precision"], result["abstain_recall"]) == (1.0, 1.0)


def test_llm_answer_accuracy_counts_gold_answer_in_generated_text():
    from rag.answer import Claim

    queries = [
        {"query": "q1", "answer": "Donald Trump", "evidence_list": [{"fact": "f"}]},
        {"query": "q2", "answer": "Yes", "evidence_list": [{"fact": "f"}]},
        {"query": "q3", "answer": "Insufficient information.", "evidence_list": []},
        {"query": "q4", "answer": "OpenAI", "evidence_list": [{"fact": "f"}]},
    ]
    good = Answer(question="q1", text="It was donald trump [1].", abstained=False, mode="llm", claims=[Claim("It was donald trump [1].", (1,), True, 0.9)])
    wrong = Answer(question="q2", text="No [2].", abstained=False, mode="llm", claims=[Claim("No [2].", (2,), False, 0.1)])
    declined = Answer(question="q3", text="I could not find this.", abstained=True, mode="llm")
    # The model named the answer but cited nothing: the extractive answer was shown instead.
    fallback = Answer(question="q4", text="Sentences that do not name it.", abstained=False, notice="cited none; showing the extractive answer")
    pipeline = FakePipeline(
        [good, wrong, declined, fallback],
        generated=["It was donald trump [1].", "No [2].", "The sources do not contain the answer.", "It is OpenAI."],
    )
    result = evaluate_multihop(pipeline, queries, offtopic=False, llm=True)
    assert result["answer_accuracy"] == 0.75  # q1, q3 and q4 in what the model wrote
    assert result["shown_answer_accuracy"] == 0.5  # q1 and q3 in what the user saw
    assert result["generated_with_citations"] == 0.5
    assert result["llm_answers"] == 0.75 and result["fallbacks"] == 0.25
    assert result["verified_sentences"] == 0.5


def test_abstention_figures():
    assert abstention([True, True, False, False], [True, False, True, False]) == {
        "abstain_expected": 2,
        "abstain_precision": 0.5,
        "abstain_recall": 0.5,
        "false_abstain_rate": 0.5,
    }


SQUAD = SHARED_DATA / "squad" / "dev-v1.1.dev.json"


@pytest.mark.skipif(not SQUAD.exists(), reason="../shared/data is not present")
def test_rag_eval_on_squad_subset(tmp_path):
    """A real end-to-end run: index two SQuAD articles' paragraphs, answer their questions."""
    data = json.loads(SQUAD.read_text())
    small = {"version": "1.1", "data": data["data"][:1]}
    for article in small["data"]:
        article["paragraphs"] = article["paragraphs"][:12]
    dataset = tmp_path / "squad-small.json"
    dataset.write_text(json.dumps(small))
    result = subprocess.run(
        [sys.executable, "-m", "rag.cli", "eval", str(dataset), "--index", str(tmp_path / "idx"), "--limit", "40", "--json"],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["kind"] == "squad" and figures["questions"] == 40
    assert figures["passage_hit@3"] >= 0.7
    assert figures["answer_sentence_hit"] >= 0.6
    assert 1 <= figures["mean_cited_sentences"] <= 4
