"""Retrieval and extractive answers on small real indexes, and the `rag ask` contract."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rag.answer import NOT_FOUND, Turn
from rag.build import Builder
from rag.cues import leans_back, weighted_overlap
from rag.followup import contextual_query, is_follow_up
from rag.pipeline import Pipeline
from rag.retrieve import Filters, Retriever, interleave, mentioned_dates

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "Why did Russia-Turkey ties sour?"
TIES = "Ties between Moscow and Ankara soured after Erdogan initially refused to apologize for the attack"
JET = "In November 2015, Turkey shot down a Russian jet over Syria"

WHEAT = """Putin praises record wheat harvest

Grain Daily

October 3, 2023

Russian President Vladimir Putin said on Tuesday that the country's wheat harvest had reached a record level this year.

Putin told farmers in Krasnodar that exports of grain to Africa would grow next season.

The agriculture ministry expects the harvest to exceed 90 million tonnes, officials said.
"""


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, embedder):
    from conftest import SAMPLE

    root = tmp_path_factory.mktemp("qa")
    corpus = root / "corpus"
    corpus.mkdir()
    (corpus / SAMPLE.name).write_text(SAMPLE.read_text())
    (corpus / "wheat.txt").write_text(WHEAT)
    from rag.settings import Settings

    settings = Settings(corpus_dir=corpus, index_dir=root / "index")
    Builder(settings, embedder=embedder)()
    return Pipeline(settings, embedder=embedder)


def test_russia_turkey_cites_ties_and_jet_in_reading_order(pipeline):
    answer = pipeline.ask(QUESTION)
    assert not answer.abstained
    sentences = [c.sentence for c in answer.citations]
    ties = next(i for i, s in enumerate(sentences) if s.startswith(TIES))
    jet = next(i for i, s in enumerate(sentences) if s.startswith(JET))
    assert jet < ties  # reading order: the downing comes first
    assert len(answer.citations) <= 4
    for c in answer.citations:
        assert f"{c.sentence} [{c.n}]" in answer.text
        article = pipeline.store.article(c.article_id)
        assert article["text"][c.start : c.end] == c.sentence
        assert (c.title, c.source, c.published[:10]) == (
            "Putin condoles with Erdogan after mistaken airstrikes kill 3 Turkish troops",
            "Iran Press TV",
            "2017-02-09",
        )


def test_a_sentence_that_leans_back_comes_with_the_nearest_one_when_none_before_stands_alone(pipeline):
    # "... the statement read." leans on "Meanwhile, the Turkish army confirmed in a statement ...",
    # which leans back too, as do the two before it: the nearest is its context, not the third.
    answer = pipeline.ask("How many soldiers were wounded?")
    sentences = [c.sentence for c in answer.citations]
    wounded = next(i for i, s in enumerate(sentences) if "wounding 11 others" in s)
    assert wounded > 0 and sentences[wounded - 1].startswith("Meanwhile, the Turkish army confirmed in a statement")
    assert not any(s.startswith("During the phone call") for s in sentences)


def test_follow_up_is_understood_in_context(pipeline):
    first = pipeline.ask(QUESTION)
    follow = pipeline.ask("And what did Putin say about it?", history=[Turn(QUESTION, first.text)])
    assert not follow.abstained
    assert follow.citations[0].article_id.startswith("putin-condoles")
    said = [c.sentence for c in first.citations]
    assert any("condolences" in c.sentence or "called his Turkish counterpart" in c.sentence for c in follow.citations)
    assert not any(c.sentence in said for c in follow.citations)  # nothing repeated from the last answer
    # The same words with no history are about Putin in general: the wheat story competes.
    alone = pipeline.ask("And what did Putin say about it?")
    assert alone.query == "And what did Putin say about it?" and follow.query != alone.query


def test_follow_up_about_what_was_said_says_it_again(pipeline):
    """Having nothing new to add is not "not found": the answer repeats what holds."""
    mended = "the two sides mended their relations last year"
    question = "How did Russia-Turkey ties sour and mend?"
    first = pipeline.ask(question)
    assert mended in first.text  # the first answer already told how
    follow = pipeline.ask("And how were relations mended?", history=[Turn(question, first.text)])
    assert not follow.abstained
    assert any(mended in c.sentence for c in follow.citations)


FESTIVAL = """Glassblowers festival opens in Murano

Lagoon Times

June 1, 2020

The annual glassblowers festival in Murano opened on Friday with forty workshops.

Visitors watched master glassblowers shape vases at the furnace until midnight.

