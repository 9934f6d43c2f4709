"""Export of a conversation as Markdown: the document for a known conversation (its
footnotes, and article text that cannot turn into links or HTML), the /export route,
and the chat's Export button downloading the file in a real browser."""

from __future__ import annotations

import json
import re
import shutil
from datetime import datetime, timezone

import httpx
import pytest
from conftest import SAMPLE, TIMEOUT_MS, free_port
from markdown_it import MarkdownIt

from rag.build import Builder
from rag.pipeline import Pipeline
from rag.settings import Settings
from ui.export import Conversations, escape, exchange, markdown

NOW = datetime(2024, 3, 5, 14, 30, tzinfo=timezone.utc)
QUESTION = "Why did Russia-Turkey ties sour?"
PASSWORD = "correct-horse-battery"

CONVERSATION = [
    {
        "question": "Why did ties sour?",
        "answer": "Turkey shot down a jet. [1] Ties soured after that. [2]",
        "abstained": False,
        "notice": "",
        "citations": [
            {"n": 1, "sentence": "Turkey shot down a jet.", "title": "Putin condoles", "source": "Iran Press TV",
             "published": "2017-02-09", "url": "https://presstv.example/a", "file": "a.txt", "article_id": "a"},
            {"n": 2, "sentence": "Ties soured after that.", "title": "Putin condoles", "source": "Iran Press TV",
             "published": "2017-02-09", "url": "https://presstv.example/a", "file": "a.txt", "article_id": "a"},
        ],
    },
    {"question": "And the weather?", "answer": "I could not find this in the indexed articles.", "abstained": True,
     "notice": "", "citations": []},
]

EXPECTED = """# News Q&A conversation

_Exported 2024-03-05 14:30 UTC · 2 questions_

## 1\\. Why did ties sour?

Turkey shot down a jet. [^q1-1] Ties soured after that. [^q1-2]

[^q1-1]: **Putin condoles**, Iran Press TV, 2017-02-09, <https://presstv.example/a>. “Turkey shot down a jet.”
[^q1-2]: **Putin condoles**, Iran Press TV, 2017-02-09, <https://presstv.example/a>. “Ties soured after that.”

## 2\\. And the weather?

I could not find this in the indexed articles.
"""


def test_known_conversation_as_markdown():
    assert markdown(CONVERSATION, now=NOW) == EXPECTED


HOSTILE = {
    "question": "What is <b>new</b>? [x](http://evil.example)",
    "answer": "# Big [click me](javascript:alert(1)) <script>alert(1)</script> ![t](http://tracker.example/p.png) *wow* $5 & $6 [1]",
    "abstained": False,
    "notice": "",
    "citations": [
        {"n": 1, "sentence": "# Big [click me](javascript:alert(1)) <script>alert(1)</script> ![t](http://tracker.example/p.png) *wow* $5 & $6",
         "title": "<img src=x onerror=alert(1)> [T](http://evil.example)", "source": "Out|let", "published": "2020-01-01",
         "url": "javascript:alert(1)", "file": "x.txt", "article_id": "x"},
    ],
}


def test_article_text_cannot_inject_links_images_or_html():
    text = markdown([HOSTILE], now=NOW)
    html = MarkdownIt("commonmark", {"html": True}).enable("table").render(text)
    assert "<script" not in html and "<img" not in html and "<b>" not in html and "<h1>Big" not in html
    assert "href" not in html  # no link at all: the only url is not http(s), so it is shown as text
    # Nothing is lost: the words are all there, as text.
    for words in ("[click me](javascript:alert(1))", "&lt;script&gt;alert(1)&lt;/script&gt;", "*wow* $5 &amp; $6", "Out|let"):
        assert words in html, words
    assert "<sup" not in html  # (footnotes are not a CommonMark feature: rendered as text here)


def test_escape_keeps_plain_text_readable():
    assert escape("U.S. officials met on 2017-02-09 (Monday), saying: \"yes\"!") == 'U.S. officials met on 2017-02-09 (Monday), saying: "yes"!'
    assert escape("1. First", line_start=True) == "1\\. First" and escape("- a", line_start=True) == "\\- a"
    assert escape("a\nb\t c") == "a b c"


def test_conversations_are_bounded_and_by_id():
    kept = Conversations(limit=2)
    ids = [kept.new_id() for _ in range(3)]
    assert len(set(ids)) == 3 and all(len(i) >= 20 for i in ids)
    for i in ids:
        kept.put(i, [{"question": i}])
    assert kept.get(ids[0]) is None and kept.get(ids[2]) == [{"question": ids[2]}]


# ------------------------------------------------------------------ live app


