"""Shared fixtures: the real bundled model (loaded once), small corpora in tmp folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rag.embed import Embedder
from rag.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "corpus" / "putin-condoles-erdogan-2017-02-09.txt"
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    return Embedder()


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium driven by Playwright."""
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