Organisers expect thirty thousand visitors during the glassblowers festival this year.
"""

STANDALONE = (
    "How many workshops opened at the glassblowers festival in Murano?",
    "What did visitors watch master glassblowers shape at the furnace?",
    "How many visitors do the organisers of the festival expect?",
)


@pytest.fixture(scope="module")
def festival(tmp_path_factory, embedder):
    """A three-sentence article: every question about it shares most sentences."""
    from rag.settings import Settings

    root = tmp_path_factory.mktemp("festival")
    (root / "corpus").mkdir()
    (root / "corpus" / "festival.txt").write_text(FESTIVAL)
    settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index")
    Builder(settings, embedder=embedder)()
    return Pipeline(settings, embedder=embedder)


@pytest.mark.parametrize("question", STANDALONE)
def test_standalone_question_does_not_depend_on_the_conversation(festival, question):
    """A question that is not a follow-up gets the answer it gets when asked first,
    even when earlier answers in the chat showed the very same sentences (it used
    to leave them out: "Organisers expect thirty thousand visitors" answered the
    furnace question after the furnace sentence had been shown once)."""
    alone = festival.ask(question)
    assert not alone.abstained and not is_follow_up(question)
    for before in STANDALONE:
        again = festival.ask(question, history=[Turn(before, festival.ask(before).text)])
        assert again.text == alone.text, f"after {before!r}"
        assert [c.start for c in again.citations] == [c.start for c in alone.citations]


def test_standalone_question_is_not_rewritten():
    history = [Turn(QUESTION, "Ties soured. [1]")]
    assert contextual_query("How large was the Russian wheat harvest in 2023?", history).startswith("How large")
    assert is_follow_up("What did he say about it?") and not is_follow_up("Who won the 2023 Rugby World Cup final?")


def test_off_topic_question_abstains_and_lists_passages(pipeline):
    answer = pipeline.ask("How do I bake sourdough bread at home?")
    assert answer.abstained and answer.text == NOT_FOUND and not answer.citations
    assert answer.passages  # the closest passages are still listed


# Answerable from the sample article, each phrased unlike its answer sentence: by
# similarity alone (the rule before) every one of them was refused.
PARAPHRASED = {
    "Which group is backed by the US?": "US-backed Kurdish group",
    "What was hit by mistake?": "accidentally hit a building",
    "Which talks did the leaders want to advance?": "Astana and Geneva peace talks",
    "Who mediates between Damascus and the opposition?": "acting as mediators",
    "What town are the two countries operating in?": "al-Bab",
}


@pytest.mark.parametrize("question", PARAPHRASED)
def test_answer_phrased_unlike_the_question_is_found(pipeline, question):
    answer = pipeline.ask(question)
    assert not answer.abstained
    assert any(PARAPHRASED[question] in c.sentence for c in answer.citations)


def test_off_topic_questions_are_still_refused(pipeline):
    questions = (ROOT / "rag" / "data" / "offtopic_questions.txt").read_text().splitlines()
    refused = [pipeline.ask(q).abstained for q in questions if q]
    assert len(refused) == 30 and all(refused)


def test_filters_by_outlet_and_date(pipeline):
    only_grain = pipeline.ask("What did Putin say?", filters=Filters(sources=("Grain Daily",)))
    assert {p.source for p in only_grain.passages} == {"Grain Daily"}
    old = pipeline.ask("What did Putin say?", filters=Filters(date_to="2018-01-01"))
    assert {p.article_id for p in old.passages} == {"putin-condoles-erdogan-2017-02-09.txt"}
    nothing = pipeline.ask("What did Putin say?", filters=Filters(date_from="2030-01-01"))
    assert nothing.abstained and not nothing.passages


def test_a_filter_searched_again_reuses_the_chunks_it_lets_through(pipeline, monkeypatch):
    """The parts of a question (and its second look) search one outlet again and again:
    the chunks an outlet's filter lets through are looked up once per snapshot."""
    retriever, grain = Retriever(pipeline.store, pipeline.embedder), Filters(sources=("Grain Daily",))
    first = [h.chunk_id for h in retriever("What did Putin say?", filters=grain)]
    looked_up = []
    lookup = retriever.store.chunk_ids_where
    monkeypatch.setattr(retriever.store, "chunk_ids_where", lambda *a: looked_up.append(a) or lookup(*a))
    assert [h.chunk_id for h in retriever("What did Putin say?", filters=Filters(sources=("grain daily",)))] == first
    assert looked_up == []  # the same outlet, any case
    assert {h.source for h in retriever("What did Putin say?", filters=Filters(date_to="2018-01-01"))} != {"Grain Daily"}
    assert len(looked_up) == 1  # another filter is looked up
    assert not retriever.allowed_chunks(grain).flags.writeable  # shared by every search: nobody may change it


def test_outlet_named_in_question_is_matched(pipeline):
    assert pipeline.retriever.mentioned_sources("What did Putin tell farmers, according to Grain Daily?") == ["Grain Daily"]
    hits = pipeline.retriever("What did Putin say, as reported by Grain Daily?", k=3)
    assert hits[0].source == "Grain Daily"


def test_day_named_in_question_is_matched(pipeline):
    """The same words find the article published on the day the question names."""
    for day, article_id in (("October 3, 2023", "wheat.txt"), ("9 February 2017", "putin-condoles-erdogan-2017-02-09.txt")):
        assert pipeline.retriever(f"What did Putin say on {day}?", k=3)[0].article_id == article_id


def test_mentioned_dates():
    assert mentioned_dates("TechCrunch on October 31, 2023, and again on Dec. 15 2023") == {"2023-10-31", "2023-12-15"}
    assert mentioned_dates("the 1st of Sept. 2023 and 2024-02-29") == {"2023-09-01", "2024-02-29"}
    # No day, no real day, or no month at all: nothing to match.
    assert mentioned_dates("in May 2023, on February 30, 2023, Marching 3, 2023") == set()


