"""Everything answering needs, loaded once: index, model, retriever, answerer.

The CLI, the evaluation and the UI all ask through a `Pipeline`, so they run the
same code path. It picks up a rebuilt index as soon as a build has completed
(`refresh`), and until then keeps answering from what it loaded.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

from rag.answer import Answer, Answerer, Turn
from rag.build import comparable_manifest
from rag.embed import Embedder
from rag.llm import LlmAnswerer
from rag.retrieve import Filters, Retriever
from rag.settings import Settings
from rag.store import IndexStore


class Pipeline:
    def __init__(self, settings: Settings, embedder: Embedder | None = None):
        self.settings = settings
        self._lock = threading.Lock()
        self.store = self._open()
        self.embedder = embedder or Embedder(settings.model, device=settings.device, batch_size=settings.batch_size)
        self._load()

    def _open(self) -> IndexStore:
        store = IndexStore(self.settings.index_dir)
        store.check(comparable_manifest(self.settings))
        return store

    def _load(self) -> None:
        self.version = self.store.meta("last_build")
        self.retriever = Retriever(self.store, self.embedder)
        self.answerer = Answerer(self.store, self.embedder, self.retriever)
        self.llm = LlmAnswerer(self.settings, self.answerer)
        self.llm.lock = self._lock
        # Load the FAISS and BM25 files now rather than on the first question.
        _ = self.store.vectors, self.store.lexical

    def refresh(self) -> bool:
        """Reload if a build has completed since the index was loaded; True if it did."""
        with self._lock:
            probe = IndexStore(self.settings.index_dir)
            try:
                if probe.meta("last_build") == self.version:
                    return False
            finally:
                probe.close()
            # The old store is not closed here: a thread may still be reading from
            # it; its connection closes when the last reference goes.
            self.store = self._open()
            self._load()
            return True

    def ask(
        self,
        question: str,
        history: Sequence[Turn] = (),
        k: int = 10,
        filters: Filters | None = None,
        llm: bool = False,
    ) -> Answer:
        """The extractive answer, or with `llm=True` a generated one whose
        citations are verified (falling back to extractive if the server fails)."""
        if llm:
            return self.llm(question, history=history, k=k, filters=filters)
        with self._lock:
            return self.answerer(question, history=history, k=k, filters=filters)

    def stream(
        self, question: str, history: Sequence[Turn] = (), k: int = 10, filters: Filters | None = None
    ) -> Iterator[str | Answer]:
        """LLM answer as it is generated (text pieces), then the verified Answer."""
        yield from self.llm.stream(question, history=history, k=k, filters=filters)
