"""A build killed with SIGKILL at any moment leaves a loadable, consistent index,
and the next build completes it without duplicates."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import article_text, assert_consistent

from rag.store import IndexStore

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


def stored_articles(index: Path) -> int:
    """Articles committed so far, read as a separate process would (read-only)."""
    try:
        db = sqlite3.connect(f"file:{index / 'rag.sqlite'}?mode=ro", uri=True, timeout=1)
        try:
            return db.execute("SELECT COUNT(*) FROM articles").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return 0


def kill_when_stored(corpus: Path, index: Path, at_least: int) -> None:
    """SIGKILL the build as soon as `at_least` articles are committed: mid-build, whatever the machine's speed."""
    process = start_build(corpus, index)
    deadline = time.monotonic() + 600
    while process.poll() is None and time.monotonic() < deadline:
        if stored_articles(index) >= at_least:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
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
    kill_after(many, index, seconds * 0.2)  # during start-up, maybe before anything is written
    seen = []
    for at_least in (1, 8, 15, 22):  # between and inside the per-group transactions
        kill_when_stored(many, index, at_least)
        store = assert_consistent(index)
        seen.append(store.counts()["articles"])
        store.close()
    assert all(0 < n < len(TOPICS) for n in seen), seen  # the kills did land mid-build
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


def children(pid: int) -> list[int]:
    """Processes whose parent is `pid` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its parent's wait is missing


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads the process table from /proc (Linux)")
def test_chunking_workers_exit_when_the_build_is_killed(tmp_path):
    from rag.build import PARALLEL_CHUNKING_MIN

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i in range(PARALLEL_CHUNKING_MIN * 8):  # chunked in parallel, for seconds
        (corpus / f"a{i:04d}.txt").write_text(article_text(f"topic{i} harbour", n=12))
    index = tmp_path / "index"
    env = {**os.environ, "RAG_CHUNK_WORKERS": "2"}
    command = [sys.executable, "-m", "rag.cli", "build", "--corpus", str(corpus), "--index", str(index), "--quiet"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 300
        while process.poll() is None and time.monotonic() < deadline and len(workers) < 2:
            workers = [pid for pid in children(process.pid) if b"spawn_main" in cmdline(pid)]
            time.sleep(0.05)
        assert len(workers) >= 2, process.stderr.read().decode() if process.poll() is not None else "no workers"
        time.sleep(1.5)  # into their work
        everything = children(process.pid)  # the workers and multiprocessing's resource tracker
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        assert stored_articles(index) == 0  # killed while chunking, before any article was written
        deadline = time.monotonic() + 10
        while any(alive(pid) for pid in everything) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in everything if alive(pid)]
    finally:
        for pid in workers:  # never leave them behind, even when the test fails
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