def test_interleave():
    """Named outlets (or days) take turns at the top, each in its own fused order."""
    group_of = {1: "a", 2: "a", 3: "a", 4: "b", 6: "b"}
    # b's best chunk (4) comes right after a's best; 5 is in no group, so it goes last.
    assert interleave([1, 2, 3, 4, 5, 6], group_of) == [1, 4, 2, 6, 3, 5]
    assert interleave([5, 4, 1], group_of) == [4, 1, 5]
    assert interleave([3, 2, 1], {}) == [3, 2, 1]


def test_weighted_overlap_weighs_rare_words_and_the_sentence_before():
    question = {"norman", "raider"}
    sentences = [{"norman", "franc"}, {"norman"}, {"raider", "norway"}, {"norman", "raider"}]
    before = [set(), {"norman", "franc"}, {"norman"}, {"raider", "norway"}]
    topic, rare, both = weighted_overlap(question, sentences, [set()] * 4)[1:]
    assert both == 1.0 and rare > 0.5 > topic  # "norman" is in three of four sentences
    with_context = weighted_overlap(question, sentences, before, context_weight=0.5)
    assert with_context[2] > rare  # the sentence before names the Normans
    assert with_context[3] == both  # nothing more to lend
    assert weighted_overlap(set(), sentences, before) == [0.0] * 4


def test_leans_back():
    assert leans_back("However, the two sides mended their relations.")
    assert leans_back(TIES + ".")
    assert not leans_back(JET + ".")


def run_ask(index, *args, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "rag.cli", "ask", "--index", str(index), *args],
        capture_output=True, text=True, input=stdin, timeout=300,
    )


def test_cli_text_json_and_jsonl(pipeline):
    index = pipeline.settings.index_dir
    text = run_ask(index, QUESTION)
    assert text.returncode == 0, text.stderr
    assert TIES in text.stdout and "[2] (same article)" in text.stdout
    assert "Putin condoles with Erdogan after mistaken airstrikes kill 3 Turkish troops — Iran Press TV, 2017-02-09" in text.stdout

    data = json.loads(run_ask(index, "--json", "--k", "3", QUESTION).stdout)
    assert set(data) >= {"question", "answer", "abstained", "citations", "passages"}
    assert data["question"] == QUESTION and data["abstained"] is False
    assert set(data["citations"][0]) >= {
        "n", "sentence", "article_id", "title", "source", "published", "url", "file", "start", "end", "score"
    }
    assert "path" not in data["citations"][0]  # gradio_client would take the dict for a file
    assert len(data["passages"]) == 3
    assert set(data["passages"][0]) >= {"chunk_id", "article_id", "title", "text", "score"}

    lines = run_ask(index, "--json", stdin=f"{QUESTION}\nHow do I bake sourdough bread at home?\n").stdout.splitlines()
    assert [json.loads(line)["abstained"] for line in lines] == [False, True]


# ---------------------------------------------------------------- several sources, answer-type cues


def test_question_naming_two_outlets_gets_a_sentence_from_each_grouped(pipeline):
    question = "What did Putin say, according to Iran Press TV and Grain Daily?"
    answer = pipeline.ask(question)
    assert not answer.abstained
    assert [g.source for g in answer.groups] == ["Iran Press TV", "Grain Daily"]
    assert all(g.citations and g.named for g in answer.groups)
    by_n = {c.n: c for c in answer.citations}
    for g in answer.groups:
        assert {by_n[n].source for n in g.citations} == {g.source}
    # grouped in the text as in the JSON, each outlet once, in the question's order
    assert answer.text.startswith("Iran Press TV: ") and " Grain Daily: " in answer.text
    data = answer.to_dict()
    assert [g["source"] for g in data["groups"]] == ["Iran Press TV", "Grain Daily"]
    # the passages shown lead with the ones cited: both outlets' among the first two
    first = answer.passages[: len({c.article_id for c in answer.citations})]
    assert {p.source for p in first} == {"Iran Press TV", "Grain Daily"}
    assert all(any(p.start <= c.start and c.end <= p.end for c in answer.citations) for p in first)
    # a question about one outlet keeps the short, ungrouped answer
    single = pipeline.ask(QUESTION)
    assert not single.groups and "groups" not in single.to_dict() and not single.text.startswith("Iran Press TV:")


class _Searches:
    """A retriever that remembers the texts it was asked to search."""

    def __init__(self, retriever):
        self.retriever, self.texts = retriever, []

    def __getattr__(self, name):
        return getattr(self.retriever, name)

    def __call__(self, text, **kwargs):
        self.texts.append(text)
        return self.retriever(text, **kwargs)


def test_each_part_is_searched_again_with_the_name_the_first_look_found(pipeline, monkeypatch):
    searches = _Searches(pipeline.answerer.retriever)
    monkeypatch.setattr(pipeline.answerer, "retriever", searches)
    question = (
        "Which president, according to Grain Daily, praised the record wheat harvest, "
        "and told farmers in Krasnodar that grain exports would grow?"
    )
    answer = pipeline.ask(question)
    assert "Vladimir Putin" in answer.direct and {c.source for c in answer.citations} == {"Grain Daily"}
    # The question, then each of its two parts; then the parts again with the name (the question's
    # own search is not repeated).
    first, second = searches.texts[:3], searches.texts[3:]
    assert first[0] == question and len(second) == 2
    assert not any(answer.direct in text for text in first) and all(answer.direct in text for text in second)
    # A question that asks for no name, or has one part, is looked into once.
    for once in ("What did Putin say, according to Iran Press TV and Grain Daily?", "Who praised the wheat harvest?"):
        searches.texts.clear()
        pipeline.ask(once)
        assert searches.texts == [once]


