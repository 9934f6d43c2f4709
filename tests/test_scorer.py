"""The trained sentence scorer (training/scorer.py): shipped weights, features, probabilities."""

from __future__ import annotations

import json

import numpy as np
import pytest
import Stemmer

from rag.cues import STOPWORDS, WORD, asks_for
from training.scorer import FEATURES, WEIGHTS, Scorer, ScorerWeights, features

STEM = Stemmer.Stemmer("english").stemWord

ARTICLE = [
    "The city of Lyon held its annual glass festival on Saturday.",
    "Organisers expect thirty thousand visitors over the weekend.",
    "The festival was founded in 1987 by the potter Marie Duval.",
    "Food stalls line the river bank near the old bridge.",
    "Tickets cost twelve euros for adults and are free for children.",
]


def terms(text: str) -> set[str]:
    """The stemmed content words, as `Answerer._terms` makes them."""
    return {STEM(w.lower()) for w in WORD.findall(text) if w.lower() not in STOPWORDS}


def table_for(question: str, sentences: list[str], embedder) -> np.ndarray:
    vectors = embedder([question, *sentences])
    q, v = vectors[0], vectors[1:]
    words = [terms(s) for s in sentences]
    n = len(sentences)
    return features(
        question,
        similarities=(v @ q).tolist(),
        asked=terms(question),
        words=words,
        before=[set(), *words[:-1]],
        texts=sentences,
        chunk_ranks=[0] * n,
        hit_similarities=[float(v.mean(0) @ q)] * n,
        article_ids=["a"] * n,
        positions=list(range(n)),
        sources=["Lyon Daily"] * n,
        published=["2023-10-07T09:00:00+00:00"] * n,
        asks=asks_for(question),
    )


def test_shipped_weights_load_and_match_the_features():
    weights = ScorerWeights.load()
    assert weights.names == FEATURES
    assert weights.coef.shape == (len(FEATURES),)
    assert 0.0 < weights.abstain_below < 1.0
    assert 0.0 <= weights.keep_ratio <= 1.01


def test_weights_for_other_features_are_refused_naming_the_file(tmp_path):
    data = json.loads(WEIGHTS.read_text())
    data["features"] = data["features"][:-1]
    data["coef"] = data["coef"][:-1]
    path = tmp_path / "scorer.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"scorer\.json.*do not match"):
        ScorerWeights.load(path)
    data = json.loads(WEIGHTS.read_text())
    data["answerable_coef"] = data["answerable_coef"][:-1]
    path = tmp_path / "scorer.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"scorer\.json.*do not match"):
        ScorerWeights.load(path)
    path.write_text("{}")
    with pytest.raises(ValueError, match=r"scorer\.json"):
        ScorerWeights.load(path)
    with pytest.raises(FileNotFoundError, match="missing"):
        ScorerWeights.load(tmp_path / "absent.json")


@pytest.mark.parametrize(
    ("question", "answer"),
    [
        ("Who founded the festival?", 2),
        ("How much does a ticket to the glass festival cost for adults?", 4),
        ("How many visitors do the organisers of the festival expect?", 1),
    ],
)
def test_the_answering_sentence_scores_above_its_neighbours(embedder, question, answer):
    table = table_for(question, ARTICLE, embedder)
    assert table.shape == (len(ARTICLE), len(FEATURES))
    probs = Scorer()(table)
    assert probs.shape == (len(ARTICLE),)
    assert np.all((probs >= 0) & (probs <= 1))
    assert int(np.argmax(probs)) == answer, probs


def test_an_off_topic_question_is_refused_and_an_answered_one_is_not(embedder):
    scorer = Scorer()
    answered = table_for("Who founded the glass festival in Lyon?", ARTICLE, embedder)
    off_topic = table_for("What is the boiling point of liquid nitrogen?", ARTICLE, embedder)
    assert scorer(off_topic).max() < scorer(answered).max()
    p_answered = scorer.answerable(answered, scorer(answered))
    p_off_topic = scorer.answerable(off_topic, scorer(off_topic))
    assert 0.0 <= p_off_topic < scorer.weights.abstain_below <= p_answered <= 1.0


def test_no_candidates_give_no_probabilities():
    table = features("Who founded it?", [], set(), [], [], [], [], [], [], [], [], [])
    assert table.shape == (0, len(FEATURES))
    scorer = Scorer()
    assert scorer(table).shape == (0,)
    assert scorer.answerable(table, scorer(table)) == 0.0


def test_one_candidate_gets_one_probability(embedder):
    table = table_for("Who founded the glass festival in Lyon?", ARTICLE[2:3], embedder)
    probs = Scorer()(table)
    assert probs.shape == (1,)
    assert 0.0 <= probs[0] <= 1.0
    assert 0.0 <= Scorer().answerable(table, probs) <= 1.0


def test_candidate_columns_of_different_lengths_are_refused_naming_the_argument():
    with pytest.raises(ValueError, match="chunk_ranks has 1 values for 2 candidate texts"):
        features("Who?", [0.5, 0.4], set(), [set(), set()], [set(), set()], ["A.", "B."], [0],
                 [0.5, 0.5], ["a", "a"], [0, 1], ["X", "X"], ["", ""])
