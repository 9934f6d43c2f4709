"""Shared fixtures (the real bundled model loaded once, small corpora in tmp folders,
a headless browser) and the plain helpers test modules import with `from conftest import ...`."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import httpx
import pytest
from filelock import FileLock

from rag.embed import Embedder
from rag.settings import Settings
from rag.store import IndexStore

# Gradio (test_ui, test_serve, test_llm's browser test) must not phone home.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# Gradio's upload cache, one per test process (set before Gradio is imported, which reads it
# once): with `pytest -n 2` (scripts/test.sh) another worker's uploads must not show up in a
# test that looks at what its own app stored (test_serve.py).
os.environ["GRADIO_TEMP_DIR"] = _GRADIO_TEMP = tempfile.mkdtemp(prefix="rag-tests-gradio-")
atexit.register(shutil.rmtree, _GRADIO_TEMP, ignore_errors=True)

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "corpus" / "putin-condoles-erdogan-2017-02-09.txt"
SHARED_DATA = ROOT.parent / "shared" / "data"


# The longest test files (30 s or more of `--durations` in a run of `pytest -n 2` on two shared
# cores), longest first. Under `pytest -n` (scripts/test.sh gives each process whole files)
# they are handed out first, so that no process is left alone with a long file at the end.
LONG_FILES = (
    "test_damage.py", "test_ui.py", "test_crash.py", "test_ray.py", "test_serve.py",
    "test_replicas.py", "test_cli.py", "test_openai_api.py", "test_embed.py", "test_build.py",
    "test_dense_head.py", "test_watch.py",
)  # fmt: skip


def pytest_collection_modifyitems(config, items):
    """In an xdist worker: the LONG_FILES first, each file's tests in their order (a stable
    sort, the same in every worker, as xdist requires). A plain run keeps the files' order."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        rank = {name: i for i, name in enumerate(LONG_FILES)}
        items.sort(key=lambda item: rank.get(item.path.name, len(LONG_FILES)))


@pytest.fixture(scope="session")
def embedder(tmp_path_factory) -> Embedder:
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return Embedder()
    # The test processes of `pytest -n` start together: where the model was never exported to
    # ONNX (a fresh venv: the cache key has the model files' times), one exports it (~25 s of
    # CPU) while the others wait, then read its export.
    with FileLock(tmp_path_factory.getbasetemp().parent / "embedder.lock"):
        return Embedder()


CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = 120_000  # how long a page may take to show something: two shared CPU cores, be patient
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium driven by Playwright. Per module, not per session: while
    Playwright's sync API runs, its event loop blocks `asyncio.run` (test_guard.py)."""
    playwright = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} missing (apt-get install chromium)")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A corpus folder holding the sample article."""
    folder = tmp_path / "corpus"
    folder.mkdir()
    shutil.copy(SAMPLE, folder / SAMPLE.name)
    return folder


@pytest.fixture
def settings(tmp_path: Path, corpus: Path) -> Settings:
    return Settings(corpus_dir=corpus, index_dir=tmp_path / "index")


def article_text(topic: str, n: int = 6) -> str:
    """A small plain-text article about `topic` with a title line and n sentences."""
    sentences = [
        f"The {topic} committee met on Monday to discuss item number {i} of its agenda."
        f" Officials said the {topic} plan would be reviewed again next week."
        for i in range(n)
    ]
    return f"{topic.title()} plan under review\n\n" + "\n\n".join(sentences) + "\n"


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def faiss_ids(store: IndexStore) -> list[int]:
    """Live chunk ids in the segments, in order (a chunk in two segments would show twice)."""
    return store.segments.ids().tolist()


def assert_consistent(index_dir) -> IndexStore:
    """FAISS ids == chunk ids, and every article fully present (contiguous chunks and sentences)."""
    store = IndexStore(index_dir)
    assert faiss_ids(store) == store.chunk_ids()
    for (aid,) in store.db.execute("SELECT id FROM articles").fetchall():
        chunks = [r[0] for r in store.db.execute("SELECT position FROM chunks WHERE article_id=? ORDER BY position", (aid,))]
        sentences = [r[0] for r in store.db.execute("SELECT position FROM sentences WHERE article_id=? ORDER BY position", (aid,))]
        assert chunks == list(range(len(chunks))) and chunks, aid
        assert sentences == list(range(len(sentences))) and sentences, aid
    return store


def wait_for(url: str, process: subprocess.Popen | None = None, timeout: float = 180) -> None:
    """Until the server at `url` answers (or `process` exits: its stderr is the failure)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"rag serve exited: {process.stderr.read().decode()}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer")


def sample_index(root: Path, embedder: Embedder) -> Settings:
    """A corpus folder with the sample article under `root`, built into `root`/index."""
    from rag.build import Builder

    corpus = root / "corpus"
    corpus.mkdir()
    shutil.copy(SAMPLE, corpus / SAMPLE.name)
    settings = Settings(corpus_dir=corpus, index_dir=root / "index")
    Builder(settings, embedder=embedder)()
    return settings


@contextlib.contextmanager
def tmpfs(folder: Path, size: str):
    """A tmpfs of `size` (e.g. "4m") mounted on `folder` for the block: a real small
    or read-only disk (needs root and permission to mount, else the test is skipped)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("mount"):
        pytest.skip("mounting a tmpfs needs root")
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)
