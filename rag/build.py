"""Incremental, crash-safe index build: corpus/ -> index/.

Only new or changed files are parsed (a file is unchanged when its size and
modification time, or failing that its SHA-256, match the last build), and only
articles whose content hash changed are embedded. Work is committed one group of
articles at a time, each article with all its rows in the same transaction, so
a killed build keeps what it finished and the next build does the rest.
`full=True` re-embeds everything inside one transaction: old index or new.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import time
from collections.abc import Callable
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout

from rag.chunk import Chunk, Chunker, Sentence, chunk_articles
from rag.database import proven_ours
from rag.embed import Embedder, auto_backend
from rag.errors import DATABASE, IndexDamaged, NotAnIndex, damaged
from rag.ingest import Article, Skipped, list_corpus, parse, read_bytes
from rag.manifest import Manifest
from rag.settings import Settings
from rag.store import IndexStore

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
"""progress(stage, done, total) for each stage of `STAGES`, in that order."""

STAGES = {
    "reading": ("reading files", "files"),
    "chunking": ("splitting into chunks", "articles"),
    "embedding": ("embedding chunks", "chunks"),
    "indexing": ("writing the search index", "chunks"),
}
"""A build's stages: how to name each and what it counts, for progress bars."""

PARALLEL_CHUNKING_MIN = 200
"""Articles from which chunking runs in one process per core (with `--ray`, in
tasks on the cluster): starting the processes costs about a second, ~300
articles' chunking."""


class BuildBusy(Exception):
    """Another build holds the index lock."""


@dataclass
class BuildReport:
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    chunks_embedded: int = 0
    chunks_total: int = 0
    seconds: float = 0.0
    repaired: list[str] = field(default_factory=list)
    """Damaged segments (FAISS, BM25 files) written anew from the database."""
    notes: list[str] = field(default_factory=list)
    """Files read with a large share left out as boilerplate (`Article.dropped_note`)."""

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    def summary(self) -> str:
        return (
            f"articles: {self.added} added, {self.updated} updated, {self.removed} removed, "
            f"{self.unchanged} unchanged, {len(self.skipped)} skipped; "
            f"chunks: {self.chunks_embedded} embedded, {self.chunks_total} in index; "
            f"{self.seconds:.1f} s"
            + (f"; repaired {', '.join(self.repaired)} (damaged)" if self.repaired else "")
            + (f"; {len(self.notes)} file(s) partly left out as boilerplate (see notes)" if self.notes else "")
        )


@dataclass
class _Pending:
    article: Article
    replaces: bool
    sentences: list[Sentence] = field(default_factory=list)
    chunks: list[Chunk] = field(default_factory=list)


@dataclass
class Reading:
    """What a build found in the corpus folder: the input of `plan`."""

    order: dict[str, int]
    """Every file path in the corpus now -> its place in corpus order (the first
    file that holds an article id owns it; later copies are duplicates)."""
    parsed: list[tuple[str, list[Article]]] = field(default_factory=list)
    """New and changed files, in corpus order, with their articles."""
    file_rows: dict[str, tuple[int, int, str]] = field(default_factory=dict)
    """(size, mtime_ns, sha256) of files read this time, to record if all went well."""
    unchanged: set[str] = field(default_factory=set)
    """Files as recorded: not parsed, their articles are as indexed."""
    keep_indexed: set[str] = field(default_factory=set)
    """Files that could not be read this time: their indexed articles stay."""
    skipped: list[Skipped] = field(default_factory=list)


@dataclass
class Plan:
    """What a build does to the index, worked out by `plan` from a `Reading`."""

    pending: list[_Pending]
    """Articles to embed."""
    removed: list[str]
    """Ids of indexed articles that are in the corpus no more. Those of a file that
    gave none this time stay: it could not be read, or it now yields no article
    (more likely broken than emptied on purpose)."""
    file_rows: dict[str, tuple[int, int, str]]
    """Files to record as read: next build skips them while unchanged."""
    forget: set[str]
    """Recorded files whose record goes: they must be read again next build."""
    skipped: list[Skipped]
    added: int = 0
    updated: int = 0
    unchanged: int = 0


