"""Everything answering needs, loaded once: index, model, retriever, answerer.

The CLI, the evaluation and the UI all ask through a `Pipeline`, so they run the
same code path. Questions run in parallel, from any number of threads: the
embedder, the store and the indexes are safe to share, and nothing holds a lock
for the length of an answer.

Each loaded index is a snapshot (`IndexView`): its SQLite connection stays in one
read transaction, so an answer sees the index as the last completed build left
it, never a build in progress. A snapshot is kept only while it is the last
completed build: a watcher thread looks for a newer one every `WATCH_INTERVAL`
seconds and loads it, and the old snapshot's transaction ends as soon as no
answer is using it. A build's final checkpoint, which must wait for readers of
older snapshots (rag/database.py `Database.checkpoint`), therefore waits about
that long, not until the next question comes.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date

from rag import timeframe
from rag.answer import Answer, Answerer, Turn
from rag.embed import Embedder
from rag.followup import is_follow_up
from rag.llm import LlmAnswerer
from rag.manifest import Manifest
from rag.retrieve import Filters, Retriever
from rag.segment import SegmentSet
from rag.settings import DEFAULT_K, Settings
from rag.store import IndexStore

log = logging.getLogger(__name__)

REFRESH_INTERVAL = 1.0
"""Seconds between two looks for a newer build before a question (see `Pipeline.refresh`)."""
WATCH_INTERVAL = 0.5
"""Seconds between two looks of the watcher thread: how long a completed build's
checkpoint waits for an idle Pipeline to let go of the older snapshot."""


@dataclass
class IndexView:
    """One loaded index state and the components that read it."""

    store: IndexStore
    segments: SegmentSet
    """Its searchable segments, loaded with it (`IndexStore.segments`)."""
    retriever: Retriever
    answerer: Answerer
    llm: LlmAnswerer
    built_at: str | None
    """`last_build` of the snapshot: when the build it shows completed."""
    dates: tuple[str, str] = ("", "")
    """Days of its oldest and newest dated article ('' when none has a date)."""
    users: int = 0
    """Answers reading it now."""
    retired: bool = False
    """A newer build is loaded: the snapshot ends when its last answer does."""
    renewed: bool = False
    """Its transaction was begun again after the build's checkpoint (`renew`)."""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @contextmanager
    def in_use(self) -> Iterator[IndexView]:
        with self.lock:
            self.users += 1
        try:
            yield self
        finally:
            with self.lock:
                self.users -= 1
                done = self.retired and self.users == 0
            if done:
                self.store.release()

    def renew(self) -> None:
        """Once the build it shows is checkpointed (manifest.json is written after),
        begin its transaction again on the same state while no answer reads it:
        the old one, begun before the checkpoint, kept the write-ahead log in use,
        so each build made it longer."""
        if self.renewed or self.retired or self.users or self.store.recorded_build() != self.built_at:
            return
        with self.lock:  # answers wait the moment it takes
            if not (self.users or self.retired):
                self.renewed = self.store.renew()

    def retire(self) -> None:
        """End the snapshot now if no answer reads it, else when the last one ends."""
        with self.lock:
            self.retired = True
            done = self.users == 0
        if done:
            self.store.release()


