"""The UI's handlers without a browser: the real model, a small real index built in
a tmp folder (the sample article, a list file of two articles, one plain article)."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pytest
from conftest import SAMPLE, article_text

from rag.answer import Turn
from rag.build import Builder
from rag.pipeline import Pipeline
from rag.settings import Settings
from ui.api import ApiHandlers
from ui.articles import TABLE_HEADERS, ArticleHandlers
from ui.chat import ChatHandlers
from ui.control import IndexControl, matching

QUESTION = "Why did Russia-Turkey ties sour?"
SOURED = "Ties between Moscow and Ankara soured"
FESTIVALS = [
    {
        "title": "Glassblowers festival opens in Murano",
        "source": "Lakeside Courier",
        "published_at": "2020-06-01",
        "author": "Maria Vetri",
        "category": "Culture",
        "body": "The annual glassblowers festival in Murano opened on Friday with forty workshops.\n\n"
        "Organisers expect thirty thousand visitors during the glassblowers festival this year.",
    },
    {
        "title": "Harbour dredging plan approved",
        "source": "Port Weekly",
        "published_at": "2021-02-03",
        "url": "https://example.org/harbour",
        "body": "The city council approved the harbour dredging plan on Tuesday after a long debate.\n\n"
        "Dredging the harbour will let larger container ships dock at the eastern quay.",
    },
]
LIGHTHOUSE = """Title: Port Ellery lighthouse reopens after restoration
Source: Ellery Gazette
Date: 2021-05-04

The historic lighthouse of Port Ellery reopened on Saturday after a restoration that took two years.

The restoration of the Port Ellery lighthouse cost four million euros, paid by the regional heritage fund.
"""


@dataclass
class Handlers:
    """Everything build_app wires to the page, built the same way."""

    settings: Settings
    pipeline: Pipeline
    control: IndexControl
    chat: ChatHandlers
    articles: ArticleHandlers
    api: ApiHandlers


def handlers(settings: Settings, pipeline: Pipeline, allow_changes: bool = True) -> Handlers:
    control = IndexControl(settings, pipeline, allow_changes)
    return Handlers(
        settings,
        pipeline,
        control,
        ChatHandlers(settings, pipeline, control, sentence_delay=0),
        ArticleHandlers(settings, pipeline, control),
        ApiHandlers(settings, pipeline, control),
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory, embedder) -> Settings:
    """The sample article, the festivals list file and a committee article, built once."""
    root = tmp_path_factory.mktemp("handlers")
    corpus = root / "corpus"
    corpus.mkdir()
    shutil.copy(SAMPLE, corpus / SAMPLE.name)
    (corpus / "festivals.json").write_text(json.dumps(FESTIVALS), encoding="utf-8")
    (corpus / "committee.txt").write_text(article_text("water board"), encoding="utf-8")
    built = Settings(corpus_dir=corpus, index_dir=root / "index")
    report = Builder(built, embedder=embedder)()
    assert report.added == 4, report.summary()
    return built


@pytest.fixture
def pipeline(settings: Settings, corpus: Path, built: Settings, embedder) -> Pipeline:
    """Each test's own copy of `built` (corpus files with their times, as the index recorded them)."""
    shutil.copytree(built.corpus_dir, corpus, dirs_exist_ok=True)
    shutil.copytree(built.index_dir, settings.index_dir)
    return Pipeline(settings, embedder=embedder)


@pytest.fixture
def ui(settings: Settings, pipeline: Pipeline) -> Handlers:
    return handlers(settings, pipeline)


def ask(chat: ChatHandlers, question: str, turns: list | None = None, **kwargs) -> list[tuple]:
    """Every update `ChatHandlers.ask` yields (a copy of each: it goes on changing its
    lists), from the chat's default search settings unless told otherwise."""
    options = {"sources": [], "date_from": "", "date_to": "", "k": 10, **kwargs}
    updates = chat.ask(question, [], turns or [], options["sources"], options["date_from"], options["date_to"], options["k"])
    return [(list(messages), list(turns), panel, box) for messages, turns, panel, box in updates]


def article_id(ui: Handlers, path: str) -> str:
    return next(a["id"] for a in ui.control.articles() if a["path"] == path)