def plan(reading: Reading, stored: dict[str, tuple[str, str]], indexed: int) -> Plan:
    """Which articles to embed, replace and remove so that the index holds what a
    clean build of the corpus would: each article id from the first file (in
    corpus order) that holds it. `stored` is the index's (path, hash) of every
    article of the files read or gone and of every id read; `indexed` the number
    of articles in the index. Pure: no file or database is touched.

    Invariant that lets unchanged files go unread: a file is recorded only when
    all its articles are in the index from it. A file with a duplicate id, or
    whose article another file took over, is not recorded and is read again
    next build, so that it takes the id back once its twin is gone."""
    order, unchanged = reading.order, reading.unchanged
    skipped = list(reading.skipped)
    file_rows = dict(reading.file_rows)
    keep_indexed = set(reading.keep_indexed)
    forget: set[str] = set()
    by_path: dict[str, list[str]] = {}
    for aid, (path, _) in stored.items():
        by_path.setdefault(path, []).append(aid)
    # Articles in files not read are as indexed: all but those looked up from files read or gone.
    result = Plan([], [], file_rows, forget, skipped)
    result.unchanged = indexed - sum(len(ids) for path, ids in by_path.items() if path not in unchanged)

    owner: dict[str, str] = {}
    for rel, articles in reading.parsed:
        if not articles and by_path.get(rel):
            # A file that used to hold articles and now yields none is more
            # likely broken than emptied on purpose: keep what was indexed.
            keep_indexed.add(rel)
            continue
        for article in articles:
            holder, previous_hash = stored.get(article.id, ("", None))
            first = owner.get(article.id)
            if first is None and holder in unchanged and order[holder] < order[rel]:
                first = holder  # an unchanged file earlier in the corpus holds it
            if first is not None:
                skipped.append(Skipped(rel, f"duplicate article id {article.id!r} (also in {first})"))
                file_rows.pop(rel, None)  # read again next build: the twin may go
                continue
            owner[article.id] = rel
            if holder in unchanged:
                # This file comes first in the corpus: it takes the id over from an
                # unchanged file, which is read again (and reports its copy) next build.
                skipped.append(Skipped(holder, f"duplicate article id {article.id!r} (also in {rel})"))
                forget.add(holder)
                file_rows.pop(holder, None)  # touched but unchanged: not recorded either
                result.unchanged -= 1
            if previous_hash == article.hash:  # the hash covers the path: same file
                result.unchanged += 1
                continue
            result.pending.append(_Pending(article, replaces=previous_hash is not None))
            if previous_hash is not None:
                result.updated += 1
            else:
                result.added += 1
    result.removed = [
        aid for aid, (path, _) in stored.items() if aid not in owner and path not in unchanged | keep_indexed
    ]
    return result


