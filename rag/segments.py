"""The segment lifecycle of an index: load, check, write, merge, repair, compact
and clean up the segments (rag/segment.py) that the database registers.

A build writes the chunks it added as a new segment, then merges by
`merge_plan`, a pure decision over the segments' sizes (tested on plain lists,
tests/test_merge_policy.py); `SegmentRegister` carries it out. A segment's files
are written before the transaction that registers it, so a build killed in
between leaves files no segment owns, which the next build deletes
(`remove_unowned`). Merges, repairs and compaction read the chunks' vectors and
text from the database, never re-embedding.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from rag.segment import Segment, SegmentInfo, SegmentSet

if TYPE_CHECKING:
    from rag.store import IndexStore

log = logging.getLogger(__name__)

MERGE_RATIO = 4
"""After a build, the newest segment is merged into the one before it while that
one holds at most this many times its live chunks: segment sizes then grow
geometrically with age, so an index has O(log n) segments and each chunk is
rewritten O(log n) times over its life (Lucene's tiered merging, simplified)."""


@dataclass(frozen=True)
class SegmentStats:
    """What the merge decision knows of a segment."""

    first: int
    last: int
    """The chunk id range it covers (inclusive)."""
    chunks: int
    """Chunks written into it."""
    live: int
    """Those still in the index (the others were removed since: tombstones)."""


@dataclass(frozen=True)
class MergeStep:
    """Write the live chunks first..last as one segment in place of `replaces`
    (when none is live, nothing is written: the old segments are dropped)."""

    action: str
    """"drop" (no live chunk left), "rewrite" (mostly removed), "write" (the chunks
    no segment holds yet), "merge" (two neighbours), "compact" (all into one)."""
    replaces: tuple[SegmentStats, ...]
    first: int
    last: int


def merge_plan(
    segments: Sequence[SegmentStats], unsegmented: int = 0, newest: int = 0, ratio: int = MERGE_RATIO
) -> list[MergeStep]:
    """What a build does to its segments (oldest first), in order: a segment
    mostly removed (fewer than half its chunks live) is rewritten alone, or
    dropped when none is live; the `unsegmented` chunks after the last segment up
    to chunk id `newest` become a new segment; then the newest segment is merged
    into the one before it while that one holds at most `ratio` times its live
    chunks (see `MERGE_RATIO`). Pure: each step's outcome is worked out from the
    numbers (a written segment holds exactly the live chunks of its range)."""
    steps: list[MergeStep] = []
    kept: list[SegmentStats] = []
    for segment in segments:
        if 2 * segment.live < segment.chunks:
            steps.append(MergeStep("rewrite" if segment.live else "drop", (segment,), segment.first, segment.last))
            if segment.live:
                kept.append(SegmentStats(segment.first, segment.last, segment.live, segment.live))
        else:
            kept.append(segment)
    if unsegmented:
        # From the first id no kept segment covers: a dropped newest segment's range included.
        first = kept[-1].last + 1 if kept else 0
        steps.append(MergeStep("write", (), first, newest))
        kept.append(SegmentStats(first, newest, unsegmented, unsegmented))
    while len(kept) >= 2:
        older, newer = kept[-2], kept[-1]
        if older.live > ratio * newer.live:
            break
        steps.append(MergeStep("merge", (older, newer), older.first, newer.last))
        live = older.live + newer.live
        kept[-2:] = [SegmentStats(older.first, newer.last, live, live)]
    return steps


def compact_plan(segments: Sequence[SegmentStats]) -> list[MergeStep]:
    """All segments into one without removed chunks (`rag compact`); nothing to do
    when there is one segment and every chunk of it is live."""
    if len(segments) > 1 or (segments and segments[0].live != segments[0].chunks):
        return [MergeStep("compact", tuple(segments), segments[0].first, segments[-1].last)]
    return []


class SegmentRegister:
    """The segments of one open index (`IndexStore.segment_register`): loading them
    for search, checking their files against what was recorded at write, and
    writing, merging, repairing and deleting them. Writes happen in their own
    transactions, or in the caller's (a full build)."""

    def __init__(self, store: IndexStore):
        self.store = store
        self.dir = store.dir
        self._loaded: SegmentSet | None = None
        self.problems: list[str] = []
        """Damaged derived files found while loading (they were rebuilt in memory)."""

    def forget(self) -> None:
        """Load the segments again on next use (the index was emptied)."""
        self._loaded = None

    def infos(self) -> list[SegmentInfo]:
        """The registered segments, oldest (lowest ids) first."""
        rows = self.store.query("SELECT first, last, chunks FROM segments ORDER BY first")
        return [SegmentInfo(*row) for row in rows]

    def _fingerprints(self, info: SegmentInfo) -> dict:
        rows = self.store.query("SELECT fingerprints FROM segments WHERE first = ?", (info.first,))
        try:
            return json.loads(rows[0][0]) if rows else {}
        except ValueError:
            return {}

    def _tail_start(self, infos: list[SegmentInfo]) -> int:
        """The first chunk id no segment covers."""
        return infos[-1].last + 1 if infos else 0

    @property
    def loaded(self) -> SegmentSet:
        """Every chunk, searchable: the registered segments, loaded from their
        files (a missing or damaged one is rebuilt in memory from the database and
        noted in `problems`), and chunks that no segment holds yet (a build was
        stopped before writing its segment), in memory."""
        if self._loaded is None:
            infos = self.infos()
            loaded = [self._load_segment(info) for info in infos]
            tail = self._segment_from_rows(self._tail_start(infos), None)
            if tail.info.chunks:
                loaded.append(tail)
            removed = np.array([r[0] for r in self.store.query("SELECT chunk_id FROM tombstones")], dtype=np.int64)
            self._loaded = SegmentSet(loaded, removed)
            if (stale := self.store.stale()) is not None:
                self.problems.append(stale)
        return self._loaded

    def _load_segment(self, info: SegmentInfo) -> Segment:
        # Quick: opening an index must not read all of it. Files changed since they
        # were written are checked in full; `rag stats --check` reads every byte.
        problem = self._damage(info, quick=True)
        if problem is None:
            try:
                return Segment.load(info, self.dir)
            except Exception as err:  # any parse failure of a damaged file
                problem = f"cannot be read ({type(err).__name__}: {str(err)[:120]})"
        self.problems.append(f"segment {info.name} is damaged ({problem}): rebuilt from the database in memory; `rag build` rewrites it")
        # Its removed chunks are gone from the database: rebuilt, it holds only live ones.
        return self._segment_from_rows(info.first, info.last)

    def _segment_from_rows(self, first: int, last: int | None) -> Segment:
        """A segment of the live chunks with ids first..last (no end: all from `first`),
        from the database's copy of their vectors and text."""
        rows = self.store.query(
            "SELECT c.id, c.embedding, a.title, a.source, c.text FROM chunks c JOIN articles a ON a.id = c.article_id"
            " WHERE c.id >= ? AND c.id <= ? ORDER BY c.id",
            (first, last if last is not None else 1 << 62),
        )
        ids = np.array([r[0] for r in rows], dtype=np.int64)
        dimension = int((self.store.manifest or {}).get("dimension") or 1)
        vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dimension)
        texts = [f"{r[2]}\n{r[3]}\n{r[4]}" for r in rows]
        end = last if last is not None else (int(ids[-1]) if len(ids) else first)
        return Segment.build(SegmentInfo(first, end, len(ids)), ids, vectors, texts)

    def _damage(self, info: SegmentInfo, quick: bool = False) -> str | None:
        """How the segment's files differ from the size and SHA-256 recorded when
        they were written (None if they match). `quick`: files whose size and
        modification time are as recorded are taken as sound without reading them
        (neither opening an index nor adding one article may read all of it)."""
        expected = self._fingerprints(info)
        for path in info.files(self.dir):
            if not path.exists():
                return f"{path.name} is missing"
            if path.name not in expected:
                continue
            recorded = expected[path.name]
            if quick and size_and_mtime(path) == (recorded["bytes"], recorded.get("mtime_ns")):
                continue
            actual = fingerprint(path)
            if actual["bytes"] != recorded["bytes"]:
                return f"{path.name}: {actual['bytes']} bytes, {recorded['bytes']} written"
            if actual["sha256"] != recorded["sha256"]:
                return f"{path.name}: checksum differs from the one recorded at write"
        return None

    def derived_problems(self, quick: bool = False) -> list[str]:
        """A database older than the last build (`stale`), and segments whose files
        are missing or damaged (for `rag stats`); `quick` as in `_damage`.

        Damage found by reading whole files (not `quick`) is recorded for the next
        build and reader, whose quick look would otherwise miss a file that kept its
        size and modification time (`_mark_for_repair`)."""
        problems = [problem for problem in [self.store.stale()] if problem]
        for info in self.infos():
            if (damage := self._damage(info, quick)) is None:
                continue
            unmarked = None if quick else self._mark_for_repair(info)
            advice = "`rag build` rewrites it" if unmarked is None else f"{unmarked}"
            problems.append(f"segment {info.name} is damaged ({damage}); {advice}")
        return problems

    def _mark_for_repair(self, info: SegmentInfo) -> str | None:
        """Make the recorded modification times of a damaged segment's files wrong,
        so that opening the index and the next build hash them in full, find the
        damage and rewrite them. None when recorded; else what to do instead."""
        if self.store.read_only:
            return "this index is read-only here, so nothing can rewrite it: copy the index afresh from its source (`rag export-replica`)"
        fingerprints = self._fingerprints(info)
        for record in fingerprints.values():
            record["mtime_ns"] = -1
        try:
            self.store.begin()
            self.store.db.execute("UPDATE segments SET fingerprints = ? WHERE first = ?", (json.dumps(fingerprints, sort_keys=True), info.first))
            self.store.commit()
        except sqlite3.Error as err:
            self.store.rollback()
            return f"it could not be marked for `rag build` to rewrite ({err}): run `rag stats --check` again when no build is running"
        self._loaded = None
        return None

    def repair(self, quick: bool = True) -> list[str]:
        """Write segments whose files are missing or damaged anew from the database
        (each in its own transaction, or in the caller's); returns their names.
        `quick` as in `_damage`: what `rag stats --check` found is caught too, as it
        marked those files (`_mark_for_repair`)."""
        repaired = []
        for info in self.infos():
            if (problem := self._damage(info, quick)) is not None:
                log.warning("segment %s is damaged (%s): writing it anew from the database", info.name, problem)
                self._replace([info], info.first, info.last)
                repaired.append(info.name)
        return repaired

    def write(self) -> list[str]:
        """At the end of a build: rewrite damaged segments from the database
        (`repair`), write the chunks no segment holds yet as a new segment
        and merge (see `MERGE_RATIO`). Each in its own transaction, or in the
        caller's (a full build). Returns the names of the damaged segments it
        rewrote; the files of the segments they replace go with `remove_unowned`,
        once committed."""
        repaired = self.repair()
        infos = self.infos()
        covered = self._tail_start(infos)
        unsegmented, newest = self.store.query("SELECT COUNT(*), MAX(id) FROM chunks WHERE id >= ?", (covered,))[0]
        for step in merge_plan([self._stats(info) for info in infos], unsegmented, newest or 0):
            self._replace(step.replaces, step.first, step.last)
        return repaired

    def compact(self) -> int:
        """Merge every segment into one, dropping removed chunks; returns the
        number of segments before (files of the old ones go with `remove_unowned`)."""
        infos = self.infos()
        for step in compact_plan([self._stats(info) for info in infos]):
            self._replace(step.replaces, step.first, step.last)
        return len(infos)

    def _stats(self, info: SegmentInfo) -> SegmentStats:
        """What `merge_plan` needs of a segment. Its live chunks: every chunk removed
        since it was written left a tombstone (counting those is cheap; counting
        chunks is not)."""
        removed = self.store.query("SELECT COUNT(*) FROM tombstones WHERE chunk_id BETWEEN ? AND ?", (info.first, info.last))
        return SegmentStats(info.first, info.last, info.chunks, info.chunks - removed[0][0])

    def _replace(self, old: Sequence[SegmentInfo | SegmentStats], first: int, last: int) -> None:
        """Write the live chunks first..last as one segment, then register it in
        place of `old` in one transaction (the files exist before the database
        names them; a kill in between leaves files no segment owns)."""
        segment = self._segment_from_rows(first, last)
        if segment.info.chunks:  # else the old segments go and nothing replaces them
            segment.save(self.dir)
            fingerprints = {path.name: fingerprint(path) for path in segment.info.files(self.dir)}
        with self.store.transaction():
            self.store.db.executemany("DELETE FROM segments WHERE first = ?", [(o.first,) for o in old])
            if segment.info.chunks:
                self.store.db.execute(
                    "INSERT OR REPLACE INTO segments (first, last, chunks, fingerprints) VALUES (?, ?, ?, ?)",
                    (first, last, segment.info.chunks, json.dumps(fingerprints, sort_keys=True)),
                )
            self.store.db.execute("DELETE FROM tombstones WHERE chunk_id BETWEEN ? AND ?", (first, last))
        self._loaded = None

    def remove_unowned(self) -> list[str]:
        """Delete segment files no registered segment owns (merged away, or written
        by a build that was stopped before registering them); only a build, holding
        the build lock, may call this. A reader still using one keeps reading it:
        it was loaded, or is memory-mapped, before it was unlinked."""
        owned = {path.name for info in self.infos() for path in info.files(self.dir)}
        removed = []
        for path in self.dir.glob("seg-*"):
            if path.name not in owned and not path.name.endswith(".tmp"):
                remove_path(path)
                removed.append(path.name)
        return removed


def remove_path(path: Path) -> None:
    """Delete a file or a folder, if there is one."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def size_and_mtime(path: Path) -> tuple[int, int]:
    """Bytes of a file, or of a folder's files, and the latest modification time."""
    files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
    stats = [f.stat() for f in files]
    return sum(s.st_size for s in stats), max((s.st_mtime_ns for s in stats), default=0)


def fingerprint(path: Path) -> dict:
    """Size, SHA-256 and latest modification time of a file, or of a folder's files
    (names included)."""
    digest = hashlib.sha256()
    size = 0
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(file.relative_to(path).as_posix().encode() + b"\0" if path.is_dir() else b"")
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
                size += len(block)
    return {"bytes": size, "sha256": digest.hexdigest(), "mtime_ns": size_and_mtime(path)[1]}
