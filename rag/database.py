"""The SQLite file of an index: opening it, transactions, snapshots, checkpoints.

`Database` is the connection that `IndexStore` (rag/store.py: what the tables
hold) is built on. It creates the tables (`SCHEMA`) and marks the file as ours
(`APPLICATION_ID`), refuses another program's database, opens an index on
read-only media, keeps a reader's snapshot, begins and commits the write
transactions, copies the write-ahead log into the file after a build
(`checkpoint`) and tells when a database is older than the last build (`stale`).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from rag.errors import DATABASE, IndexMissing, NotAnIndex, StoreError, explain

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, sha256 TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS articles (
    id TEXT PRIMARY KEY, path TEXT NOT NULL, hash TEXT NOT NULL, title TEXT, source TEXT,
    published TEXT, url TEXT, author TEXT, category TEXT, text TEXT NOT NULL, added_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS articles_path ON articles(path);
CREATE TABLE IF NOT EXISTS sentences (
    article_id TEXT NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    position INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (article_id, position)
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    article_id TEXT NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    position INTEGER NOT NULL, start INTEGER NOT NULL, "end" INTEGER NOT NULL,
    first_sentence INTEGER NOT NULL, last_sentence INTEGER NOT NULL,
    text TEXT NOT NULL, embedding BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS chunks_article ON chunks(article_id);
CREATE INDEX IF NOT EXISTS articles_source ON articles(source);
CREATE TABLE IF NOT EXISTS segments (
    first INTEGER PRIMARY KEY, last INTEGER NOT NULL, chunks INTEGER NOT NULL, fingerprints TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tombstones (chunk_id INTEGER PRIMARY KEY);
"""