def test_named_outlet_with_nothing_is_said_plainly():
    from rag.sources import pick_per_source

    class C:
        def __init__(self, article, score):
            self.key, self.score = (article, 0), score

    ranked = [C("tc1", 2.0), C("tc1", 1.9), C("verge1", 1.5), C("other", 1.4), C("wired1", 0.5)]
    outlet_of = {"tc1": "TechCrunch", "verge1": "The Verge", "wired1": "Wired", "other": "Fortune"}
    picked, missing = pick_per_source(ranked, outlet_of, {}, ["TechCrunch", "The Verge", "Wired", "Engadget"], set(), 3, 0.65, 0.5)
    # each named outlet's best article's best sentence; Wired's is too weak, Engadget has none; Fortune fills up
    assert [c.key[0] for c in picked] == ["tc1", "verge1", "other"]
    assert missing == ["Wired", "Engadget"]
    # further articles are new ones: a part's pick from tc1 does not make tc1's best sentence a "further article"
    parts_pick = [C("tc1", 1.0)]
    picked, _ = pick_per_source(ranked, outlet_of, {}, [], set(), 3, 0.65, 0.5, first=parts_pick)
    assert [c.key[0] for c in picked] == ["tc1", "verge1", "other"]
    from rag.answer import Citation
    from rag.sources import SourceGroup, grouped_text

    cites = [Citation(n, s, "a", "", o, "", "", "", 0, 1, 1.0) for n, s, o in ((1, "A.", "TechCrunch"), (2, "B.", "The Verge"))]
    groups = [SourceGroup("TechCrunch", (1,)), SourceGroup("The Verge", (2,)), SourceGroup("Wired")]
    assert grouped_text(cites, groups) == "TechCrunch: A. [1] The Verge: B. [2] Wired: nothing found on this in the indexed articles."


def test_named_outlets_need_their_capitals():
    from rag.sources import named_outlets, needs_several

    mentioned = ["The Verge", "The Age", "TechCrunch"]
    assert named_outlets("In the age of AI, did TechCrunch and The Verge agree?", mentioned) == ["TechCrunch", "The Verge"]
    assert named_outlets("Did CNBC and The Age agree?", ["Cnbc | World Business News Leader", "The Age"]) == ["The Age"]  # "CNBC" is not "Cnbc"
    assert named_outlets("Did Cnbc and The Age agree?", ["Cnbc | World Business News Leader", "The Age"]) == [
        "Cnbc | World Business News Leader", "The Age"
    ]
    assert needs_several("Did TechCrunch and The Verge agree?", ["TechCrunch", "The Verge"], set())
    assert needs_several("Does The Age report this, while the other report does not?", ["The Age"], set())
    assert not needs_several("What else did the king also build while at war?", [], set())
    assert not needs_several("Why did Russia-Turkey ties sour?", [], set())
    # Two reports of one outlet set against each other: "between", "change", "inconsistency".
    tc = ["TechCrunch"]
    assert needs_several("Between the TechCrunch article on Gemini and the one on the lawsuit, was there a change?", tc, set())
    assert needs_several("Was there inconsistency in how TechCrunch portrayed him?", tc, set())
    assert needs_several("Does TechCrunch describe it differently from the Gemini report?", tc, set())
    assert not needs_several("What did TechCrunch report about the Gemini launch?", tc, set())
    # Several things asked of one outlet: each may be another of its reports.
    from rag.parts import parts

    many = (
        "Which entity is engaged with Amazon over competition concerns, deploys staff within its new AI Office, "
        "and has focused on illegal content on X, as reported by TechCrunch?"
    )
    assert needs_several(many, tc, set(), len(parts(many, tc)))
    assert not needs_several("Why did Russia-Turkey ties sour, and what came next?", [], set(), 2)