class Pipeline:
    def __init__(self, settings: Settings, embedder: Embedder | None = None, watch: bool = True):
        """Questions are embedded as the index's chunks were: with the backend its
        manifest names (`rag build --backend`), whatever the settings say.
        `watch`: load completed builds in a background thread (see the module)."""
        self.settings = settings = _as_built(settings)
        self._refresh_lock = threading.Lock()
        self._checked = 0.0
        self.embedder = embedder or Embedder(settings.model, **settings.embedder_options())
        self.view = self._load()
        self._stop = threading.Event()
        if watch and not self.view.store.immutable:  # an immutable file never changes
            threading.Thread(target=_watch, args=(weakref.ref(self), self._stop), name="rag-index-watch", daemon=True).start()

    def close(self) -> None:
        """Stop watching and end the snapshot (once answers in flight finish)."""
        self._stop.set()
        self.view.retire()

    def _load(self) -> IndexView:
        """Open a snapshot of the index and the components reading it."""
        store = IndexStore(self.settings.index_dir, snapshot=True)
        try:
            store.check(Manifest.from_settings(self.settings))
            retriever = Retriever(store, self.embedder)
            answerer = Answerer(store, self.embedder, retriever)
            segments = store.segments  # loaded now rather than on the first question
            llm = LlmAnswerer(self.settings, answerer)
            return IndexView(
                store, segments, retriever, answerer, llm, store.meta("last_build"), store.published_days()
            )
        except BaseException:
            store.close()
            raise

    # The components of the current snapshot, for callers that read the index directly.
    @property
    def store(self) -> IndexStore:
        return self.view.store

    @property
    def retriever(self) -> Retriever:
        return self.view.retriever

    @property
    def answerer(self) -> Answerer:
        return self.view.answerer

    @property
    def llm(self) -> LlmAnswerer:
        return self.view.llm

    def refresh(self, force: bool = False) -> bool:
        """Load a newer snapshot if a build has completed since; True if it did.

        Looks at most every `REFRESH_INTERVAL` seconds unless `force`d: the UI calls
        this before every question, and 50 people asking at once need not open the
        database 50 times to learn nothing changed."""
        now = time.monotonic()
        if not force and now - self._checked < REFRESH_INTERVAL:
            return False
        with self._refresh_lock:
            self._checked = now
            if self.is_current():
                return False
            old, self.view = self.view, self._load()
            old.retire()  # answers under way finish on it; then its transaction ends
            log.info("loaded the build of %s completed at %s", self.settings.index_dir, self.view.built_at)
            return True

    def is_current(self) -> bool:
        """True when the loaded snapshot is the last completed build."""
        probe = IndexStore(self.settings.index_dir)
        try:
            return probe.meta("last_build") == self.view.built_at
        finally:
            probe.close()

    @contextmanager
    def _snapshot(self) -> Iterator[IndexView]:
        """The current view, kept open for the caller's whole answer."""
        while True:
            view = self.view
            with view.in_use():
                if not view.retired:  # else a refresh retired it just now: take the new one
                    yield view
                    return

    def ask(
        self,
        question: str,
        history: Sequence[Turn] = (),
        k: int = DEFAULT_K,
        filters: Filters | None = None,
        llm: bool = False,
    ) -> Answer:
        """The extractive answer, or with `llm=True` a generated one whose
        citations are verified (falling back to extractive if the server fails)."""
        with self._snapshot() as view:  # one snapshot for the whole answer
            frame = self.time_asked(question, history, filters, view)
            filters = with_time(filters, frame)
            if llm:
                answer = view.llm(question, history=history, k=k, filters=filters)
            else:
                answer = view.answerer(question, history=history, k=k, filters=filters)
        return replace(answer, searched=frame.describe()) if frame else answer

    def stream(
        self, question: str, history: Sequence[Turn] = (), k: int = DEFAULT_K, filters: Filters | None = None
    ) -> Iterator[str | Answer]:
        """LLM answer as it is generated (text pieces), then the verified Answer."""
        with self._snapshot() as view:
            frame = self.time_asked(question, history, filters, view)
            for piece in view.llm.stream(question, history=history, k=k, filters=with_time(filters, frame)):
                yield replace(piece, searched=frame.describe()) if frame and isinstance(piece, Answer) else piece

    def time_asked(
        self,
        question: str,
        history: Sequence[Turn] = (),
        filters: Filters | None = None,
        view: IndexView | None = None,
    ) -> timeframe.Timeframe | None:
        """The time the question asks about (rag/timeframe.py); a follow-up keeps
        the one of the question it follows. Relative words count from the newest
        article's day, or from today (setting `time_reference`). Dates set in
        `filters` (`--from`, `--to`) win over the question's."""
        view = view or self.view
        newest = view.dates[1]
        if not newest:  # no article has a date (e.g. encyclopedia paragraphs): a year in the question is a fact's
            return None
        reference = date.fromisoformat(newest) if newest and self.settings.time_reference == "newest" else date.today()
        # An outlet's name is not a time: "Business Today | Latest Stock Market News".
        text = question
        sources = view.retriever.mentioned_sources(question)
        for source in sources:
            text = re.sub(re.escape(source), " ", text, flags=re.I)
        frame = timeframe.timeframe(text, reference)
        if frame and timeframe.of_one_report(frame, text, len(sources)):
            frame = None  # a day it names is still lifted (rag/retrieve.py)
        asked = question
        for turn in reversed(history):
            if frame or not is_follow_up(asked):
                break
            frame = timeframe.timeframe(turn.question, reference)
            asked = turn.question  # a follow-up of a follow-up looks further back
        if frame and filters and (filters.date_from or filters.date_to):
            frame = replace(frame, date_from="", date_to="") if frame.recent else None
        if frame and frame.recent and not frame.date_from:
            # "The latest on X": the week up to the newest article the question finds.
            found = view.retriever(question, filters=with_time(filters, frame))
            frame = timeframe.latest(frame, max((hit.published for hit in found), default=""))
        return timeframe.within(frame, *view.dates) if frame else None


def with_time(filters: Filters | None, frame: timeframe.Timeframe | None) -> Filters | None:
    """`filters` with the question's dates and newest-first wish; dates the caller
    set (`--from`, `--to`) win over those in the question."""
    if not frame:
        return filters
    filters = filters or Filters()
    if filters.date_from or filters.date_to or frame.outside:
        return replace(filters, newest_first=frame.recent)
    return replace(filters, date_from=frame.date_from, date_to=frame.date_to, newest_first=frame.recent)


def _watch(pipeline: weakref.ref, stop: threading.Event) -> None:
    """Load each completed build soon after it completes (see the module); ends
    with the Pipeline, or its `close`."""
    while not stop.wait(WATCH_INTERVAL):
        current = pipeline()
        if current is None:
            return
        try:
            current.refresh(force=True)
            current.view.renew()
        except Exception as err:  # the index replaced or damaged meanwhile: the next question says so
            log.debug("watching %s: %s", current.settings.index_dir, err)
        del current


def _as_built(settings: Settings) -> Settings:
    """`settings` with the backend and sentence-vector method the index was built with."""
    store = IndexStore(settings.index_dir)
    try:
        built = Manifest.from_record(store.manifest or {})
    finally:
        store.close()
    return replace(settings, **{key: getattr(built, key) for key in ("backend", "sentence_vectors") if getattr(built, key)})
