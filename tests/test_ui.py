"""Browser tests of the chat UI (Gradio 6 + headless Chromium through Playwright).

One index and one running app are shared by the module: the sample article plus
an article full of script injections. Nothing here touches the network: the app
listens on a free loopback port and the page may only fetch from it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from conftest import SAMPLE, TIMEOUT_MS, free_port

from rag.answer import Turn
from rag.build import Builder
from rag.pipeline import Pipeline
from rag.settings import Settings

pytestmark = pytest.mark.slow

QUESTION = "Why did Russia-Turkey ties sour?"
SOURED = "Ties between Moscow and Ankara soured"

XSS_SCRIPT = "<script>window.__xss=1</script>"
XSS_IMG = '<img src=x onerror="window.__xss=1">'
XSS_ARTICLE = {
    "title": f"Glassblowers festival {XSS_SCRIPT} opens",
    "source": "Lakeside Courier",
    "published_at": "2020-06-01",
    "url": "javascript:window.__xss=1",
    "body": (
        f"The annual glassblowers festival in Murano opened on Friday with {XSS_SCRIPT} forty workshops. "
        f"Visitors watched master glassblowers shape vases at the furnace {XSS_IMG} until midnight.\n\n"
        "Organisers expect thirty thousand visitors during the glassblowers festival this year."
    ),
}

# Apostrophes, quotes and an ampersand: the chat must show them as they are.
QUOTES_ARTICLE = {
    "title": "Amazon's spring sale & what's in it",
    "source": "Retail Wire",
    "published_at": "2021-03-15",
    "body": (
        "Amazon's spring sale includes the company's Kindle readers & Echo speakers at \"half price\", "
        "the retailer's spokeswoman said on Monday.\n\n"
        "Shoppers who don't have a Prime membership can't see every deal, according to the company's site."
    ),
}
ENTITY = re.compile(r"&(#\d+|#x[0-9a-f]+|[a-z]+);", re.IGNORECASE)

NEW_ARTICLE = """Title: Port Ellery lighthouse reopens after restoration
Source: Ellery Gazette
Date: 2021-05-04

The historic lighthouse of Port Ellery reopened on Saturday after a restoration that took two years.

The restoration of the Port Ellery lighthouse cost four million euros, paid by the regional heritage fund.

