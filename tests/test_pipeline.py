"""Pipeline: answers need no embedding but the question's, run in parallel, and each one
comes from one complete index state, also while a build runs."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from conftest import SAMPLE, article_text

from rag import database
from rag.build import Builder
from rag.pipeline import Pipeline
from rag.settings import Settings
from rag.store import IndexStore

QUESTION = "Why did Russia-Turkey ties sour?"
LIGHTHOUSE = "Lighthouse plan under review"


class CountingEmbedder:
    """The real embedder, counting the texts each call embeds."""

    def __init__(self, inner):
        self.inner = inner
        self.calls: list[int] = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __call__(self, texts):
        self.calls.append(len(texts))
        return self.inner(texts)


@pytest.fixture
def index(tmp_path, embedder) -> Settings:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(SAMPLE, corpus / SAMPLE.name)
    (corpus / "lighthouse.txt").write_text(article_text("lighthouse"))
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index")
    Builder(settings, embedder=embedder)()
    return settings


def test_sentences_carry_build_vectors_close_to_their_own_embedding(index, embedder):
    store = IndexStore(index.index_dir)
    article_id = next(a["id"] for a in store.articles() if a["title"] != LIGHTHOUSE)
    rows = store.sentences(article_id, 0, 10_000)
    text = store.article_text(article_id)
    assert len(rows) == store.query("SELECT COUNT(*) FROM sentences WHERE article_id = ?", (article_id,))[0][0]
    stored = np.stack([r.vector for r in rows])
    assert np.allclose(np.linalg.norm(stored, axis=1), 1, atol=1e-2)
    own = embedder([text[r.start : r.end] for r in rows])
    # Pooled from the chunk pass (in context), yet each sentence is nearest to its own text.
    similarity = stored @ own.T
    assert (similarity.argmax(axis=1) == np.arange(len(rows))).mean() > 0.9
    store.close()


def test_answer_embeds_nothing_but_the_question(index, embedder):
    counting = CountingEmbedder(embedder)
    pipeline = Pipeline(index, embedder=counting)
    counting.calls.clear()
    answer = pipeline.ask(QUESTION)
    assert not answer.abstained and len(answer.citations) >= 2
    assert counting.calls == [1]


def test_concurrent_questions_give_the_same_answers_as_one_at_a_time(index):
    pipeline = Pipeline(index)
    questions = [QUESTION, "What did Putin tell Erdogan?", "When does the lighthouse committee meet?"] * 8
    expected = {q: pipeline.ask(q).to_dict() for q in set(questions)}
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda q: pipeline.ask(q).to_dict(), questions))
    assert answers == [expected[q] for q in questions]


def test_answers_come_from_the_last_complete_build_while_a_build_runs(index, embedder):
    pipeline = Pipeline(index, embedder=embedder)
    question = "When does the lighthouse committee meet?"
    before = pipeline.ask(question)
    assert before.citations and before.citations[0].title == LIGHTHOUSE
    # The build deletes the lighthouse article (committed first), then embeds a new one.
    (index.corpus_dir / "lighthouse.txt").unlink()
    (index.corpus_dir / "harbour.txt").write_text(article_text("harbour"))
    seen_during = []

    def progress(stage, done, total):
        if stage == "embedding" and done == 0:
            live = IndexStore(index.index_dir)
            assert LIGHTHOUSE not in {a["title"] for a in live.articles()}  # the deletion is committed
            live.close()
            view = pipeline.view
            seen_during.append((pipeline.ask(question).to_dict(), pipeline.store.counts(), view))

    Builder(index, embedder=embedder, progress=progress)()
    assert len(seen_during) == 1
    during, counts, old_view = seen_during[0]
    assert during == before.to_dict()
    assert counts["articles"] == 2
    pipeline.refresh(force=True)  # (its watcher may have loaded the build already)
    assert pipeline.view is not old_view and old_view.retired
    titles = {a["title"] for a in pipeline.store.articles()}
    assert LIGHTHOUSE not in titles and "Harbour plan under review" in titles


class GatedEmbedder:
    """The real embedder; once `armed`, its next call waits until `go` is set."""

    def __init__(self, inner):
        self.inner = inner
        self.armed = False
        self.waiting, self.go = threading.Event(), threading.Event()

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def __call__(self, texts):
        if self.armed:
            self.armed = False
            self.waiting.set()
            assert self.go.wait(120)
        return self.inner(texts)


def test_an_idle_pipeline_lets_a_build_checkpoint_and_an_answer_under_way_keeps_its_snapshot(index, embedder, monkeypatch):
    checkpoints = []
    checkpoint = IndexStore.checkpoint
    monkeypatch.setattr(IndexStore, "checkpoint", lambda self: checkpoints.append(checkpoint(self)) or checkpoints[-1])
    gated = GatedEmbedder(embedder)
    pipeline = Pipeline(index, embedder=gated)
    question = "When does the lighthouse committee meet?"
    before = pipeline.ask(question).to_dict()
    # Idle: the build's checkpoint does not wait for a question to come (it used to
    # wait out SQLite's 30 s busy timeout, then leave the build in the log).
    (index.corpus_dir / "harbour.txt").write_text(article_text("harbour"))
    assert Builder(index, embedder=embedder)().added == 1
    assert checkpoints == [True]
    # Once checkpointed, the idle snapshot is begun again on the same state, reading
    # the database file alone: no reader holds the log, which the next build reuses
    # from its start instead of growing it.
    deadline = time.monotonic() + 60
    while not pipeline.view.renewed and time.monotonic() < deadline:
        time.sleep(0.05)
    probe = sqlite3.connect(index.index_dir / "rag.sqlite", timeout=0)
    assert probe.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0  # 0: not busy
    probe.close()
    assert (index.index_dir / "rag.sqlite-wal").stat().st_size == 0
    (index.corpus_dir / "harbour.txt").unlink()  # back to the state `before` saw
    Builder(index, embedder=embedder)()
    pipeline.refresh(force=True)
    assert pipeline.ask(question).to_dict() == before and checkpoints == [True, True]

    # An answer under way while a build completes finishes on the snapshot it began with.
    (index.corpus_dir / "lighthouse.txt").unlink()
    gated.armed = True
    with ThreadPoolExecutor(2) as pool:
        answer = pool.submit(pipeline.ask, question)
        assert gated.waiting.wait(120)
        old_view = pipeline.view
        build = pool.submit(Builder(index, embedder=embedder))
        while pipeline.view is old_view and not build.done():  # the watcher loads the build
            time.sleep(0.05)
        assert pipeline.view is not old_view and old_view.users == 1
        gated.go.set()
        assert answer.result().to_dict() == before
        assert build.result().removed == 1
    # Its snapshot ended with it, and the build's checkpoint could then complete.
    assert old_view.users == 0 and checkpoints[-1] is True
    assert not pipeline.ask(question).citations or pipeline.ask(question).citations[0].title != LIGHTHOUSE


def test_index_built_with_another_backend_is_read_with_it(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(SAMPLE, corpus / SAMPLE.name)
    Builder(Settings(corpus_dir=corpus, index_dir=tmp_path / "index", backend="torch"))()
    pipeline = Pipeline(Settings(corpus_dir=corpus, index_dir=tmp_path / "index"))
    assert pipeline.embedder.backend == "torch"
    assert not pipeline.ask(QUESTION).abstained


def test_refresh_from_many_threads_loads_once(index, monkeypatch):
    pipeline = Pipeline(index, watch=False)  # its own watcher would be one more thread refreshing
    # Unwatched, this pipeline keeps its old snapshot until refreshed below: the build's
    # checkpoint would wait out the whole CHECKPOINT_WAIT_S (30 s) for it, in vain.
    monkeypatch.setattr(database, "CHECKPOINT_WAIT_S", 0.2)
    (index.corpus_dir / "harbour.txt").write_text(article_text("harbour"))
    Builder(index, embedder=pipeline.embedder)()
    results = []
    threads = [threading.Thread(target=lambda: results.append(pipeline.refresh())) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 5 + [True]