def uploaded(tmp_path: Path, name: str, text: str) -> str:
    """A file as Gradio hands an upload over: a temporary copy under its original name."""
    folder = tmp_path / "gradio-upload" / name.replace(".", "-")
    folder.mkdir(parents=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return str(path)


# ---------------------------------------------------------------------- construction


def test_handlers_share_their_collaborators_and_patch_nothing_onto_the_pipeline(settings, pipeline):
    from ui.app import build_app

    def attributes() -> dict[str, set[str]]:
        parts = {"pipeline": pipeline, **{name: getattr(pipeline, name) for name in ("store", "retriever", "answerer", "llm")}}
        return {name: set(vars(part)) for name, part in parts.items()}

    before = attributes()
    ui = handlers(settings, pipeline)
    demo = build_app(settings, pipeline)
    assert attributes() == before
    assert ui.chat.control is ui.articles.control is ui.api.control is ui.control
    assert ui.control.pipeline is pipeline and ui.api.pipeline is pipeline
    assert (demo.settings, demo.allow_changes) == (settings, True)
    assert not build_app(settings, pipeline, allow_changes=False).allow_changes


# ---------------------------------------------------------------------- chat


def test_ask_shows_the_answer_sentence_by_sentence_with_its_sources(ui):
    updates = ask(ui.chat, QUESTION)
    expected = ui.pipeline.ask(QUESTION)
    assert expected.citations and not expected.abstained
    chat, turns, panel, box = updates[0]
    assert [m["role"] for m in chat] == ["user", "assistant"] and "typing" in chat[1]["content"]
    assert panel == gr.skip() and box == ""
    # One update per cited sentence, then the whole answer with its footer.
    assert len(updates) == 1 + len(expected.citations) + 1
    chat, turns, panel, box = updates[-1]
    assert [turn[:2] for turn in turns] == [[QUESTION, expected.text]]
    assert turns[0][2]["citations"] == expected.to_dict()["citations"]  # what the Export button writes
    assert SOURED in chat[-1]["content"] and 'href="#cite-1"' in chat[-1]["content"]
    assert "<mark>" in panel and 'id="cite-1"' in panel and "Iran Press TV" in panel
    assert box == ""


def test_follow_up_is_answered_with_the_earlier_turns(ui):
    *_, (_, turns, _, _) = ask(ui.chat, QUESTION)
    follow_up = "And how were relations mended?"
    *_, (_, turns, panel, _) = ask(ui.chat, follow_up, turns=turns)
    expected = ui.pipeline.ask(follow_up, history=[Turn(*turns[0][:2])])
    assert len(turns) == 2 and turns[1][:2] == [follow_up, expected.text]
    assert not expected.abstained and "mended their relations" in panel


def test_blank_question_keeps_the_chat_and_what_was_typed(ui):
    chat = [{"role": "user", "content": "earlier"}]
    turns = [["earlier", "answer"]]
    for blank in ("", "   ", "?!", None):
        updates = list(ui.chat.ask(blank, chat, turns, [], "", "", 10))
        assert updates == [(chat, turns, gr.skip(), gr.skip())]


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"k": 0}, "k must be a whole number from 1 to 30"),
        ({"date_from": "2017-13-45"}, "From date must be a date written YYYY-MM-DD"),
        ({"date_from": "2018-01-01", "date_to": "2017-01-01"}, "From date (2018-01-01) is after To date"),
    ],
)
def test_bad_search_settings_are_refused_before_anything_is_shown(ui, options, words):
    with pytest.raises(gr.Error) as refused:
        ask(ui.chat, QUESTION, **options)
    assert words in refused.value.message


def test_search_settings_limit_the_answer(ui):
    *_, (_, _, panel, _) = ask(ui.chat, QUESTION, sources=["Port Weekly"])
    assert "Iran Press TV" not in panel
    *_, (_, _, panel, _) = ask(ui.chat, QUESTION, date_from="2017-02-01", date_to="2017-02-28")
    assert SOURED in panel


def test_clear_starts_a_new_conversation(ui):
    chat, turns, panel, box = ui.chat.clear()
    assert (chat, turns, box) == ([], [], "")
    assert panel == ui.chat.empty_sources() and "src-card" not in panel


# ---------------------------------------------------------------------- articles