def test_answer_type_cues():
    from rag import cues

    assert cues.asks_for("Who won the 2023 Rugby World Cup final?") == cues.NAME
    assert cues.asks_for("Which company, according to Engadget and Wired, makes it?") == cues.NAME
    assert cues.asks_for("When did Turkey shoot down a Russian jet?") == cues.DATE
    assert cues.asks_for("How many workshops opened?") == cues.NUMBER
    assert cues.asks_for("Why did ties sour?") is None and cues.asks_for("Does TechCrunch say so?") is None
    # a few words may come between "which" / "what" and the kind of name asked for, but no verb
    assert cues.asks_for("Which NFL team, featured in both articles, won?") == cues.NAME
    assert cues.asks_for("What football club was docked ten points?") == cues.NAME
    assert cues.asks_for("What institution sets rates, as reported by Fortune?") == cues.NAME
    assert cues.asks_for("What did the company announce?") is None
    assert cues.asks_for("Which pop star was named Person of the Year?") == cues.NAME
    assert cues.asks_for_person("Which pop star was named Person of the Year?")
    assert not cues.asks_for_person("Which NFL team won?")
    # the first question word decides
    assert cues.asks_for("Who is the quarterback that threw four touchdowns when it mattered?") == cues.NAME
    assert cues.asks_for("What year did the man who founded it die?") == cues.DATE
    # "when" asks for a date when it opens a clause or ends the question
    assert cues.asks_for("The French church in Portarlington was built when?") == cues.DATE
    assert cues.asks_for("In 1998, when did it open?") == cues.DATE
    assert cues.asks_for("What is it called when people rebel against unfair laws?") is None
    # a word describing the name is not part of it; a name does not run over a line break
    assert cues.names_in("UK-listed HSF fell. London-based Revolut and Coca-Cola grew.", set()) == ["HSF", "Revolut", "Coca-Cola"]
    assert cues.names_in("Trump Park Avenue\nTrump Tower", set()) == ["Trump Park Avenue", "Trump Tower"]
    # a word that starts a sentence or phrase is not the name's, and alone is no name
    assert cues.names_in("Following BSkyB, Some Huguenots left. Some did. One stayed.", set()) == ["BSkyB", "Huguenots"]
    assert cues.names_in("The All Blacks lost to Under Armour's team.", set()) == ["All Blacks", "Under Armour"]
    assert cues.names_in("Under its delivery business, Flexport lost. All agreed.", set()) == ["Flexport"]
    said = cues.question_words("Which company did TechCrunch name?")
    assert cues.names_in("However, TechCrunch said Google and Bank of America agreed.", said) == ["Google", "Bank of America"]
    assert cues.holds("The deal closed in March 2021.", cues.DATE, set()) and not cues.holds("The deal closed.", cues.DATE, set())
    assert cues.direct_answer("The festival opened with forty workshops.", cues.NUMBER, "How many workshops opened?") == "forty"
    # "one of the ..." picks one out and counts nothing
    assert cues.direct_answer("Cue is one of the highest-profile witnesses.", cues.NUMBER, "How many witnesses testified?") is None
    # two different numbers: none clearly answers
    assert cues.direct_answer("Forty workshops and 3 stages opened.", cues.NUMBER, "How many workshops opened?") is None
    # ... unless the question's words stand clearly nearer one of them
    clash = "Turkish Army units were hit, killing three soldiers and wounding 11 others, the statement read."
    assert cues.direct_answer(clash, cues.NUMBER, "How many Turkish soldiers were killed?") == "three"
    assert cues.direct_answer(clash, cues.NUMBER, "How many soldiers were wounded?") is None  # "soldiers" is next to both
    # for "how much", a year is not the amount; nor is a number the question already says ("AS-206")
    assert cues.direct_answer("In 2009, NASA put its cost at $25.4 billion.", cues.NUMBER, "How much did it cost?") == "$25.4 billion"
    assert cues.direct_answer("The AS-206 flight carried two cameras.", cues.NUMBER, "How many cameras did AS-206 carry?") == "two"
    assert cues.common_name(["Google sued.", "Google won, Epic said.", "Epic lost."], "Which company?") is None  # a tie
    assert cues.common_name(["Google sued.", "Google won, Epic said.", "It lost."], "Which company?") == "Google"
    # The last name alone and the whole name agree, and the whole name is given;
    # for a person, an acronym is not a candidate.
    texts = ["FTX collapsed; Sam Bankman-Fried was charged.", "FTX fell and Bankman-Fried was tried.", "FTX paid."]
    assert cues.common_name(texts, "Who founded the exchange?") == "Sam Bankman-Fried"
    assert cues.common_name(texts, "Which company collapsed?") == "FTX"
    assert cues.full_name("Altman", ["Altman spoke.", "OpenAI's Sam Altman was fired."]) == "Sam Altman"
    assert cues.full_name("Altman", ["Altman spoke."]) == "Altman"
    assert cues.full_name("Man", ["Sam Altman spoke."]) == "Man"  # a whole word only
    # The full form most texts write, not the longest one text has.
    assert cues.full_name("Altman", ["Sam Altman spoke.", "Sam Altman left.", "His brother Jack Altman won."]) == "Sam Altman"
    # A sentence's first word is not part of the name that follows it.
    assert cues.names_in("Could Altman return? Didn\u2019t Bankman-Fried know?", set()) == ["Altman", "Bankman-Fried"]
    assert cues.names_in("In September Fed officials met.", set()) == ["Fed"]
    assert cues.full_name("Confirmation Sam Altman", ["Confirmation Sam Altman came.", "Sam Altman spoke.", "Sam Altman left."]) == "Sam Altman"
    # "Who ...?" wants a person: not an organisation, an acronym, or a word alone.
    read = ["Sam Bankman-Fried was charged.", "The Securities and Exchange Commission sued."]
    assert cues.looks_like_person("Bankman-Fried", read)
    assert not any(cues.looks_like_person(n, read) for n in ("Exchange Commission", "Securities", "FTX", "Some"))
    texts = ["The Exchange Commission sued Bankman-Fried.", "The Exchange Commission said Bankman-Fried lied."]
    assert cues.common_name(texts, "Who lied?", read) == "Bankman-Fried"
    assert cues.common_name(texts, "Which agency sued?", read) is None  # both names count: a tie
    # No name is a person's: the names count as they are (no acronym).
    assert cues.common_name(["FTX and Alameda fell.", "Alameda paid."], "Who fell?", ["FTX and Alameda fell."]) == "Alameda"
    # A sentence's first word that the sentences around write in lower case is not part
    # of the name; a day alone is not a name; a name the question says is not an answer.
    common = cues.common_words(("Though it rained, they played.", "He left, though."))
    assert cues.names_in("Though Bankman-Fried lost, Tuesday came.", set(), common) == ["Bankman-Fried"]
    assert cues.names_in("Sam Bankman-Fried lost.", set(), common) == ["Sam Bankman-Fried"]
    assert cues.names_in("He met CEO Caroline Ellison.", cues.question_words("Who used Caroline Ellison?")) == []
    # A person is asked for by "who" or by what they are, a word or two after "which".
    assert cues.asks_for_person("Which NFL quarterback, featured in CBSSports.com, threw twice?")
    assert cues.asks_for_person("Which pop star was named Person of the Year?")
    assert not cues.asks_for_person("Which football club is for sale?")
    assert not cues.asks_for_person("What type of establishments modify their odds?")
    # A title before a person's name is not part of it.
    assert cues.full_name("CTO Gary Wang", ["CTO Gary Wang testified."]) == "Gary Wang"
    assert cues.full_name("CEO Sam Altman", ["CEO Sam Altman spoke.", "OpenAI's Sam Altman left."]) == "Sam Altman"
    assert cues.full_name("FTX Trading Ltd", ["FTX Trading Ltd filed."]) == "FTX Trading Ltd"  # an acronym, not a title