# Written into the database header (PRAGMA application_id), so that a file of the
# same name made by another program is told apart from an index ("RAGN").
APPLICATION_ID = 0x5241474E
TABLES = frozenset(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", SCHEMA)) | {"sqlite_sequence"}
BUSY_TIMEOUT_S = 30.0
"""How long a statement waits for a lock another process holds."""
CHECKPOINT_WAIT_S = 30.0
"""How long a build's checkpoint waits for readers on an older snapshot (`checkpoint`)."""

WHOLE_CHECK_MAX_BYTES = 256_000_000
"""A build checks a database up to this size whole before writing (SQLite's quick
check reads every page: ~0.15 s at this size here, 0.85 s at 1.5 GB). A larger one
is checked in `BUILD_TABLES` only, so that adding an article to a large index does
not read all of it; SQLite still refuses any damaged page the build reads or
writes (the build stops and says so), and `rag stats --check` checks it whole."""
BUILD_TABLES = ("meta", "files", "segments", "tombstones")


class Database:
    """The SQLite connection to the index in `index_dir` (created with `create=True`)."""

    def __init__(self, index_dir: Path | str, create: bool = False, snapshot: bool = False):
        """`snapshot=True` (for readers): every read sees the index as it was when
        the store was opened, whatever builds commit meanwhile (one SQLite read
        transaction, kept open until the store is closed)."""
        self.dir = Path(index_dir)
        path = self.dir / DATABASE
        if self.dir.exists() and not self.dir.is_dir():
            raise NotAnIndex(f"{self.dir} is a file, not an index folder: give --index a folder (it is created if missing)")
        if path.exists() and not path.is_file():
            raise NotAnIndex(f"{path} is not a file: {self.dir}/ is not an index folder")
        if not path.exists() and not create:
            raise IndexMissing(f"no index in {self.dir}/: run `rag build` first")
        self.read_only = not create and on_read_only_media(self.dir)
        if not self.read_only:
            self.dir.mkdir(parents=True, exist_ok=True)
        self.immutable = False
        """Opened without its write-ahead log (see `_connect_read_only`)."""
        if self.read_only:
            self.db = self._connect_read_only(path)
        else:
            # isolation_level=None: transactions are begun and committed explicitly.
            self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S)
        self.db.row_factory = sqlite3.Row
        try:
            self._check_ours(path)  # before any pragma: another program's file is left untouched
            if not self.read_only:
                self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            if create:
                # The id and the tables in one transaction: a database with our tables
                # always carries our id, even if this process is killed right here.
                self.db.executescript(f"BEGIN; PRAGMA application_id={APPLICATION_ID}; {SCHEMA} COMMIT;")
            if snapshot:
                self.db.execute("BEGIN")
                self.db.execute("SELECT COUNT(*) FROM meta").fetchone()  # the read starts the snapshot
        except sqlite3.DatabaseError as err:
            self.db.close()
            raise explain(err, self.dir) or err from None
        except StoreError:
            self.db.close()
            raise
        # One connection serves every thread (a snapshot must be one connection's);
        # statements on it take turns, each one short.
        self._lock = threading.RLock()

    def _connect_read_only(self, path: Path) -> sqlite3.Connection:
        """A folder this user cannot write. With a write-ahead log beside the database
        (an index whose owner's build or server is running), read it too (`mode=ro`:
        SQLite reads an existing log and WAL index without writing either), so that
        the last builds are seen; without one, or if SQLite cannot use it, the file
        alone (`immutable`: no locks, no WAL index, which read-only media cannot
        hold). `stale()` says when the file alone is older than the last build."""
        uri = path.resolve().as_uri()
        wal = path.with_name(path.name + "-wal")
        if wal.exists() and wal.stat().st_size > 0:
            db = sqlite3.connect(f"{uri}?mode=ro", isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S, uri=True)
            try:
                db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
                return db
            except sqlite3.Error:
                db.close()
        self.immutable = True
        return sqlite3.connect(f"{uri}?immutable=1", isolation_level=None, check_same_thread=False, uri=True)

    def _check_ours(self, path: Path) -> None:
        """Raise NotAnIndex unless the database is empty or provably an index of ours:
        it carries our application id (every index created or built since the id
        was introduced, format 1 onwards), or, written before that, it holds only
        our tables and a `meta` row `manifest` naming a format version and a model
        (such an index is then asked to be rebuilt with `--full`, which adds the
        id). Anything else, a subset of our table names included, is another
        program's and is never written to nor deleted."""
        application_id = self.db.execute("PRAGMA application_id").fetchone()[0]
        if application_id == APPLICATION_ID:
            return
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if application_id == 0 and (not tables or (tables <= TABLES and self._legacy_manifest(tables))):
            return
        raise NotAnIndex(
            f"{path} is not a rag-news index (it holds tables {', '.join(sorted(tables)) or 'none'}"
            f"{f', application id {application_id}' if application_id else ''}); it was left untouched. "
            "Give --index an empty folder or an index folder."
        )

    def _legacy_manifest(self, tables: set[str]) -> bool:
        """True when a database without our application id has the manifest row every
        build of ours wrote first (an index made before the id was recorded)."""
        if "meta" not in tables:
            return False
        try:
            rows = self.db.execute("SELECT value FROM meta WHERE key = 'manifest'").fetchall()
            manifest = json.loads(rows[0][0]) if rows else None
        except (sqlite3.Error, ValueError, TypeError):
            return False
        return isinstance(manifest, dict) and "format_version" in manifest and "model" in manifest

    def quick_check(self, whole: bool = True) -> str | None:
        """None when SQLite finds the database sound, else what it found. Not
        `whole`: a database over `WHOLE_CHECK_MAX_BYTES` is checked only in the small
        tables a build reads to decide what to do."""
        large = (self.dir / DATABASE).stat().st_size > WHOLE_CHECK_MAX_BYTES
        statements = ["PRAGMA quick_check(5)"] if whole or not large else [f"PRAGMA quick_check({t})" for t in BUILD_TABLES]
        try:
            rows = [r[0] for statement in statements for r in self.db.execute(statement)]
        except sqlite3.DatabaseError as err:
            return str(err)
        problems = [row for row in rows if row != "ok"]
        return "; ".join(problems) if problems else None

    def close(self) -> None:
        self.db.close()

    def release(self) -> None:
        """Close the connection, ending a snapshot's read transaction (which keeps a
        build's checkpoint waiting), once no thread is reading through it."""
        with self._lock:
            self.db.close()

    def checkpoint(self) -> bool:
        """Copy every committed page from the write-ahead log into the database file,
        so that `rag.sqlite` alone is the complete index (a copy for read-only media,
        a reader opening it `immutable`); True when it is.

        FULL waits (up to `CHECKPOINT_WAIT_S`) for readers still on an older snapshot
        to move on: a `Pipeline` moves to a completed build within `WATCH_INTERVAL`
        (rag/pipeline.py), or when its answers in flight finish. Readers on the
        newest snapshot do not hold it up. The log is then emptied if no reader
        uses it any more (else SQLite reuses it from the start later)."""
        self.db.execute(f"PRAGMA busy_timeout={int(CHECKPOINT_WAIT_S * 1000)}")
        try:
            busy, frames, copied = self.db.execute("PRAGMA wal_checkpoint(FULL)").fetchone()
            complete = busy == 0 and frames == copied  # (0, -1, -1) when not in WAL mode
            if complete:
                self.db.execute("PRAGMA busy_timeout=0")
                self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()  # busy is fine: all is copied
        finally:
            self.db.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
        if not complete:
            log.warning(
                "%s: the write-ahead log could not be copied into %s within %.1f s (a reader kept an older "
                "snapshot; %s of %s pages copied): a copy of %s alone would be older than this build, so copy "
                "the index with `rag export-replica`",
                self.dir, DATABASE, CHECKPOINT_WAIT_S, copied, frames, DATABASE,
            )
        return complete

    def recorded_build(self) -> str | None:
        """`last_build` as manifest.json records it: written once the build's
        checkpoint is done (None if unreadable or not recorded)."""
        try:
            recorded = json.loads((self.dir / MANIFEST).read_text()).get("last_build")
        except (OSError, ValueError, AttributeError):
            return None
        return recorded if isinstance(recorded, str) else None

    def stale(self) -> str | None:
        """What is wrong when this database is older than the last build recorded
        beside it (manifest.json is rewritten after each build's checkpoint): a copy
        of `rag.sqlite` taken without its log before the checkpoint completed, or a
        reader that could not read the log. None when it is current."""
        try:
            recorded = float(self.recorded_build())
        except (ValueError, TypeError):
            return None  # no record (an index built before it was written): nothing to compare
        own = self.meta("last_build")
        if own is not None and float(own) >= recorded - 1e-3:
            return None
        when = datetime.fromtimestamp(recorded).isoformat(timespec="seconds")
        shows = datetime.fromtimestamp(float(own)).isoformat(timespec="seconds") if own else "no build"
        return (
            f"the database {self.dir / DATABASE} is older than the index's last build ({when}; it shows {shows}): "
            "it was copied, or is read, without its write-ahead log, and may cite removed articles. "
            "Copy an index with `rag export-replica`, or run `rag build` where it can write"
        )

    def query(self, sql: str, params: Iterable = ()) -> list[sqlite3.Row]:
        """All rows of one read statement (safe from any thread)."""
        with self._lock:
            return self.db.execute(sql, tuple(params)).fetchall()

    # ------------------------------------------------------------ metadata

    def meta(self, key: str, default: str | None = None) -> str | None:
        rows = self.query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else default

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # ------------------------------------------------------------ transactions

    def begin(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")
        # Counts committed write transactions: a reader can tell its snapshot is still
        # the newest state (`renew`), which `last_build` cannot tell during a build.
        self.db.execute(
            "INSERT INTO meta (key, value) VALUES ('changes', '1')"
            " ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
        )

    def renew(self) -> bool:
        """Begin the snapshot's read transaction again, on the same state, if nothing
        was committed since it began; True if it was. Once a build's checkpoint
        has copied the log into the database file, the renewed snapshot reads the
        file alone, so the next build can reuse the log from its start instead of
        growing it. The caller makes sure no one reads through this store meanwhile."""
        if self.read_only:
            return False
        probe = sqlite3.connect(self.dir / DATABASE, isolation_level=None, timeout=0)
        try:
            probe.execute("BEGIN IMMEDIATE")  # no commit can come in between (or a build is writing: later)
            with self._lock:
                if probe.execute("SELECT value FROM meta WHERE key = 'changes'").fetchone() != self._changes():
                    return False
                self.db.execute("COMMIT")
                self.db.execute("BEGIN")
                self.db.execute("SELECT COUNT(*) FROM meta").fetchone()
            return True
        except sqlite3.Error:
            return False
        finally:
            probe.close()

    def _changes(self) -> tuple | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'changes'").fetchone()
        return tuple(row) if row is not None else None

    def commit(self) -> None:
        self.db.execute("COMMIT")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction around the block: committed at its end, rolled back
        if it fails. Inside another one, the block is part of that one (a full
        build writes everything in one transaction: old index or new)."""
        if self.db.in_transaction:
            yield
            return
        self.begin()
        try:
            yield
        except BaseException:
            self.rollback()
            raise
        self.commit()

    def rollback(self) -> None:
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")


def proven_ours(index_dir: Path) -> bool:
    """Whether a database too damaged to open may be deleted by `rag build --full`:
    its header still carries our application id, or the folder holds the
    manifest.json our builds write. Without either it may be another program's."""
    try:
        with open(Path(index_dir) / DATABASE, "rb") as handle:
            header = handle.read(100)
        if len(header) == 100 and header.startswith(b"SQLite format 3\0") and int.from_bytes(header[68:72], "big") == APPLICATION_ID:
            return True
    except OSError:
        pass
    try:
        manifest = json.loads((Path(index_dir) / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and "format_version" in manifest and "model" in manifest


def on_read_only_media(folder: Path) -> bool:
    """True when `folder` is on a file system mounted read-only (a CD, a read-only
    volume of a container, a snapshot), or one this user may not write to."""
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY) or not os.access(folder, os.W_OK)
    except OSError:
        return False