def test_stats_count_the_index(ui):
    stats = ui.api.stats()
    assert (stats["articles"], stats["changes_allowed"]) == (4, True)
    assert {"Iran Press TV", "Lakeside Courier", "Port Weekly"} <= set(stats["outlets"])
    assert stats["corpus_dir"] == str(ui.settings.corpus_dir)
    html = ui.articles.stats()
    assert '<div class="stat-v">4</div><div class="stat-k">articles</div>' in html


@pytest.mark.parametrize(
    ("query", "titles"),
    [
        ("lakeside", {"Glassblowers festival opens in Murano"}),  # outlet
        ("VETRI", {"Glassblowers festival opens in Murano"}),  # author, any case
        ("culture", {"Glassblowers festival opens in Murano"}),  # category
        ("2021-02", {"Harbour dredging plan approved"}),  # date
        ("example.org", {"Harbour dredging plan approved"}),  # url
        ("festivals.json", {"Glassblowers festival opens in Murano", "Harbour dredging plan approved"}),  # file
        ("murano courier", {"Glassblowers festival opens in Murano"}),  # every word, in any field
        ("murano weekly", set()),
    ],
)
def test_article_filter_searches_what_a_person_knows_an_article_by(ui, query, titles):
    assert {a["title"] for a in matching(ui.control.articles(), query)} == titles


def test_article_table_and_api_list_the_same_articles(ui):
    # "culture" is only in a category and "#0" only in an id: the filters the two had
    # before (the table's without category, the API's over every field) disagreed on them.
    queries = ["", "  ", "press tv", "lakeside", "vetri", "culture", "2021", "example.org", "festivals.json", "#0", "nothing"]
    sizes = set()
    for query in queries:
        table = [(row[0], row[4]) for row in ui.articles.table(query)]
        api = [(a["title"], a["file"]) for a in ui.api.articles(query)]
        assert table == api, query
        sizes.add(len(table))
    assert sizes == {0, 1, 2, 4}
    assert all("path" not in a for a in ui.api.articles())
    assert len(ui.articles.table()[0]) == len(TABLE_HEADERS)


def test_upload_saves_good_files_and_refuses_a_bad_one_by_name(ui, tmp_path):
    good = uploaded(tmp_path, "port-ellery.txt", LIGHTHOUSE)
    bad = uploaded(tmp_path, "evil.exe", LIGHTHOUSE)
    status, box = ui.articles.upload([good, bad])
    assert "- ✓ saved port&#45;ellery.txt" in status
    assert "- ✗ evil.exe: unsupported file type" in status
    assert "Rebuild index" in status and box is None
    assert (ui.settings.corpus_dir / "port-ellery.txt").read_text(encoding="utf-8") == LIGHTHOUSE
    assert not list(ui.settings.corpus_dir.glob("evil*"))
    assert not Path(good).exists() and not Path(bad).exists()  # Gradio's copies go
    assert ui.articles.upload([]) == (gr.skip(), None)


def test_rebuild_reports_and_serves_the_new_index(ui, tmp_path):
    ui.articles.upload([uploaded(tmp_path, "port-ellery.txt", LIGHTHOUSE)])
    shown = []
    status, rows, stats, pick, outlets = ui.articles.rebuild("lighthouse", progress=lambda *a, **kw: shown.append(kw))
    assert status.startswith("**Rebuilt.**") and "1 added" in status
    assert [row[0] for row in rows] == ["Port Ellery lighthouse reopens after restoration"]
    assert '<div class="stat-v">5</div>' in stats
    assert len(pick["choices"]) == 5 and pick["value"] is None
    assert "Ellery Gazette" in outlets["choices"]
    assert {"reading files", "embedding chunks"} <= {kw["desc"] for kw in shown}
    answer = ui.api.ask("How much did the restoration of the Port Ellery lighthouse cost?")
    assert any("four million euros" in c["sentence"] for c in answer["citations"])
    again = ui.api.rebuild()
    assert (again["added"], again["unchanged"], again["reloaded"]) == (0, 5, True)


def test_a_second_rebuild_waits_for_the_first(ui):
    with ui.control.lock, pytest.raises(gr.Error) as refused:
        ui.api.rebuild()
    assert "already running" in refused.value.message