def test_the_person_the_sentences_read_keep_naming_answers_who():
    """No one sentence names only them, no two articles' best sentences agree, yet the
    sentences read name one person far more often than anyone else."""
    from rag import cues

    read = [
        "Sam Bankman-Fried met Caroline Ellison at Jane Street.",
        "Bankman-Fried was convicted of fraud.",
        "The jury heard from Gary Wang and Bankman-Fried.",
        "FTX collapsed in November.",
    ]
    question = "Who is the individual that, according to Fortune and TechCrunch, used a colleague as a front?"
    assert cues.most_named_person(read, question) == "Sam Bankman-Fried"
    # Not clearly ahead (3 against 2), or named only once: no answer.
    assert cues.most_named_person([*read, "Caroline Ellison testified."], question) is None
    assert cues.most_named_person(read[:1], question) is None
    # The question's own names and organisations are not the answer.
    assert cues.most_named_person(read, "Who did Sam Bankman-Fried meet?") is None
    # "Which two individuals ...?": the two named most, each twice as often as anyone after them.
    pair = ["Considering Swift, Travis Kelce smiled.", "Taylor Swift met Travis Kelce.", "Swift sang.", "Kelce won."]
    two = "Which two individuals were linked by rumours of a romance?"
    assert cues.most_named_people(pair, two, count=2) == ["Taylor Swift", "Travis Kelce"]
    assert cues.most_named_people([*pair, "Andy Reid and Kelce spoke.", "Andy Reid won."], two, count=2) == []


def test_direct_answer_is_shown_first_in_bold(pipeline):
    answer = pipeline.ask("When did Turkey shoot down a Russian jet over Syria?")
    assert answer.direct == "November 2015"
    assert answer.text.startswith("**November 2015** — ") and answer.to_dict()["direct"] == "November 2015"
    assert any("November 2015" in c.sentence for c in answer.citations)
    assert not pipeline.ask(QUESTION).direct  # a why-question asks for no name, date or number


def test_question_citing_an_outlet_the_index_lacks_is_refused_and_says_so(pipeline):
    from rag.sources import unknown_outlets

    known = ["Iran Press TV", "Grain Daily", "Cnbc | World Business News Leader"]
    assert unknown_outlets("According to an article by Forbes and a CNET piece, who won?", known) == ["Forbes", "CNET"]
    # outlets the index holds (also by the name before a feed's subtitle), a topic, a month: not outlets it lacks
    assert unknown_outlets("Does a report by CNBC and an article from Grain Daily agree?", known) == []
    assert unknown_outlets("Did a report on Google's search and a November article agree?", known) == []
    assert unknown_outlets("A report by Forbes?", []) == []  # articles without outlets: nothing to tell
    answer = pipeline.ask("According to an article by Forbes, what did Putin tell farmers in Krasnodar?")
    assert answer.abstained and "Forbes" in answer.notice and not answer.citations
    assert not pipeline.ask("According to an article by Grain Daily, what did Putin tell farmers in Krasnodar?").abstained


def test_outlet_named_by_its_short_name_is_matched():
    from rag.retrieve import outlet_names

    assert outlet_names("Cnbc | World Business News Leader") == ["Cnbc | World Business News Leader", "Cnbc"]
    assert outlet_names("The Verge") == ["Verge"]
    assert outlet_names("BBC News - Technology") == ["BBC News - Technology", "BBC News"]


def test_chat_shows_groups_missing_outlets_and_the_direct_answer_escaped():
    from rag.answer import Answer, Citation
    from rag.sources import SourceGroup
    from ui.render import answer_html

    cites = [Citation(n, s, f"a{n}", "t", o, "", "", "", 0, 1, 1.0) for n, s, o in ((1, "A <b>.", "TechCrunch"), (2, "B.", "The Verge"))]
    answer = Answer(
        question="q", text="x", abstained=False, citations=cites, direct="Google*",
        groups=[SourceGroup("TechCrunch", (1,)), SourceGroup("The Verge", (2,)), SourceGroup("Wired <i>")],
    )
    html = answer_html(answer)
    assert html.index("TechCrunch:") < html.index("A &lt;b&gt;.") < html.index("The Verge:") < html.index("B.")
    assert "Wired &lt;i&gt;:</b> nothing found on this" in html and "<i>" not in html and "<b>." not in html
    assert '<strong class="direct-answer">Google&#42;</strong>' in html