class Builder:
    """`Builder(settings)(full=False)` -> BuildReport."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None, progress: Progress | None = None):
        self.settings = settings
        self._embedder = embedder
        self.progress = progress or (lambda stage, done, total: None)

    @property
    def embedder(self) -> Embedder:
        # Loaded only when something has to be embedded: a no-op build stays fast.
        if self._embedder is None:
            s = self.settings
            if s.ray_address:
                from rag.cluster import RayEmbedder  # imports Ray: only when asked for

                self._embedder = RayEmbedder(s.ray_address, s.model, **s.embedder_options())
            else:
                self._embedder = Embedder(s.model, **s.embedder_options())
        return self._embedder

    def __call__(self, full: bool = False) -> BuildReport:
        index_dir = Path(self.settings.index_dir)
        with writer_lock(index_dir):
            store = _open_for_build(index_dir, full)
            try:
                store.remove_leftovers()  # of a write that failed or was killed
                return self._build(store, full)
            finally:
                store.rollback()
                store.close()

    def _build(self, store: IndexStore, full: bool) -> BuildReport:
        started = time.perf_counter()
        report = BuildReport()
        if self.settings.backend == "auto":
            # `auto` keeps the backend an index was built with (its vectors stay of one kind, and an
            # index copied to another CPU stays usable); a new or fully rebuilt index gets the one
            # that runs best on this CPU (or the given embedder's). The manifest records it.
            built = None if full else (store.manifest or {}).get("backend")
            chosen = built or (self._embedder.backend if self._embedder is not None else auto_backend())
            self.settings = replace(self.settings, backend=chosen)
        if store.manifest is None and not full:
            # A new index: record its manifest first, then build it like any
            # incremental update, so that a first build killed halfway resumes.
            with store.transaction():
                store.reset(Manifest.from_settings(self.settings, self.embedder.dimension))
        if not full:
            store.check(Manifest.from_settings(self.settings))
        known_files = {} if full else store.files()
        indexed_paths = set() if full else store.article_paths()
        # A recorded file none of whose articles is indexed is read again: builds
        # before duplicates were re-read recorded a file whose only article was a
        # duplicate, and never read it again after its twin went.
        reading = self._read({p: row for p, row in known_files.items() if p in indexed_paths}, report)
        # What the index holds of the files read or gone, and of the article ids
        # read (an article may move between files): not the whole index, so that
        # adding one article to a large index costs about what it costs a small one.
        stored: dict[str, tuple[str, str]] = {}
        if not full:
            touched = {rel for rel, _ in reading.parsed} | reading.keep_indexed | (indexed_paths - set(reading.order))
            stored = store.articles_where(touched, [a.id for _, articles in reading.parsed for a in articles])
        todo = plan(reading, stored, 0 if full else store.article_count())
        pending, file_rows, removed = todo.pending, todo.file_rows, todo.removed
        report.added, report.updated, report.unchanged = todo.added, todo.updated, todo.unchanged
        report.skipped = todo.skipped
        report.removed = len(removed)

        # A full build is one transaction, which the others join: old index or new.
        # An incremental one commits each step, so that a killed build keeps them.
        with store.transaction() if full else nullcontext():
            with store.transaction():
                if full:
                    store.reset(Manifest.from_settings(self.settings, self.embedder.dimension))
                elif removed:
                    store.remove_articles(removed)
                for path in (set(known_files) - set(reading.order)) | todo.forget:  # gone, or to be read again
                    store.remove_file(path)

            self._chunk(pending)
            total = sum(len(p.chunks) for p in pending)
            done = 0
            self.progress("embedding", 0, total)
            for group in self._groups(pending):
                with store.transaction():
                    vectors, sentence_vectors = self._embed(group)
                    offset = 0
                    for item, item_sentence_vectors in zip(group, sentence_vectors):
                        if item.replaces:
                            store.remove_articles([item.article.id])
                        n = len(item.chunks)
                        store.add_article(
                            item.article, item.sentences, item.chunks, vectors[offset : offset + n], item_sentence_vectors
                        )
                        offset += n
                done += len(vectors)
                self.progress("embedding", done, total)
            report.chunks_embedded = done
            # Before `last_build` moves: a reader that loads the new build finds it in segments.
            self.progress("indexing", 0, done)
            report.repaired = store.segment_register.write()
            self.progress("indexing", done, done)

            with store.transaction():
                for path, row in file_rows.items():
                    store.set_file(path, *row)
                report.seconds = time.perf_counter() - started
                report.chunks_total = store.chunk_count()
                store.set_meta("last_build", f"{time.time():.3f}")
                store.set_meta("last_report", report.summary())
        store.segment_register.remove_unowned()
        store.checkpoint()
        store.write_manifest()
        log.info("build of %s: %s", self.settings.index_dir, report.summary())
        return report

    def _read(self, known_files: dict, report: BuildReport) -> Reading:
        """List the corpus and read its new and changed files (`Reading`)."""
        corpus = Path(self.settings.corpus_dir)
        if not corpus.is_dir():
            raise FileNotFoundError(f"corpus folder {corpus}/ does not exist")
        files, refused = list_corpus(corpus, self.settings.allow_outside_links)
        reading = Reading({p.relative_to(corpus).as_posix(): i for i, p in enumerate(files)}, skipped=refused)
        max_bytes = self.settings.max_file_bytes
        for number, path in enumerate(files, start=1):
            self.progress("reading", number, len(files))
            rel = path.relative_to(corpus).as_posix()
            stat = path.stat()
            known = known_files.get(rel)
            if known and known[:2] == (stat.st_size, stat.st_mtime_ns):
                reading.unchanged.add(rel)
                continue
            raw = read_bytes(path, rel, max_bytes)
            if isinstance(raw, Skipped):
                reading.skipped.append(raw)
                reading.keep_indexed.add(rel)
                continue
            digest = hashlib.sha256(raw).hexdigest()
            if known and known[2] == digest:
                reading.file_rows[rel] = (stat.st_size, stat.st_mtime_ns, digest)
                reading.unchanged.add(rel)
                continue
            articles, skipped = [], []
            for item in _safe_parse(raw, rel):
                (skipped if isinstance(item, Skipped) else articles).append(item)
            if skipped:
                reading.skipped += skipped  # not recorded: its problems are reported again next build
            else:
                reading.file_rows[rel] = (stat.st_size, stat.st_mtime_ns, digest)
            report.notes += [note for article in articles if (note := article.dropped_note())]
            reading.parsed.append((rel, articles))
        return reading

    def _chunk(self, pending: list[_Pending]) -> None:
        if not pending:
            return
        chunker = Chunker(
            self.embedder.tokenizer.count,
            self.embedder.max_tokens,
            chunk_tokens=self.settings.chunk_tokens,
            overlap=self.settings.chunk_overlap,
        )
        articles = [p.article for p in pending]
        if len(pending) < PARALLEL_CHUNKING_MIN:
            chunked = chunk_articles(chunker, articles)
        elif self.settings.ray_address:
            chunked = self.embedder.chunk_articles(chunker, articles)  # on the cluster's CPUs
        else:
            chunked = chunk_articles(chunker, articles, self.settings.chunk_workers or os.cpu_count() or 1)
        self.progress("chunking", 0, len(pending))
        for done, (item, (sentences, chunks)) in enumerate(zip(pending, chunked), start=1):
            item.sentences, item.chunks = sentences, chunks
            self.progress("chunking", done, len(pending))

    def _embed(self, group: list[_Pending]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Vectors of the group's chunks, and of each article's sentences."""
        chunks = [c for item in group for c in item.chunks]
        if self.settings.sentence_vectors == "separate":
            vectors = self.embedder([c.text for c in chunks])
            sentences = self.embedder([s.text for item in group for s in item.sentences])
            return vectors, np.split(sentences, np.cumsum([len(item.sentences) for item in group])[:-1])
        # Late chunking: each sentence pooled from the tokens of the chunk(s) it
        # is in; one that two chunks share (the overlap) gets the mean of both.
        spans = [
            [
                (max(s.start, c.start) - c.start, min(s.end, c.end) - c.start)
                for s in item.sentences[c.first_sentence : c.last_sentence + 1]
            ]
            for item in group
            for c in item.chunks
        ]
        vectors, span_vectors = self.embedder.embed([c.text for c in chunks], spans)
        out, at = [], 0
        for item in group:
            total = np.zeros((len(item.sentences), self.embedder.dimension), dtype=np.float32)
            for c in item.chunks:
                total[c.first_sentence : c.last_sentence + 1] += span_vectors[at]
                at += 1
            out.append(total / np.maximum(np.linalg.norm(total, axis=1, keepdims=True), 1e-12))
        return vectors, out

    def _groups(self, pending: list[_Pending]):
        """Articles in groups of about `embed_group` chunks: one encode call (which
        sorts by length, so little padding) and one transaction per group."""
        group, size = [], 0
        for item in pending:
            group.append(item)
            size += len(item.chunks)
            if size >= self.settings.embed_group:
                yield group
                group, size = [], 0
        if group:
            yield group