def test_refresh_loads_a_build_made_elsewhere(ui, embedder):
    (ui.settings.corpus_dir / "port-ellery.txt").write_text(LIGHTHOUSE, encoding="utf-8")
    Builder(ui.settings, embedder=embedder)()  # `rag build` from the command line
    rows, _, pick, outlets = ui.articles.refresh("ellery")
    assert [row[4] for row in rows] == ["port-ellery.txt"]
    assert any(label.startswith("Port Ellery lighthouse") for label, _ in pick["choices"])
    assert "Ellery Gazette" in outlets["choices"]


def test_removing_from_a_list_file_asks_for_confirmation(ui):
    picked = article_id(ui, "festivals.json")
    message, checkbox = ui.articles.describe_removal(picked)
    assert "is a list file holding 2 articles" in message and checkbox["visible"] is True
    with pytest.raises(gr.Error) as refused:
        ui.articles.remove(picked, False, "", progress=None)
    assert "tick 'delete the whole file'" in refused.value.message
    assert (ui.settings.corpus_dir / "festivals.json").is_file()
    status, rows, *_, checkbox = ui.articles.remove(picked, True, "", progress=None)
    assert status.startswith("Deleted **festivals.json**.") and "2 removed" in status
    assert not (ui.settings.corpus_dir / "festivals.json").exists()
    assert "festivals.json" not in {row[4] for row in rows} and len(rows) == 2
    assert checkbox == gr.update(visible=False, value=False)


def test_removing_a_plain_article_deletes_its_file(ui):
    picked = article_id(ui, "committee.txt")
    message, checkbox = ui.articles.describe_removal(picked)
    assert message == "Removing deletes **committee.txt** from the corpus folder and rebuilds the index."
    assert checkbox["visible"] is False
    status, *_ = ui.articles.remove(picked, False, "", progress=None)
    assert "1 removed" in status and not (ui.settings.corpus_dir / "committee.txt").exists()
    assert ui.api.stats()["articles"] == 3


def test_removal_needs_an_article_still_indexed(ui):
    assert ui.articles.describe_removal(None) == ("", gr.update(visible=False, value=False))
    assert ui.articles.describe_removal("gone")[0] == "That article is no longer in the index."
    for picked, words in ((None, "Pick an article to remove first."), ("gone", "no longer in the index")):
        with pytest.raises(gr.Error) as refused:
            ui.articles.remove(picked, True, "", progress=None)
        assert words in refused.value.message
    assert len(list(ui.settings.corpus_dir.iterdir())) == 3


def test_changes_are_refused_without_a_password_but_questions_are_answered(settings, pipeline, tmp_path):
    ui = handlers(settings, pipeline, allow_changes=False)
    before = sorted(p.name for p in settings.corpus_dir.iterdir())
    picked = article_id(ui, "committee.txt")
    changes = [
        lambda: ui.articles.upload([uploaded(tmp_path, "port-ellery.txt", LIGHTHOUSE)]),
        lambda: ui.articles.rebuild("", progress=None),
        lambda: ui.articles.remove(picked, True, "", progress=None),
        ui.api.rebuild,
    ]
    for change in changes:
        with pytest.raises(gr.Error) as refused:
            change()
        assert "Index changes are disabled" in refused.value.message
    assert sorted(p.name for p in settings.corpus_dir.iterdir()) == before
    assert ui.api.stats()["changes_allowed"] is False
    assert any(c["sentence"].startswith(SOURED) for c in ui.api.ask(QUESTION)["citations"])


# ---------------------------------------------------------------------- API


def test_api_ask_returns_what_rag_ask_json_does(ui):
    assert ui.api.ask(QUESTION) == ui.pipeline.ask(QUESTION).to_dict()
    got = ui.api.ask(QUESTION, k=3, sources=["Iran Press TV"], history=[["Who called?", "Putin did."]])
    assert len(got["passages"]) <= 3 and {p["source"] for p in got["passages"]} == {"Iran Press TV"}
    for kwargs, words in (
        ({"k": 101}, "k must be a whole number from 1 to 100"),
        ({"date_to": "soon"}, "date_to must be a date"),
        ({"history": [["only a question"]]}, "history must be a list of"),
    ):
        with pytest.raises(gr.Error) as refused:
            ui.api.ask(QUESTION, **kwargs)
        assert words in refused.value.message