def _scored(article: str, outlet: str, text: str, score: float):
    import numpy as np

    from rag.chunk import Sentence
    from rag.evidence import ScoredSentence
    from rag.retrieve import Hit

    hit = Hit(0, article, text, 0, len(text), 0, 0, score, title=article, source=outlet, url=f"https://x/{article}")
    return ScoredSentence(Sentence(article, 0, 0, len(text), text), hit, np.zeros(4, np.float32), score, score)


def test_the_sources_of_a_name_are_the_articles_that_say_it():
    from rag.answer import Answerer
    from rag.cues import NAME
    from rag.evidence import Evidence

    sentences = [
        _scored("a1", "Tech Daily", "Sam Bankman-Fried was charged with fraud in New York.", 0.90),
        _scored("b1", "Money Times", "Regulators charged executives at several firms this year.", 0.80),
        _scored("b2", "Money Times", "Bankman-Fried was charged after the exchange collapsed.", 0.78),
    ]
    question = "Which individual, as reported by Tech Daily and Money Times, was charged?"
    evidence = Evidence(question, question, [], sentences, 1.0, False, ["Tech Daily", "Money Times"], set(), True, NAME)
    answerer = Answerer(None, None, None, several_keep=0.95)  # each named outlet's best, no others
    answerer.answer_bonus = 0.0
    before = answerer.compose(evidence)
    assert [c.article_id for c in before.citations] == ["a1", "b1"]
    answerer.answer_bonus = 0.05
    answer = answerer.compose(evidence)
    assert answer.direct == "Sam Bankman-Fried"
    # Money Times' article that speaks of him, not its best sentence about someone else
    assert [c.article_id for c in answer.citations] == ["a1", "b2"]
    assert [g.source for g in answer.groups] == ["Tech Daily", "Money Times"]


def test_lifted_sentences_are_ranked_again_with_their_part_scores():
    import numpy as np

    from rag.evidence import Evidence, lifted

    sentences = [_scored(a, "X", a, s) for a, s in (("a", 0.9), ("b", 0.8), ("c", 0.7))]
    parts = np.array([[0.1, 0.2, 0.3], [0.3, 0.2, 0.1]])
    eligible = np.array([[True, False, True], [False, True, True]])
    evidence = Evidence("q", "q", [], sentences, 1.0, False, part_scores=parts, part_eligible=eligible)
    up = lifted(evidence, np.array([0.0, 0.0, 0.5]))
    assert [c.key[0] for c in up.sentences] == ["c", "a", "b"]
    assert [c.score for c in up.sentences] == pytest.approx([1.2, 0.9, 0.8])
    assert np.allclose(up.part_scores, [[0.8, 0.1, 0.2], [0.6, 0.3, 0.2]])
    assert up.part_eligible.tolist() == [[True, True, False], [True, False, True]]
    assert [c.score for c in evidence.sentences] == [0.9, 0.8, 0.7]  # the evidence given is unchanged


def evidence_of(texts, question, **fields):
    """Evidence whose sentences are `texts`, best first, one article each."""
    import numpy as np

    from rag import cues
    from rag.chunk import Sentence
    from rag.evidence import Evidence, ScoredSentence
    from rag.retrieve import Hit

    sentences = [
        ScoredSentence(Sentence(f"a{i}", 0, 0, len(t), t), Hit(i, f"a{i}", t, 0, len(t), 0, 0, 1.0), np.zeros(3), 1.0 - i / 10)
        for i, t in enumerate(texts)
    ]
    return Evidence(question, question, [], sentences, 1.0, False, asks=cues.asks_for(question), **fields)


def test_a_name_the_articles_share_answers_only_questions_about_what_sources_report():
    """The best articles sharing a name answers "Which company, according to TechCrunch
    and Wired, ...?"; for a question about one text (SQuAD) the name its paragraphs share is
    their topic, not the answer (dev: 22 % of such bold names were right), so none is shown."""
    from rag import cues

    texts = ["BSkyB and Cisco use it for their boxes.", "BSkyB was formed in 1990.", "Later BSkyB and NDS built it."]
    question = "What is the name of the TV scrambling system they use?"
    assert cues.short_answer(evidence_of(texts, question), texts, cites_best=True) == ""
    reported = evidence_of(texts, question, outlets=["Wired"])
    assert cues.short_answer(reported, texts, cites_best=True) == "BSkyB"


def test_a_question_asking_for_two_names_gets_both():
    from rag import cues

    texts = ["Considering Swift, Travis Kelce smiled.", "Taylor Swift met Travis Kelce.", "Swift sang.", "Kelce won."]
    question = "Which two individuals, according to The Age and CBSSports.com, were linked by rumours?"
    found = cues.short_answer(evidence_of(texts, question, several=True), texts[:2], cites_best=True)
    assert found == "Taylor Swift and Travis Kelce"