Volunteers replaced the lantern glass and repainted the tower in its original red and white bands.
"""


@pytest.fixture(scope="module")
def app(tmp_path_factory, embedder):
    """(url, settings, pipeline) of the app running on a free loopback port."""
    from ui.app import build_app

    root = tmp_path_factory.mktemp("ui")
    corpus = root / "corpus"
    corpus.mkdir()
    shutil.copy(SAMPLE, corpus / SAMPLE.name)
    (corpus / "glass.json").write_text(json.dumps(XSS_ARTICLE), encoding="utf-8")
    (corpus / "sale.json").write_text(json.dumps(QUOTES_ARTICLE), encoding="utf-8")
    settings = Settings(corpus_dir=corpus, index_dir=root / "index")
    report = Builder(settings, embedder=embedder)()
    assert report.added == 3, report.summary()
    pipeline = Pipeline(settings, embedder=embedder)
    demo = build_app(settings, pipeline)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        yield f"http://127.0.0.1:{port}/", settings, pipeline
    finally:
        demo.close()


@pytest.fixture
def page(app, browser):
    url = app[0]
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    external: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(url) or r.url.startswith(("data:", "blob:")) else external.append(r.url))
    page.goto(url)
    page.locator("#question textarea").wait_for()
    yield page
    context.close()
    assert not external, f"the page fetched from outside the app: {external}"


def bot_messages(page) -> int:
    return page.locator('#chat [data-testid="bot"]').count()


def ask(page, question: str) -> None:
    """Type a question, send it, and wait until its answer is complete."""
    before = bot_messages(page)
    box = page.locator("#question textarea")
    box.fill(question)
    box.press("Enter")
    page.wait_for_function(
        """n => {
            const bots = document.querySelectorAll('#chat [data-testid="bot"]');
            if (bots.length <= n) return false;
            const last = bots[bots.length - 1];
            return !!last.querySelector('.answer-foot, .abstain');
        }""",
        arg=before,
        timeout=TIMEOUT_MS,
    )


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


# ---------------------------------------------------------------------- chat


def test_answer_cites_and_highlights_the_sentence(page):
    ask(page, QUESTION)
    marks = page.locator("#sources mark")
    texts = [marks.nth(i).inner_text() for i in range(marks.count())]
    assert any(t.startswith(SOURED) for t in texts), texts
    # The highlighted sentence sits inside its passage, in a card with the article's details.
    card = page.locator("#sources .src-card", has=page.locator("mark", has_text=SOURED))
    assert card.get_attribute("id").startswith("cite-")
    assert "Iran Press TV" in card.inner_text() or "same article" in card.inner_text()
    assert "2017-02-09" in page.locator("#sources").inner_text()
    # Numbered marks in the answer link to those cards; clicking one flashes it in place.
    n = card.get_attribute("id").split("-")[1]
    link = page.locator(f'#chat a[href="#cite-{n}"]').last
    assert link.inner_text().strip() == n
    link.click()
    page.wait_for_function(f"document.getElementById('cite-{n}').classList.contains('flash')")
    assert "#" not in page.url  # the link scrolled the panel instead of navigating


def test_follow_up_is_asked_with_history(page, app, monkeypatch):
    pipeline = app[2]
    calls = []
    real_ask = pipeline.ask

    def spy(question, history=(), **kwargs):
        answer = real_ask(question, history=history, **kwargs)
        calls.append((question, list(history), answer))
        return answer

    monkeypatch.setattr(pipeline, "ask", spy)
    ask(page, QUESTION)
    ask(page, "And how were relations mended?")
    assert bot_messages(page) == 2
    (_, h1, a1), (_, h2, a2) = calls
    assert h1 == [] and h2 == [Turn(QUESTION, a1.text)]
    assert not a2.abstained
    assert "mended their relations" in page.locator("#sources").inner_text()


def test_abstention_is_shown_as_such(page):
    ask(page, "What is the boiling point of liquid nitrogen in kelvin?")
    assert "Not found in the indexed articles" in page.locator("#chat .abstain").last.inner_text()
    assert "closest passages" in page.locator("#sources .sources-head").inner_text().lower()
    assert page.locator("#sources .src-card").count() >= 1


def test_no_html_entity_is_ever_shown_as_text(page):
    question = "What's in Amazon's sale? Kindle & \"Echo\" <deals>"
    ask(page, question)
    user = page.locator('#chat [data-testid="user"]').last.inner_text()
    bot = page.locator('#chat [data-testid="bot"]').last.inner_text()
    assert question in user
    assert "Amazon's spring sale includes the company's Kindle readers & Echo speakers at \"half price\"" in bot
    for where in ("#chat", "#sources"):
        text = page.locator(where).inner_text()
        assert not ENTITY.search(text), f"{where} shows an HTML entity as text: {ENTITY.search(text)[0]!r}"
    # The cite mark's tooltip holds the title with its apostrophe and ampersand as they are.
    titles = page.locator("#chat sup.cite-mark a").evaluate_all("links => links.map(a => a.title)")
    assert any("Amazon's spring sale & what's in it" in t for t in titles), titles
    # Nor anywhere on the Articles tab (table, removal picker, stats).
    open_tab(page, "Articles")
    page.locator("#articles").get_by_text("Amazon's spring sale & what's in it").first.wait_for()
    page.get_by_text("Remove an article").click()
    pick = page.locator("#remove-pick input")
    pick.click()
    pick.fill("Amazon's")
    option = page.get_by_role("option", name="Amazon's spring sale & what's in it", exact=False).first
    option.click()
    page.get_by_text("is a list file holding 1 article").wait_for()
    body = page.locator("body").inner_text()
    assert not ENTITY.search(body), f"the page shows an HTML entity as text: {ENTITY.search(body)[0]!r}"


# ---------------------------------------------------------------------- security


def test_article_markup_is_shown_as_text_and_runs_nothing(page):
    ask(page, "How many workshops opened at the glassblowers festival in Murano?")
    sources = page.locator("#sources")
    text = sources.inner_text()
    assert "glassblowers festival" in text
    assert XSS_SCRIPT in text  # the title, literally
    assert page.locator("#sources img, #chat img").count() == 0
    assert page.locator('a[href^="javascript"]').count() == 0
    # The javascript: url is shown as text, not a link.
    assert "javascript:window.__xss=1" in text
    ask(page, "What did visitors watch master glassblowers shape at the furnace?")
    assert XSS_IMG in page.locator("#sources").inner_text()
    assert page.locator("#sources img, #chat img").count() == 0
    open_tab(page, "Articles")
    page.locator("#articles").get_by_text("Glassblowers festival", exact=False).first.wait_for()
    assert XSS_SCRIPT in page.locator("#articles").inner_text()
    time.sleep(0.5)
    assert page.evaluate("typeof window.__xss") == "undefined"


def test_upload_name_cannot_escape_the_corpus(page, app, tmp_path):
    settings = app[1]
    corpus = Path(settings.corpus_dir)
    before = {p.name for p in corpus.parent.iterdir()}
    open_tab(page, "Articles")
    with page.expect_file_chooser() as chooser:
        page.locator("#upload").get_by_text("Click to Upload").click()
    chooser.value.set_files(
        [{"name": "../../evil.txt", "mimeType": "text/plain", "buffer": NEW_ARTICLE.replace("Port Ellery", "Evilton").encode()}]
    )
    page.locator("#status-line").get_by_text("evil.txt").wait_for()
    assert (corpus / "evil.txt").is_file()
    # A name in another script is kept as it is.
    with page.expect_file_chooser() as chooser:
        page.locator("#upload").get_by_text("Click to Upload").click()
    chooser.value.set_files([{"name": "新闻一.txt", "mimeType": "text/plain", "buffer": NEW_ARTICLE.encode()}])
    page.locator("#status-line").get_by_text("新闻一.txt").wait_for()
    assert "unsupported" not in page.locator("#status-line").inner_text()
    assert (corpus / "新闻一.txt").read_text(encoding="utf-8") == NEW_ARTICLE
    (corpus / "新闻一.txt").unlink()
    assert {p.name for p in corpus.parent.iterdir()} == before
    assert not (corpus.parent.parent / "evil.txt").exists()
    for p in corpus.iterdir():
        assert p.resolve().parent == corpus.resolve()
    (corpus / "evil.txt").unlink()


def test_upload_names_gradio_rewrites_never_replace_a_file(page, app):
    """Gradio stores `evil.txt `, `evil.txt.` and `ev<il>.txt` as `evil.txt`; NFD `café.txt`
    is another name than the NFC one on disk. None of them replaces the existing file."""
    corpus = Path(app[1].corpus_dir)
    cafe = "caf\u00e9.txt"
    existing = {"evil.txt": "the original evil article", cafe: "the original cafe article"}
    for name, text in existing.items():
        (corpus / name).write_text(text, encoding="utf-8")
    before = {p.name for p in corpus.iterdir()}
    sent = ["evil.txt ", "evil.txt.", "ev<il>.txt", "cafe\u0301.txt"]
    open_tab(page, "Articles")
    with page.expect_file_chooser() as chooser:
        page.locator("#upload").get_by_text("Click to Upload").click()
    chooser.value.set_files(
        [{"name": name, "mimeType": "text/plain", "buffer": f"upload {i}: {NEW_ARTICLE}".encode()} for i, name in enumerate(sent)]
    )
    status = page.locator("#status-line")
    status.get_by_text("Rebuild index").wait_for()
    try:
        for name, text in existing.items():
            assert (corpus / name).read_text(encoding="utf-8") == text
        # The browser itself leaves out `evil.txt ` and `evil.txt.` (not a .txt suffix to its
        # file-type check); the raw HTTP test below sends them.
        added = {p.name for p in corpus.iterdir()} - before
        assert {"ev-il.txt", "caf\u00e9-2.txt"} <= added <= {"ev-il.txt", "caf\u00e9-2.txt", "evil-2.txt", "evil-3.txt"}
        assert f"a different file is already called {cafe}" in status.inner_text()
    finally:
        for name in ({p.name for p in corpus.iterdir()} - before) | set(existing):
            (corpus / name).unlink()


def test_upload_names_gradio_rewrites_never_replace_a_file_over_http(app):
    """The same through Gradio's HTTP routes, as a script (or the browser's own client) sends
    them: the file to /gradio_api/upload, then the upload event with its FileData."""
    import httpx

    url, settings = app[0], app[1]
    corpus = Path(settings.corpus_dir)
    (corpus / "evil.txt").write_text("the original evil article", encoding="utf-8")
    before = {p.name for p in corpus.iterdir()}
    event = next(d for d in httpx.get(url + "config", timeout=30).json()["dependencies"] if d["api_name"] == "ui_upload")
    sent = ["evil.txt ", "evil.txt.", "ev<il>.txt"]
    files = []
    for i, name in enumerate(sent):
        stored = httpx.post(url + "gradio_api/upload", files={"files": (name, f"upload {i}".encode())}, timeout=30).json()[0]
        assert Path(stored).name == "evil.txt"  # Gradio's copy: the existing file's name
        files.append({"path": stored, "orig_name": name, "meta": {"_type": "gradio.FileData"}})
    session = "upload-names-test"
    join = {"data": [files], "fn_index": event["id"], "session_hash": session, "event_data": None, "trigger_id": None}
    assert httpx.post(url + "gradio_api/queue/join", json=join, timeout=30).status_code == 200
    with httpx.stream("GET", url + "gradio_api/queue/data", params={"session_hash": session}, timeout=120) as stream:
        for line in stream.iter_lines():
            if '"process_completed"' in line:
                message = json.loads(line.removeprefix("data: "))
                break
    try:
        assert message["success"], message
        assert (corpus / "evil.txt").read_text(encoding="utf-8") == "the original evil article"
        added = {p.name for p in corpus.iterdir()} - before
        assert added == {"evil-2.txt", "evil-3.txt", "ev-il.txt"}
        assert sorted((corpus / name).read_text() for name in added) == [f"upload {i}" for i in range(3)]
        assert message["output"]["data"][0].count("a different file is already called evil.txt") == 2
    finally:
        for name in ({p.name for p in corpus.iterdir()} - before) | {"evil.txt"}:
            (corpus / name).unlink()


def test_upload_on_a_full_disk_is_reported(page, app, monkeypatch):
    import errno

    from ui import files

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files, "save_upload", full)
    open_tab(page, "Articles")
    with page.expect_file_chooser() as chooser:
        page.locator("#upload").get_by_text("Click to Upload").click()
    chooser.value.set_files([{"name": "full.txt", "mimeType": "text/plain", "buffer": NEW_ARTICLE.encode()}])
    status = page.locator("#status-line")
    status.get_by_text("could not be saved").wait_for()
    assert "full.txt" in status.inner_text() and "No space left on device" in status.inner_text()
    assert not (Path(app[1].corpus_dir) / "full.txt").exists()


def test_save_upload_sanitises_names(tmp_path):
    from ui.files import UploadRefused, safe_name, save_upload

    assert safe_name("../../evil.txt") == "evil.txt"
    assert safe_name("..\\..\\windows\\evil.md") == "evil.md"
    assert safe_name(".hidden.TXT") == "hidden.txt"
    assert safe_name("a b<script>.json") == "a b-script.json"
    assert safe_name("/etc/passwd.txt") == "passwd.txt"
    for bad in ("evil.exe", "evil", "../../", "x.txt.sh"):
        with pytest.raises(UploadRefused):
            safe_name(bad)
    corpus = tmp_path / "corpus"
    src = tmp_path / "upload"
    src.write_text("Some article text.")
    saved = save_upload(src, "../../../x.txt", corpus, max_bytes=1_000_000)
    assert saved.name == "x.txt" and (corpus / "x.txt").read_text() == "Some article text."
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corpus", "upload"]
    src.write_bytes(b"x" * 2_000_001)
    with pytest.raises(UploadRefused, match="too large"):
        save_upload(src, "big.txt", corpus, max_bytes=2_000_000)


# ---------------------------------------------------------------------- index changes


def test_upload_rebuild_then_ask_about_it(page, app, tmp_path):
    settings = app[1]
    article = tmp_path / "port-ellery-lighthouse.txt"
    article.write_text(NEW_ARTICLE, encoding="utf-8")
    open_tab(page, "Articles")
    with page.expect_file_chooser() as chooser:
        page.locator("#upload").get_by_text("Click to Upload").click()
    chooser.value.set_files(str(article))
    page.locator("#status-line").get_by_text("port-ellery-lighthouse.txt").wait_for()
    assert (Path(settings.corpus_dir) / "port-ellery-lighthouse.txt").is_file()
    page.locator("#rebuild").click()
    page.locator("#status-line").get_by_text("Rebuilt.").wait_for(timeout=TIMEOUT_MS * 2)
    assert "1 added" in page.locator("#status-line").inner_text()
    page.locator("#articles").get_by_text("Port Ellery lighthouse reopens", exact=False).first.wait_for()
    # No restart: the chat answers from the new article at once.
    open_tab(page, "Chat")
    ask(page, "How much did the restoration of the Port Ellery lighthouse cost?")
    sources = page.locator("#sources").inner_text()
    assert "Port Ellery lighthouse reopens after restoration" in sources
    assert any("four million euros" in mark for mark in page.locator("#sources mark").all_inner_texts())


def test_remove_article_deletes_its_file_and_rebuilds(page, app):
    from gradio_client import Client

    url, settings, pipeline = app
    target = Path(settings.corpus_dir) / "carrow-bay-lighthouse.txt"
    target.write_text(NEW_ARTICLE.replace("Port Ellery", "Carrow Bay"), encoding="utf-8")
    report = Client(url, verbose=False, download_files=False).predict(api_name="/rebuild")
    assert report["added"] == 1, report
    assert any("Carrow Bay" in a["title"] for a in pipeline.store.articles())
    page.reload()  # the Articles tab lists what the index held when the page loaded
    open_tab(page, "Articles")
    page.get_by_text("Remove an article").click()
    pick = page.locator("#remove-pick input")
    pick.click()
    pick.fill("Carrow Bay")
    page.get_by_role("option", name="Carrow Bay lighthouse reopens", exact=False).first.click()
    page.get_by_text("from the corpus folder and rebuilds").wait_for()
    page.get_by_role("button", name="Delete file and rebuild").click()
    page.locator("#status-line").get_by_text("Rebuilt.").wait_for(timeout=TIMEOUT_MS * 2)
    assert "1 removed" in page.locator("#status-line").inner_text()
    assert not target.exists()
    assert "Carrow Bay" not in page.locator("#articles").inner_text()
    assert all("Carrow Bay" not in a["title"] for a in pipeline.store.articles())


def test_questions_are_answered_while_a_rebuild_runs(app, monkeypatch):
    from conftest import article_text
    from gradio_client import Client

    url, settings, pipeline = app
    (Path(settings.corpus_dir) / "long-harbour.txt").write_text(article_text("harbour dredging", n=40))
    # The rebuild holds in its first batch of chunks until a question was answered meanwhile:
    # on any machine, however fast, questions are asked while it runs (once a 2,000-sentence
    # article had to take long enough, 20 s of embedding on two cores).
    embedding, answered = threading.Event(), threading.Event()
    embed = type(pipeline.embedder).embed

    def held(self, texts, spans=None):
        if spans is not None:  # the build's chunks; a question is embedded without spans
            embedding.set()
            assert answered.wait(TIMEOUT_MS / 1000), "no question was answered while the rebuild waited"
        return embed(self, texts, spans)

    monkeypatch.setattr(type(pipeline.embedder), "embed", held)
    client = Client(url, verbose=False, download_files=False)
    job = client.submit(api_name="/rebuild")
    during = 0
    while not job.done():
        building = embedding.is_set()  # the rebuild is under way, held in its embedding
        answer = client.predict(QUESTION, api_name="/ask")
        assert any(c["sentence"].startswith(SOURED) for c in answer["citations"])
        during += building and not job.done()
        if during:
            answered.set()
    report = job.result()
    assert report["added"] == 1 and report["reloaded"], report
    assert during >= 1, "no question was answered while the rebuild ran"
    assert client.predict(api_name="/stats")["articles"] == len(pipeline.store.articles())


# ---------------------------------------------------------------------- API and serve


def test_client_ask_returns_the_json_contract(app):
    from gradio_client import Client

    url, _, pipeline = app
    # The client's defaults (download_files=True): no dict in a reply may look like a file.
    client = Client(url, verbose=False)
    assert {"/ask", "/stats", "/articles", "/rebuild"} <= set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    got = client.predict(QUESTION, api_name="/ask")
    assert got == pipeline.ask(QUESTION).to_dict()
    assert {"question", "answer", "abstained", "citations", "passages"} <= set(got)
    assert any(c["sentence"].startswith(SOURED) for c in got["citations"])
    follow = client.predict(
        "And how were relations mended?", k=5, history=[[QUESTION, got["answer"]]], api_name="/ask"
    )
    assert not follow["abstained"] and len(follow["passages"]) <= 5
    stats = client.predict(api_name="/stats")
    assert stats["articles"] >= 2 and "Iran Press TV" in stats["outlets"]
    articles = client.predict(api_name="/articles")
    assert {a["file"] for a in articles} >= {SAMPLE.name, "glass.json"}
    assert all("path" not in a for a in articles)
    assert client.predict("glassblowers", api_name="/articles")[0]["file"] == "glass.json"


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"question": "   "}, "the question is empty"),
        ({"question": "?"}, "the question is empty"),
        ({"question": QUESTION, "k": 0}, "k must be a whole number from 1 to 100"),
        ({"question": QUESTION, "k": -3}, "from 1 to 100"),
        ({"question": QUESTION, "date_to": "2017-13-45"}, "date_to must be a date written YYYY-MM-DD"),
        ({"question": QUESTION, "date_from": "notadate"}, "date_from must be a date"),
        ({"question": QUESTION, "date_from": "2018-01-01", "date_to": "2017-01-01"}, "is after"),
        ({"question": "What\x00\x01 happened?"}, "control characters"),
        ({"question": QUESTION, "history": [["only a question"]]}, "history must be a list of"),
        ({"question": QUESTION, "history": "not a list"}, "history must be a list of"),
        # One text is refused, not searched as the outlets "R", "e", "u", ... (a false "could not find").
        ({"question": QUESTION, "sources": "Reuters"}, r'sources must be a list of outlet names, such as \["Reuters"\]'),
        ({"question": QUESTION, "sources": [1, 2]}, "sources must be a list of outlet names.*got 1 in the list"),
        ({"question": QUESTION, "llm": "no"}, 'llm must be true or false \\(got "no"\\)'),
        ({"question": 42}, "the question must be text"),
    ],
)
def test_api_refuses_bad_input_with_what_is_allowed(app, kwargs, words):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    client = Client(app[0], verbose=False)
    with pytest.raises(AppError, match=words):
        client.predict(**kwargs, api_name="/ask")


def raw_ask(url: str, data: list) -> tuple[str, dict]:
    """POST /gradio_api/call/ask as a plain HTTP client would; (event, its data)."""
    import httpx

    event_id = httpx.post(url + "gradio_api/call/ask", json={"data": data}, timeout=60).json()["event_id"]
    reply = httpx.get(url + f"gradio_api/call/ask/{event_id}", timeout=120).text
    event = re.search(r"^event: (\w+)$", reply, re.M).group(1)
    body = json.loads(reply.rsplit("data: ", 1)[1])
    return event, body


def test_api_says_what_it_expected_to_a_plain_http_client(app, capfd):
    url = app[0]
    capfd.readouterr()
    # Too few values: Gradio's own refusal reached the client as {"error": null}.
    event, body = raw_ask(url, [QUESTION])
    assert event == "error" and body["error"].startswith("/ask takes 7 values, in this order: question, k, sources,")
    assert "(got 1)" in body["error"]
    # Numbers as outlets crashed the filter (AttributeError, traceback, {"error": null}).
    event, body = raw_ask(url, [QUESTION, 10, [1, 2], "", "", None, False])
    assert event == "error" and "sources must be a list of outlet names" in body["error"]
    assert "Traceback" not in capfd.readouterr().err  # a refused request is not a crash in the log
    # A list of outlets filters as before.
    outlet = raw_ask(url, [QUESTION, 10, None, "", "", None, False])[1][0]["citations"][0]["source"]
    event, body = raw_ask(url, [QUESTION, 10, [outlet], "", "", None, False])
    assert event == "complete" and body[0]["citations"]
    assert {c["source"] for c in body[0]["citations"]} == {outlet}


def test_serve_refuses_public_host_without_auth(app, monkeypatch, capsys):
    from ui.app import is_loopback, parse_auth, serve

    monkeypatch.delenv("RAG_AUTH", raising=False)
    port = free_port()
    assert serve(app[1], host="0.0.0.0", port=port) == 2
    err = capsys.readouterr().err
    assert "refusing to listen on 0.0.0.0" in err and "--auth" in err
    with socket.socket() as s:  # nothing was left listening
        assert s.connect_ex(("127.0.0.1", port)) != 0
    monkeypatch.setenv("RAG_AUTH", "nopassword")
    assert serve(Settings.from_env(index_dir=app[1].index_dir), host="0.0.0.0", port=port) == 2
    assert "user:password" in capsys.readouterr().err
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5") and not is_loopback("example.org")
    assert parse_auth("ann:s3:cret") == ("ann", "s3:cret") and parse_auth(None) is None
