"""The app's API endpoints for gradio_client: /ask, /stats, /articles, /rebuild.

The docstrings of `ApiHandlers`' public methods are the endpoints' descriptions on
the app's "Use via API" page, and their type hints its parameter types.
"""

from __future__ import annotations

from rag import validate
from rag.answer import Turn
from rag.pipeline import Pipeline
from rag.settings import DEFAULT_K, Settings
from ui import inputs
from ui.control import IndexControl, matching


def as_api_article(article: dict) -> dict:
    """An article as /articles returns it: its `path` is called `file`, because
    gradio_client (with its default download_files=True) takes any dict with a
    `path` key for a file to download, and fails."""
    return {("file" if key == "path" else key): value for key, value in article.items()}


class ApiHandlers:
    """The API endpoints: the same pipeline, index control and article filter as the UI."""

    def __init__(self, settings: Settings, pipeline: Pipeline, control: IndexControl):
        self.settings = settings
        self.pipeline = pipeline
        self.control = control

    def ask(
        self,
        question: str,
        k: int = DEFAULT_K,
        sources: list[str] | None = None,
        date_from: str = "",
        date_to: str = "",
        history: list[list[str]] | None = None,
        llm: bool = False,
    ) -> dict:
        """Answer a question. Returns the `rag ask --json` object: question, answer,
        abstained, citations, passages. `sources` is a list of outlet names (None: all
        outlets); dates are YYYY-MM-DD. `history` is [[question, answer], ...] of
        earlier turns, for follow-up questions. `llm=True` asks the LLM server set by
        RAG_LLM_BASE_URL (citations verified; extractive answer if it fails)."""
        question = inputs.checked(validate.question, question)
        k = inputs.checked(validate.k, k, self.settings.max_k)
        filters = inputs.filters(sources, date_from, date_to)
        self.pipeline.refresh()
        turns = [Turn(q, a) for q, a in inputs.checked(validate.history, history)]
        llm = inputs.checked(validate.flag, llm, "llm")
        return self.pipeline.ask(question, history=turns, k=k, filters=filters, llm=llm).to_dict()

    def stats(self) -> dict:
        """Index statistics: articles, chunks, sentences, outlets, model, size, last build."""
        self.pipeline.refresh(force=True)
        return self.control.stats()

    def articles(self, query: str = "") -> list[dict]:
        """Indexed articles (id, file, title, source, published, url, author, category,
        chunks), filtered by words in title, outlet, date, file, url, author or category."""
        self.pipeline.refresh(force=True)
        return [as_api_article(a) for a in matching(self.control.articles(), query)]

    def rebuild(self) -> dict:
        """Incremental build of the corpus folder, then reload: the build report."""
        return self.control.rebuild()