@contextmanager
def writer_lock(index_dir: Path):
    """Held by the one process allowed to write the index (`rag build`, `rag compact`)."""
    if index_dir.exists() and not index_dir.is_dir():
        raise NotAnIndex(f"{index_dir} is a file, not an index folder: give --index a folder (it is created if missing)")
    index_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(index_dir / "build.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise BuildBusy(
            f"another `rag build` is writing to {index_dir}/ right now; wait for it to finish and run it again"
        ) from None
    try:
        yield
    finally:
        lock.release()


def compact(index_dir: Path) -> tuple[int, int]:
    """Merge all segments of an index into one, dropping removed chunks' vectors;
    returns (segments before, tombstones dropped).

    A compacted index is a new completed state, like a build's: `last_build` moves,
    so a running `Pipeline` loads it and lets go of the old snapshot. Else a server
    kept the old segments' deleted files (memory-mapped) and their disk, and the
    checkpoint below waited `CHECKPOINT_WAIT_S` for that snapshot in vain."""
    index_dir = Path(index_dir)
    with writer_lock(index_dir):
        store = IndexStore(index_dir)
        try:
            started = time.perf_counter()
            removed = store.counts()["tombstones"]
            before = store.segment_register.compact()
            if before > 1 or removed:  # as `compact_plan`: else nothing changed
                with store.transaction():
                    store.set_meta("last_build", f"{time.time():.3f}")
                    store.set_meta(
                        "last_report",
                        f"compacted: {before} segment(s) into 1, {removed} removed chunk(s) dropped; "
                        f"{time.perf_counter() - started:.1f} s",
                    )
            store.segment_register.remove_unowned()
            store.checkpoint()  # a copy of rag.sqlite must not name the segments just removed
            store.write_manifest()  # after the checkpoint, as a build's (`Database.stale`)
            return before, removed
        finally:
            store.close()


