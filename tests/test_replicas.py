"""Serving replicas: several `rag serve` processes on one index folder, each
picking up new builds; an index copied to read-only media answers."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SAMPLE, article_text, free_port, sample_index, tmpfs, wait_for

from rag import database
from rag.build import Builder
from rag.errors import DATABASE
from rag.pipeline import Pipeline
from rag.settings import Settings
from rag.store import IndexStore

FERRY = "When will the ferry committee review its plan?"


def rag(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], input=stdin, capture_output=True, text=True, timeout=300)


@pytest.fixture
def built(tmp_path, embedder) -> Settings:
    return sample_index(tmp_path, embedder)


def cited_files(answer: dict) -> set[str]:
    return {c["file"] for c in answer["citations"]}


def test_two_servers_share_one_index_and_both_pick_up_a_new_build(built, embedder):
    from gradio_client import Client

    ports = [free_port(), free_port()]
    servers = [
        subprocess.Popen(
            [sys.executable, "-m", "rag.cli", "serve", "--index", str(built.index_dir), "--corpus", str(built.corpus_dir), "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        for port in ports
    ]
    try:
        urls = [f"http://127.0.0.1:{port}/" for port in ports]
        for url, server in zip(urls, servers):
            wait_for(url, server)
        clients = [Client(url, verbose=False, download_files=False) for url in urls]
        assert all("ferry.txt" not in cited_files(c.predict(FERRY, api_name="/ask")) for c in clients)

        (built.corpus_dir / "ferry.txt").write_text(article_text("ferry"))
        assert Builder(built, embedder=embedder)().added == 1  # a build by a third process, the builder
        for client in clients:
            assert "ferry.txt" in cited_files(client.predict(FERRY, api_name="/ask"))
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=30)


@pytest.fixture
def read_only_copy(built, tmp_path):
    """The index copied onto a tmpfs that is then remounted read-only."""
    with tmpfs(tmp_path / "ro", "64m") as disk:
        # What a deployment copies: the folder as the build left it (no -wal, no lock).
        shutil.copytree(built.index_dir, disk / "index", ignore=shutil.ignore_patterns("*-wal", "*-shm", "build.lock"))
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        yield disk / "index"


def test_an_index_on_read_only_media_answers(read_only_copy):
    with pytest.raises(OSError):
        (read_only_copy / "probe").write_text("x")  # it really is read-only
    asked = rag("ask", "--index", str(read_only_copy), "--json", "Why did Russia-Turkey ties sour?")
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert not answer["abstained"] and cited_files(answer) == {SAMPLE.name}
    stats = rag("stats", "--index", str(read_only_copy), "--json")
    assert stats.returncode == 0 and json.loads(stats.stdout)["problems"] == []
    # Building into it is refused with the reason, not a traceback.
    refused = rag("build", "--index", str(read_only_copy), "--corpus", str(Path(SAMPLE).parent), "--quiet")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr and "read-only" in refused.stderr.lower()


def copy_by_hand(index: Path, target: Path) -> Path:
    """The hand-made copy docs/scale.md describes: rag.sqlite, manifest.json, seg-*."""
    target.mkdir()
    for path in index.iterdir():
        if path.name in (DATABASE, "manifest.json") or path.name.startswith("seg-"):
            (shutil.copytree if path.is_dir() else shutil.copy2)(path, target / path.name)
    return target


def read_only_view(folder: Path, monkeypatch) -> IndexStore:
    """The index as a user who cannot write its folder opens it."""
    with monkeypatch.context() as patch:
        patch.setattr(database, "on_read_only_media", lambda folder: True)
        return IndexStore(folder)


@pytest.fixture
def two_articles(built, embedder) -> Settings:
    (built.corpus_dir / "ferry.txt").write_text(article_text("ferry"))
    Builder(built, embedder=embedder)()
    return built


def test_a_copy_made_after_a_build_beside_a_running_pipeline_is_complete(two_articles, embedder, tmp_path, monkeypatch):
    pipeline = Pipeline(two_articles, embedder=embedder)  # as `rag serve` holds it
    assert "ferry.txt" in {c.article_id for c in pipeline.ask(FERRY).citations}
    checkpoints = []
    checkpoint = IndexStore.checkpoint
    monkeypatch.setattr(IndexStore, "checkpoint", lambda self: checkpoints.append(checkpoint(self)) or checkpoints[-1])
    (two_articles.corpus_dir / "ferry.txt").unlink()
    assert Builder(two_articles, embedder=embedder)().removed == 1
    assert checkpoints == [True]  # not left in the write-ahead log for a reader's sake
    for folder in (copy_by_hand(two_articles.index_dir, tmp_path / "copy"), two_articles.index_dir):
        view = read_only_view(folder, monkeypatch)
        assert view.article_paths() == {SAMPLE.name} and view.segment_register.derived_problems() == []


def test_a_stale_copy_is_not_reported_healthy_and_export_replica_is_complete(two_articles, embedder, tmp_path, monkeypatch):
    # A reader that never lets go of its old snapshot (not a Pipeline) keeps the
    # checkpoint from completing: the database file alone stays one build behind.
    holder = sqlite3.connect(two_articles.index_dir / DATABASE, isolation_level=None)
    holder.execute("BEGIN")
    holder.execute("SELECT COUNT(*) FROM articles").fetchone()
    monkeypatch.setattr(database, "CHECKPOINT_WAIT_S", 0.2)
    (two_articles.corpus_dir / "ferry.txt").unlink()
    assert Builder(two_articles, embedder=embedder)().removed == 1
    stale = copy_by_hand(two_articles.index_dir, tmp_path / "by-hand")
    stats = rag("stats", "--index", str(stale))
    assert "older than the index's last build" in stats.stderr and "health:     ok" not in stats.stdout
    assert "older than the index's last build" in rag("ask", "--index", str(stale), FERRY).stderr
    # A user who cannot write the live folder reads its log too, and is current.
    assert read_only_view(two_articles.index_dir, monkeypatch).article_paths() == {SAMPLE.name}

    exported = rag("export-replica", "--index", str(two_articles.index_dir), str(tmp_path / "replica"))
    assert exported.returncode == 0, exported.stderr
    replica = tmp_path / "replica"
    assert sorted(p.name for p in replica.iterdir() if not p.name.startswith("seg-")) == sorted([DATABASE, "manifest.json"])
    view = read_only_view(replica, monkeypatch)
    assert view.immutable and view.article_paths() == {SAMPLE.name} and view.segment_register.derived_problems() == []
    stats = rag("stats", "--index", str(replica), "--check")
    assert "health:     ok" in stats.stdout, stats.stdout + stats.stderr
    asked = json.loads(rag("ask", "--index", str(replica), "--json", FERRY).stdout)
    assert "ferry.txt" not in cited_files(asked)
    holder.close()
    refused = rag("export-replica", "--index", str(two_articles.index_dir), str(replica))
    assert refused.returncode == 2 and "not an empty folder" in refused.stderr
