"""The loaded index as the UI and the API read it, and the one way they change it.

`IndexControl` reads through the pipeline's current store and rebuilds the index
one change at a time, while questions keep being answered from the loaded one.
`matching` is the article filter of both the Articles tab and the /articles API,
so the two always list the same articles for the same words.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable
from typing import Any

import gradio as gr

from rag.build import STAGES, BuildBusy, Builder
from rag.errors import StoreError, explained
from rag.pipeline import Pipeline
from rag.settings import Settings

SEARCHED_FIELDS = ("title", "source", "published", "path", "url", "author", "category")
"""What the article filter searches: every field a person may remember an article
by (title, outlet, date, file, url, author, category), not its id or chunk count."""

CHANGES_OFF = (
    "Index changes are disabled: this server listens on a public address without a password. "
    "Restart it with a password (RAG_AUTH or --auth-file) to enable uploads and rebuilds."
)

ProgressCallback = Callable[..., Any]
"""Called as a gr.Progress is: progress((done, total), desc=..., unit=...)."""


def matching(articles: Iterable[dict], query: str) -> list[dict]:
    """The articles in which every word of `query` appears, ignoring case, in one of
    their SEARCHED_FIELDS; all of them for a blank query."""
    words = (query or "").lower().split()
    found = []
    for article in articles:
        # Joined by spaces, which no word holds: a word is never found across two fields.
        text = " ".join(str(article.get(field) or "") for field in SEARCHED_FIELDS).lower()
        if all(word in text for word in words):
            found.append(article)
    return found


class IndexControl:
    """What the Articles tab and the API do to the corpus and the index: one change
    at a time, while questions keep being answered from the loaded index."""

    def __init__(self, settings: Settings, pipeline: Pipeline, allow_changes: bool):
        self.settings = settings
        self.pipeline = pipeline
        self.allow_changes = allow_changes
        self.lock = threading.Lock()

    def check_allowed(self) -> None:
        """Raise the gr.Error shown to the user when index changes are off."""
        if not self.allow_changes:
            raise gr.Error(CHANGES_OFF)

    # -------------------------------------------------------------- reading

    def _store_call(self, method: str, *args: Any) -> Any:
        """Call a reading method of the pipeline's store; a refresh may swap the
        store (and close the old one) at any moment, so retry once on the new one."""
        for attempt in range(2):
            try:
                return getattr(self.pipeline.store, method)(*args)
            except sqlite3.ProgrammingError:
                if attempt:
                    raise
        return None

    def article(self, article_id: str) -> dict | None:
        """All stored fields of one article, or None when it is not indexed."""
        return self._store_call("article", article_id)

    def article_text(self, article_id: str) -> str | None:
        """The full text of one article, or None when it is not indexed."""
        row = self.article(article_id)
        return row["text"] if row else None

    def articles(self) -> list[dict]:
        """Every indexed article's metadata, newest first."""
        return self._store_call("articles")

    def outlets(self) -> list[str]:
        """The outlets of the loaded index."""
        return list(self.pipeline.retriever.sources)

    def stats(self) -> dict:
        """The index statistics of /stats: counts, model, size, outlets, folders."""
        return {
            **self._store_call("stats"),
            "outlets": self.outlets(),
            "corpus_dir": str(self.settings.corpus_dir),
            "index_dir": str(self.settings.index_dir),
            "changes_allowed": self.allow_changes,
        }

    # -------------------------------------------------------------- changing

    def rebuild(self, progress: ProgressCallback | None = None) -> dict:
        """Incremental build, then load the new index. Returns the build report as a dict."""
        self.check_allowed()
        if not self.lock.acquire(blocking=False):
            raise gr.Error("A rebuild is already running; wait for it to finish.")
        try:

            def report_progress(stage: str, done: int, total: int) -> None:
                if progress is not None and total:
                    label, unit = STAGES[stage]
                    progress((done, total), desc=label, unit=unit)

            try:
                # The pipeline's embedder is safe to share: questions asked during the
                # rebuild are answered from the loaded index meanwhile.
                with explained(self.settings.index_dir):  # a full disk, a damaged database
                    report = Builder(self.settings, embedder=self.pipeline.embedder, progress=report_progress)()
            except BuildBusy as err:
                raise gr.Error(str(err)) from None
            except StoreError as err:
                raise gr.Error(str(err)) from None
            # A question asked meanwhile may have loaded the new index already.
            self.pipeline.refresh(force=True)
            return {
                "added": report.added,
                "updated": report.updated,
                "removed": report.removed,
                "unchanged": report.unchanged,
                "skipped": [{"file": s.path, "reason": s.reason} for s in report.skipped],
                "chunks_embedded": report.chunks_embedded,
                "chunks_total": report.chunks_total,
                "seconds": round(report.seconds, 2),
                "summary": report.summary(),
                "reloaded": self.pipeline.is_current(),
            }
        finally:
            self.lock.release()