@pytest.fixture(scope="module")
def built(tmp_path_factory, embedder) -> tuple[Settings, Pipeline]:
    root = tmp_path_factory.mktemp("export")
    corpus = root / "corpus"
    corpus.mkdir()
    shutil.copy(SAMPLE, corpus / SAMPLE.name)
    settings = Settings(corpus_dir=corpus, index_dir=root / "index")
    Builder(settings, embedder=embedder)()
    return settings, Pipeline(settings, embedder=embedder)


def launch(built, **kwargs):
    from ui.app import build_app

    demo = build_app(*built)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **kwargs)
    return demo, f"http://127.0.0.1:{port}/"


def test_export_route_needs_the_key_or_the_login(built):
    demo, url = launch(built, auth=("ann", PASSWORD))
    try:
        route = url + "export?format=md&conversation=nope"
        assert httpx.get(route, timeout=30).status_code == 401
        assert httpx.get(route, headers={"Authorization": f"Bearer {PASSWORD}"}, timeout=30).status_code == 404
        with httpx.Client(timeout=30) as browser_like:
            assert browser_like.post(url + "login", data={"username": "ann", "password": PASSWORD}).status_code == 200
            reply = browser_like.get(route)
        assert reply.status_code == 404 and reply.json()["error"]["code"] == "conversation_not_found"
    finally:
        demo.close()


def test_export_route_takes_a_posted_api_conversation(built):
    pipeline = built[1]
    demo, url = launch(built)
    try:
        from openai import OpenAI

        client = OpenAI(base_url=url + "v1", api_key="unused", max_retries=0)
        reply = client.chat.completions.create(model="rag-news", messages=[{"role": "user", "content": QUESTION}])
        messages = [
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": reply.choices[0].message.content, "citations": reply.model_extra["citations"]},
        ]
        got = httpx.post(url + "export?format=md", json={"messages": messages}, timeout=60)
        assert got.status_code == 200 and got.headers["content-type"].startswith("text/markdown")
        assert re.fullmatch(r'attachment; filename="conversation-\d{8}-\d{6}\.md"', got.headers["content-disposition"])
        expected = markdown([exchange(pipeline.ask(QUESTION))])
        assert got.text.split("\n", 3)[3] == expected.split("\n", 3)[3]  # all but the time of export
        bad = httpx.post(url + "export?format=md", json={"messages": [{"role": "assistant", "content": "x", "citations": [{"n": "one"}]}]}, timeout=30)
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "messages[0].citations"
        assert httpx.post(url + "export?format=pdf", json={"messages": []}, timeout=30).json()["error"]["param"] == "format"
        assert httpx.get(url + "export?format=md", timeout=30).json()["error"]["param"] == "conversation"
    finally:
        demo.close()


def test_export_button_downloads_the_conversation(built, browser, tmp_path):
    pipeline = built[1]
    demo, url = launch(built)
    try:
        context = browser.new_context(viewport={"width": 1360, "height": 900}, accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(url)
        button = page.locator("#export")
        page.locator("#question textarea").wait_for()
        assert button.is_disabled()  # nothing to export yet
        box = page.locator("#question textarea")
        box.fill(QUESTION)
        box.press("Enter")
        page.wait_for_function("() => !!document.querySelector('#chat [data-testid=\"bot\"] .answer-foot')", timeout=TIMEOUT_MS)
        page.wait_for_function("() => !document.querySelector('#export').disabled", timeout=TIMEOUT_MS)
        with page.expect_download() as caught:
            button.click()
        download = caught.value
        assert re.fullmatch(r"conversation-\d{8}-\d{6}\.md", download.suggested_filename)
        saved = tmp_path / download.suggested_filename
        download.save_as(saved)
        text = saved.read_text(encoding="utf-8")
        answer = pipeline.ask(QUESTION)
        assert text.split("\n", 3)[3] == markdown([exchange(answer)]).split("\n", 3)[3]
        assert f"## 1\\. {QUESTION}" in text and "[^q1-1]: **Putin condoles with Erdogan" in text
        # The same conversation from the route, by the id the chat's link shows.
        page.locator("#settings").click()
        href = page.locator("#export-link a").get_attribute("href")
        assert href.startswith("export?format=md&conversation=")
        routed = httpx.get(url + href, timeout=30)
        assert routed.status_code == 200 and routed.text.split("\n", 3)[3] == text.split("\n", 3)[3]
        # "New chat" empties it.
        page.locator("#clear").click()
        page.wait_for_function("() => document.querySelector('#export').disabled", timeout=TIMEOUT_MS)
        assert "_No questions asked yet._" in httpx.get(url + href, timeout=30).text
        context.close()
    finally:
        demo.close()


def test_exchange_keeps_what_the_footnotes_need(built):
    _, pipeline = built
    answer = pipeline.ask(QUESTION)
    kept = exchange(answer)
    assert kept["citations"] == answer.to_dict()["citations"] and "passages" not in kept
    assert json.loads(json.dumps(kept)) == kept  # plain JSON: it lives in the chat's state