def test_who_across_sources_is_the_person_the_reports_keep_naming():
    """The best sentence names one person alone ("Gary Wang"), but the sentences read keep
    naming another: a question about what sources report is about that one."""
    from rag import cues

    texts = [
        "CTO Gary Wang testified on Tuesday.",
        "Sam Bankman-Fried used Caroline Ellison as a front.",
        "Bankman-Fried was convicted.",
        "Prosecutors said Bankman-Fried lied.",
    ]
    question = "Who is the individual accused of using Caroline Ellison as a front, according to TechCrunch?"
    assert cues.short_answer(evidence_of(texts, question, outlets=["TechCrunch"]), texts[:1], cites_best=True) == "Sam Bankman-Fried"
    # about one text, the best sentence's name stands
    assert cues.short_answer(evidence_of(texts, question), texts[:1], cites_best=True) == "Gary Wang"


def test_a_name_is_as_whole_as_the_articles_first_write_it():
    """News names a person or a body in full once, then by last name or initials: the
    sentences read may say only "Bankman-Fried" or "SBF", the article's first mention
    says "Sam Bankman-Fried"; a later, longer form ("Android ChatGPT") is not the name."""
    from rag import cues

    article = (
        "Sam Bankman-Fried founded FTX. ChatGPT is popular.\n"
        "Hipgnosis Songs Fund (HSF) fell. Bankman-Fried said the Android ChatGPT app was not his."
    )
    first = cues.first_mentions(article)
    assert first == ("Sam Bankman-Fried", "FTX", "ChatGPT", "Hipgnosis Songs Fund", "HSF")
    # Initials grow to the name they stand for, three letters or more; others stay.
    assert cues.full_name("SBF", list(first)) == "Sam Bankman-Fried"
    assert cues.full_name("HSF", list(first)) == "Hipgnosis Songs Fund"
    assert cues.full_name("FTX", list(first)) == "FTX"
    assert cues.full_name("SF", ["San Francisco"]) == "SF"
    # A post is not a person; initials of one are.
    assert not cues.looks_like_person("CEO of Alameda", ["CEO of Alameda spoke."])
    assert cues.looks_like_person("SBF", list(first))
    # The reports say "SBF" and "Bankman-Fried", never in full; the person is the one the article first names.
    read = ["CTO Gary Wang testified.", "SBF lied.", "SBF ran FTX.", "Bankman-Fried spoke."]
    question = "Who is the individual that, according to TechCrunch, ran the exchange?"
    assert cues.most_named_person(read, question) is None  # "SBF" alone is no one's name
    assert cues.most_named_person(read, question, [*read, *first]) == "Sam Bankman-Fried"
    evidence = evidence_of(read, question, outlets=["TechCrunch"])
    assert cues.short_answer(evidence, read[:1], cites_best=True, articles=[article]) == "Sam Bankman-Fried"


def test_a_body_is_named_as_the_texts_name_it_and_a_person_is_not_a_post_or_a_number():
    from rag import cues

    # "Fed" is the Federal Reserve cut short; a four-letter name is not ("Ford" is no "Fordham").
    texts = ["The Fed held rates.", "The Federal Reserve said so.", "Fordham University agreed."]
    assert cues.full_name("Fed", texts) == "Federal Reserve"
    assert cues.full_name("Ford", texts) == "Ford"
    # "The" comes with a body's name when the texts give it two times of three or more.
    assert cues.with_the("Federal Reserve", texts, also="Fed") == "The Federal Reserve"
    assert cues.with_the("Google", ["Google won.", "The Google case", "Google lost."]) == "Google"
    assert cues.with_the("Normans", ["The Normans came."]) == "Normans"  # said once: no telling
    # Numbers, capitals and posts are not people's names; a generation suffix is.
    people = ["Big Ten", "Open AI", "Gen Z", "CEO of Alameda"]
    assert not any(cues.looks_like_person(n, [n]) for n in people)
    assert cues.looks_like_person("Trey Murphy III", ["Trey Murphy III scored."])


def test_who_across_sources_is_the_person_named_most_before_what_the_cited_sentences_share():
    """The two cited sentences share a building's name, the sentences read keep naming a
    person: "Which individual ...?" wants the person."""
    from rag import cues

    texts = [
        "Trump Tower was valued at $1 billion.",
        "Trump Tower is in Manhattan.",
        "Donald Trump inflated the values.",
        "Trump denied it.",
        "Trump appealed.",
        "Trump said so.",
    ]
    question = "Which individual inflated the value of an estate, according to Fortune and The Age?"
    evidence = evidence_of(texts, question, several=True, outlets=["Fortune", "The Age"])
    assert cues.common_name(texts[:2], question, texts) == "Trump Tower"
    assert cues.short_answer(evidence, texts[:2], cites_best=True) == "Donald Trump"


def test_of_several_names_the_one_the_question_describes_answers(pipeline):
    """"Who is the Kremlin spokesman?": the best sentence names three people, but puts one right
    after the words the question describes its answer by."""
    from rag import cues

    sentence = "Kremlin spokesman, Dmitry Peskov, said President Vladimir Putin had called Recep Tayyip Erdogan."
    assert cues.direct_answer(sentence, cues.NAME, "Who is the Kremlin spokesman?") == "Dmitry Peskov"
    # A word the question uses for something else ("publishers") points at no answer.
    sentence = "The case, filed by publisher Helena World Chronicle, argues that Google hurt publishers."
    assert cues.direct_answer(sentence, cues.NAME, "Which company, reported by TechCrunch, hurt news publishers?") is None
    assert pipeline.ask("Who is the Kremlin spokesman?").direct == "Dmitry Peskov"
