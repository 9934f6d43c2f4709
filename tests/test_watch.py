"""An index that keeps itself current: the Watcher with a live Pipeline, `rag watch`,
and `rag serve --watch` with a local feed. Every wait is a bounded poll."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import free_port, sample_index, wait_for
from feed_server import FeedSite, page, rss

from rag import feeds
from rag.pipeline import Pipeline
from rag.watch import Watcher

DEADLINE = 180.0  # seconds any one change may take to become answerable: two shared cores, be patient

OTTERS = (
    "Otters return to the Wendle river\n\n"
    "A family of otters has been filmed on the Wendle river for the first time in forty years.\n\n"
    "The wildlife trust counted five otters near the old mill at Ashby Ford in November.\n\n"
    "Ranger Colm Hadley said cleaner water had brought back the fish the otters feed on.\n"
)
OTTERS_CHANGED = OTTERS.replace("five otters", "seven otters")


def poll(check, what: str, timeout: float = DEADLINE):
    """check() until it returns something true; its last value. Fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout:.0f} s: {what}")


@pytest.fixture
def watched(tmp_path, embedder):
    settings = sample_index(tmp_path, embedder)
    settings = replace(settings, watch_interval=0.2)
    pipeline = Pipeline(settings, embedder=embedder)
    watcher = Watcher(settings, pipeline=pipeline)
    watcher.built = watcher.snapshot()  # the sample index is current
    watcher.start()
    yield settings, pipeline, watcher
    watcher.stop()


def cited_files(pipeline: Pipeline, question: str) -> set[str]:
    return {c.path for c in pipeline.ask(question).citations}


def test_new_changed_and_deleted_files_are_indexed_within_seconds(watched):
    settings, pipeline, watcher = watched
    question = "How many otters did the wildlife trust count on the Wendle river?"
    assert "otters.txt" not in cited_files(pipeline, question)
    (settings.corpus_dir / "otters.txt").write_text(OTTERS)
    poll(lambda: "otters.txt" in cited_files(pipeline, question), "the new file answers")
    assert "five otters" in pipeline.ask(question).text
    # A question may load the build before the watcher has recorded it (Pipeline.refresh
    # sees the committed build first): its status line says so a moment later.
    status = poll(lambda: "new: otters.txt" in watcher.status() and watcher.status(), "the status names the new file")
    assert "index updated" in status
    # Answers keep coming from the loaded index while the watcher builds.
    (settings.corpus_dir / "otters.txt").write_text(OTTERS_CHANGED)
    poll(lambda: "seven otters" in pipeline.ask(question).text, "the changed file answers")
    poll(lambda: "changed: otters.txt" in watcher.status(), "the status names the changed file")
    (settings.corpus_dir / "otters.txt").unlink()
    poll(lambda: "otters.txt" not in cited_files(pipeline, question), "the deleted file is gone")
    poll(lambda: "deleted: otters.txt" in watcher.status(), "the status names the deleted file")
    assert watcher.last.report.removed == 1


def test_a_file_still_being_written_is_not_built_half(tmp_path, embedder):
    settings = sample_index(tmp_path, embedder)
    watcher = Watcher(settings, embedder=embedder)
    watcher.built = watcher.snapshot()
    assert watcher.step() is None  # nothing changed
    (settings.corpus_dir / "otters.txt").write_text(OTTERS[:40])
    assert watcher.step() is None  # changed since the last look: wait one more
    (settings.corpus_dir / "otters.txt").write_text(OTTERS)
    assert watcher.step() is None  # still changing
    event = watcher.step()  # unchanged for one look: built
    assert event.added == ["otters.txt"] and event.report.added == 1


def run_rag(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "rag.cli", *args], env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_rag_watch_builds_a_dropped_file_and_says_so(tmp_path, embedder):
    settings = sample_index(tmp_path, embedder)
    process = run_rag(
        ["watch", "--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir)], {"RAG_WATCH_INTERVAL": "0.3"}
    )
    try:
        first = process.stdout.readline()  # the start-up build: the sample is current
        assert "index updated" in first and "no file changes" in first, first + process.stderr.read()
        (settings.corpus_dir / "otters.txt").write_text(OTTERS)
        line = process.stdout.readline()
        assert "new: otters.txt" in line and "1 added" in line, line
    finally:
        process.terminate()
        process.wait(timeout=60)


NEWS = [
    "Lumen Bay opened its first night market on Friday, with sixty stalls along the harbour front.",
    "The market's organiser, Petra Nyberg, said it will run every Friday until the end of March.",
    "Stallholders pay a fee of twelve pounds a night, which the council says covers cleaning.",
]


def test_serve_watch_makes_files_and_feed_items_answerable_without_a_build(tmp_path, embedder):
    from gradio_client import Client

    settings = sample_index(tmp_path, embedder)
    with FeedSite() as site:
        site.routes["/market.html"] = (200, "text/html", page("Lumen Bay night market opens", NEWS))
        site.routes["/rss.xml"] = (200, "application/rss+xml", rss(site.base, []))
        feeds.FeedList.of(settings).add(site.base + "/rss.xml")
        port = free_port()
        args = ["serve", "--watch", "--feeds-every", "1s", "--index", str(settings.index_dir), "--corpus", str(settings.corpus_dir)]
        process = run_rag([*args, "--port", str(port)], {"RAG_WATCH_INTERVAL": "0.3", "RAG_FEED_DELAY": "0"})
        url = f"http://127.0.0.1:{port}/"
        try:
            wait_for(url, process)
            client = Client(url, verbose=False)

            def cited(question: str) -> set[str]:
                return {c["file"] for c in client.predict(question, api_name="/ask")["citations"]}

            (settings.corpus_dir / "otters.txt").write_text(OTTERS)
            poll(lambda: "otters.txt" in cited("How many otters were counted on the Wendle river?"), "the dropped file")
            # A new item in the feed: pulled on the schedule, its page saved and indexed.
            item = {"title": "Lumen Bay night market opens", "path": "/market.html", "guid": "m-1", "date": "Fri, 03 Nov 2023 18:00:00 GMT"}
            site.routes["/rss.xml"] = (200, "application/rss+xml", rss(site.base, [item]))
            found = poll(lambda: {f for f in cited("How much do Lumen Bay night market stallholders pay?") if f.startswith("feeds/")}, "the feed item")
            assert Path(next(iter(found))).name.startswith("2023-11-03-lumen-bay-night-market-opens")
        finally:
            process.terminate()
            process.wait(timeout=60)


def test_ui_shows_when_the_index_changed_and_what_came_in_and_what_dates_were_searched(watched, browser):
    """`rag serve --watch`'s status line under the upload box, refreshed while the
    page stays open; a question naming a month shows the dates it searched."""
    from conftest import TIMEOUT_MS

    from ui.app import build_app

    settings, pipeline, watcher = watched
    demo = build_app(settings, pipeline, watcher=watcher)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    context = browser.new_context(viewport={"width": 1360, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(f"http://127.0.0.1:{port}/")
        line = page.locator("#watch-line")
        line.get_by_text("Watching").wait_for()
        (settings.corpus_dir / "otters.txt").write_text(OTTERS)
        line.get_by_text("new: otters.txt").wait_for(timeout=DEADLINE * 1000)
        assert "index updated" in line.inner_text()
        box = page.locator("#question textarea")
        box.fill("What did Putin say to Erdogan in February 2017?")
        box.press("Enter")
        note = page.locator("#chat .answer-searched")
        note.wait_for()
        assert "searched articles from 2017-02-01 to 2017-02-28" in note.inner_text()
    finally:
        context.close()
        demo.close()
