"""A build killed with SIGKILL at any moment leaves a loadable, consistent index,
and the next build completes it without duplicates."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rag.store import IndexStore

from conftest import article_text
from test_build import assert_consistent

TOPICS = [f"topic{i:02d} {word}" for i, word in enumerate(["rail", "wheat", "ports", "power", "water", "roads"] * 5)]


def start_build(corpus: Path, index: Path, *extra: str) -> subprocess.Popen:
    # Small groups: many commits, so kills land between and inside transactions.
    env = {**os.environ, "RAG_EMBED_GROUP": "4", "RAG_BATCH_SIZE": "4"}
    return subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "build", "--corpus", str(corpus), "--index", str(index), "--quiet", *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def timed_build(corpus: Path, index: Path, *extra: str) -> float:
    started = time.monotonic()
    process = start_build(corpus, index, *extra)
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err.decode()
    return time.monotonic() - started


def kill_after(corpus: Path, index: Path, seconds: float, *extra: str) -> None:
    process = start_build(corpus, index, *extra)
    time.sleep(seconds)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)


def contents(index: Path) -> list[tuple[str, str]]:
    store = IndexStore(index)
    rows = store.db.execute("SELECT article_id, text FROM chunks ORDER BY article_id, position").fetchall()
    store.close()
    return [tuple(r) for r in rows]


@pytest.fixture
def many(tmp_path: Path) -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for topic in TOPICS:
        (corpus / f"{topic.replace(' ', '-')}.txt").write_text(article_text(topic, n=12))
    return corpus


def test_killed_builds_resume_to_the_same_index(tmp_path, many):
    reference = tmp_path / "reference"
    seconds = timed_build(many, reference)
    expected = contents(reference)
    assert len({a for a, _ in expected}) == len(TOPICS)

    index = tmp_path / "index"
    seen = []
    for fraction in (0.3, 0.55, 0.75, 0.9):
        kill_after(many, index, seconds * fraction)
        if (index / "rag.sqlite").exists():
            store = assert_consistent(index)
            seen.append(store.counts()["articles"])
            store.close()
    assert any(0 < n < len(TOPICS) for n in seen), seen  # some kill did land mid-build
    timed_build(many, index)
    assert_consistent(index).close()
    assert contents(index) == expected  # nothing lost, nothing twice


def test_killed_full_rebuild_leaves_old_or_new(tmp_path, many):
    index = tmp_path / "index"
    timed_build(many, index)
    for path in sorted(many.iterdir())[:10]:
        path.unlink()
    full_seconds = timed_build(many, tmp_path / "timing", "--full")
    for fraction in (0.5, 0.85):
        kill_after(many, index, full_seconds * fraction, "--full")
        store = assert_consistent(index)
        articles = store.counts()["articles"]
        store.close()
        assert articles in (len(TOPICS), len(TOPICS) - 10)
    timed_build(many, index)
    assert IndexStore(index).counts()["articles"] == len(TOPICS) - 10