def _open_for_build(index_dir: Path, full: bool) -> IndexStore:
    """The index to build into. A full build starts afresh from a damaged database
    (the corpus is the source: nothing is lost); an incremental build refuses one and
    says to run `rag build --full`. Another program's database is never touched."""
    try:
        store = IndexStore(index_dir, create=True)
    except IndexDamaged:
        if not full:
            raise
        store = None
    # A build never writes into a database SQLite's quick check finds damaged (a
    # large one checked in part: see database.WHOLE_CHECK_MAX_BYTES).
    damage = store.quick_check(whole=full) if store is not None else None
    if damage is not None:
        store.close()
        if not full:
            raise damaged(index_dir, damage)
        store = None
    if store is None:
        if not proven_ours(index_dir):
            raise NotAnIndex(
                f"{index_dir / DATABASE} cannot be read as an SQLite database and nothing shows it is a rag-news "
                "index (no application id in its header, no manifest.json of ours beside it); it was left "
                "untouched. Move it away, or give --index another folder."
            )
        for name in (DATABASE, f"{DATABASE}-wal", f"{DATABASE}-shm", f"{DATABASE}-journal"):
            (index_dir / name).unlink(missing_ok=True)
        for derived in index_dir.glob("seg-*"):  # they were the old database's
            shutil.rmtree(derived) if derived.is_dir() else derived.unlink(missing_ok=True)
        store = IndexStore(index_dir, create=True)
    return store


def _safe_parse(raw: bytes, rel: str) -> list[Article | Skipped]:
    try:
        return list(parse(raw, rel))
    except Exception as err:  # a parser bug on one odd file must not stop the build
        log.warning("parsing %r failed", rel, exc_info=True)  # the traceback, for a bug report
        return [Skipped(rel, f"could not be parsed ({type(err).__name__}: {err})")]


