"""The index on disk: SQLite as the source of truth, FAISS as a derived file.

`rag.sqlite` holds articles, sentences with character offsets and vectors
(float16: read per question, never all in memory), chunks with their
embeddings, the files they came from and the manifest. Every change is an SQLite
transaction, so a build killed at any moment leaves either the old or the new
state of each article, never half of one. The FAISS file is named after the
database generation it matches (`vectors-<generation>.faiss`); when it is missing
or older than the database (a build died before writing it), it is rebuilt from
the stored embeddings on open. FAISS ids are chunk ids.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import faiss
import numpy as np

from rag.chunk import Chunk, Sentence
from rag.ingest import Article
from rag.lexical import LexicalIndex
from rag.settings import FORMAT_VERSION

log = logging.getLogger(__name__)

DATABASE = "rag.sqlite"
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
"""


# Written into the database header (PRAGMA application_id), so that a file of the
# same name made by another program is told apart from an index ("RAGN").
APPLICATION_ID = 0x5241474E
TABLES = frozenset(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", SCHEMA)) | {"sqlite_sequence"}
REBUILD_HINT = "Run `rag build --full` to rebuild it from the corpus folder."


class StoreError(Exception):
    """Base for index problems the user can act on."""


class IndexDamaged(StoreError):
    """The database cannot be read: `rag build --full` starts it afresh from the corpus."""


class NotAnIndex(StoreError):
    """The path holds something else (a file, another program's database): never written to."""


class DiskFull(StoreError):
    """A write failed for lack of space; nothing half-written is kept."""


def explain(err: BaseException, where: Path | str) -> StoreError | None:
    """What an OS or SQLite error means for the index in `where`, as a StoreError
    with a message the user can act on; None when it is none of the known cases."""
    if isinstance(err, StoreError):
        return err
    text = str(err)
    if (
        (isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT))
        or "database or disk is full" in text
        # numpy reports a short write without an errno, SQLite a failed -shm file as an
        # I/O error: a full disk, if it is one.
        or (
            ((isinstance(err, OSError) and err.errno is None) or "disk I/O error" in text)
            and _free_bytes(Path(where)) < 1_000_000
        )
    ):
        return DiskFull(
            f"the disk holding {where} is full ({text}). Free some space and run `rag build` again; "
            "the index keeps its last complete state and the next build removes what this one left half-written."
        )
    if isinstance(err, OSError):  # a path that is a file, not writable, ...
        return StoreError(f"cannot use {err.filename or where}: {err.strerror or text}")
    if isinstance(err, sqlite3.OperationalError) and "locked" in text:
        return StoreError(f"the index in {where}/ is locked by another process ({text}); try again in a moment")
    damage = ("not a database", "malformed", "disk image", "no such table", "no such column")
    # sqlite3 raises the bare DatabaseError for a file it cannot make sense of; its
    # subclasses (integrity, programming errors) are something else.
    if type(err) is sqlite3.DatabaseError or (isinstance(err, sqlite3.Error) and any(p in text for p in damage)):
        return IndexDamaged(f"the index database {Path(where) / DATABASE} is damaged ({text}). {REBUILD_HINT}")
    if isinstance(err, sqlite3.Error):  # read-only file system, I/O error, ...
        return StoreError(f"cannot use the index database in {where}/ ({text})")
    return None


class IndexMismatch(StoreError):
    """The index was built with other settings than the ones in use."""


class IndexMissing(StoreError):
    """No index where one was expected."""


SENTENCE_DTYPE = np.float16
"""Sentence vectors on disk: half the bytes of float32; rounding them to float16
moved question-sentence cosines by at most 3e-5 (200 MultiHop-RAG texts)."""

SQL_BATCH = 500
"""Ids per `IN (?, ...)` query: below SQLite's old limit of 999 parameters."""


def manifest_for(model: str, dimension: int, chunking: dict, backend: str, sentence_vectors: str) -> dict:
    return {
        "format_version": FORMAT_VERSION,
        "model": model,
        "backend": backend,
        "dimension": dimension,
        "chunking": chunking,
        "sentence_vectors": sentence_vectors,
    }


@dataclass(frozen=True)
class SentenceRow:
    """A stored sentence: its place in the article and its vector."""

    position: int
    start: int
    end: int
    vector: np.ndarray


class IndexStore:
    """Open (or create, with `create=True`) the index in `index_dir`."""

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
        self.dir.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are begun and committed explicitly.
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self.db.row_factory = sqlite3.Row
        try:
            self._check_ours(path)  # before any pragma: another program's file is left untouched
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            if create:
                self.db.executescript(SCHEMA)
                self.db.execute(f"PRAGMA application_id={APPLICATION_ID}")
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
        self._vectors: faiss.Index | None = None
        self._lexical: LexicalIndex | None = None
        self.problems: list[str] = []
        """Damaged derived files found while loading (they were rebuilt in memory)."""

    def _check_ours(self, path: Path) -> None:
        """Raise NotAnIndex unless the database is empty or an index of ours."""
        if self.db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID:
            return
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        # An index written before the application id was recorded has only our tables.
        if tables <= TABLES and self.db.execute("PRAGMA application_id").fetchone()[0] == 0:
            return
        raise NotAnIndex(
            f"{path} is not a rag-news index (it holds tables {', '.join(sorted(tables)) or 'none'}); "
            "it was left untouched. Give --index an empty folder or an index folder."
        )

    def quick_check(self) -> str | None:
        """None when SQLite finds the database sound, else what it found."""
        try:
            rows = [r[0] for r in self.db.execute("PRAGMA quick_check(5)")]
        except sqlite3.DatabaseError as err:
            return str(err)
        return None if rows == ["ok"] else "; ".join(rows)

    def close(self) -> None:
        self.db.close()

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

    @property
    def manifest(self) -> dict | None:
        raw = self.meta("manifest")
        return json.loads(raw) if raw else None

    @property
    def generation(self) -> int:
        return int(self.meta("generation", "0"))

    def check(self, expected: dict) -> None:
        """Raise `IndexMismatch` unless the index was built with the `expected`
        settings (only the keys given are compared)."""
        actual = self.manifest
        if actual is None:
            return
        diffs = [
            f"{key}: index has {actual.get(key)!r}, settings ask for {expected[key]!r}"
            for key in expected
            if actual.get(key) != expected[key]
        ]
        if not diffs:
            return
        raise IndexMismatch(
            f"the index in {self.dir}/ was built with other settings ({'; '.join(diffs)}). "
            "Run `rag build --full` to rebuild it."
        )

    # ------------------------------------------------------------ transactions

    def begin(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def commit(self, changed: bool = True) -> None:
        """Commit; a commit that changed articles moves to the next generation
        (in the same transaction), which marks derived files as stale."""
        if changed:
            self.set_meta("generation", str(self.generation + 1))
        self.db.execute("COMMIT")

    def rollback(self) -> None:
        if self.db.in_transaction:
            self.db.execute("ROLLBACK")

    def reset(self, manifest: dict) -> None:
        """Empty the index for a full rebuild (inside the caller's transaction)."""
        self.db.execute("DELETE FROM articles")
        self.db.execute("DELETE FROM files")
        self.set_meta("manifest", json.dumps(manifest, sort_keys=True))
        self._vectors = faiss.IndexIDMap2(faiss.IndexFlatIP(manifest["dimension"]))

    # ------------------------------------------------------------ files

    def files(self) -> dict[str, tuple[int, int, str]]:
        """path -> (size, mtime_ns, sha256) of every source file seen by the last build."""
        rows = self.query("SELECT path, size, mtime_ns, sha256 FROM files")
        return {r["path"]: (r["size"], r["mtime_ns"], r["sha256"]) for r in rows}

    def set_file(self, path: str, size: int, mtime_ns: int, sha256: str) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO files (path, size, mtime_ns, sha256) VALUES (?, ?, ?, ?)",
            (path, size, mtime_ns, sha256),
        )

    def remove_file(self, path: str) -> None:
        self.db.execute("DELETE FROM files WHERE path = ?", (path,))

    # ------------------------------------------------------------ articles

    def article_hashes(self) -> dict[str, tuple[str, str]]:
        """article id -> (path, hash)."""
        return {r["id"]: (r["path"], r["hash"]) for r in self.query("SELECT id, path, hash FROM articles")}

    def add_article(
        self,
        article: Article,
        sentences: list[Sentence],
        chunks: list[Chunk],
        embeddings: np.ndarray,
        sentence_vectors: np.ndarray,
    ) -> list[int]:
        """Insert one article with its sentences (and their vectors) and chunks
        (and theirs); returns the new chunk ids."""
        # Load (or rebuild) the vectors before inserting: a rebuild from SQLite
        # afterwards would already hold the new chunks, and they would be added twice.
        vectors = self.vectors
        data = asdict(article)
        self.db.execute(
            "INSERT INTO articles (id, path, hash, title, source, published, url, author, category, text, added_at)"
            " VALUES (:id, :path, :hash, :title, :source, :published, :url, :author, :category, :text, :added_at)",
            {**data, "hash": article.hash, "added_at": time.time()},
        )
        self.db.executemany(
            'INSERT INTO sentences (article_id, position, start, "end", vector) VALUES (?, ?, ?, ?, ?)',
            [
                (s.article_id, s.position, s.start, s.end, np.asarray(v, dtype=SENTENCE_DTYPE).tobytes())
                for s, v in zip(sentences, sentence_vectors)
            ],
        )
        ids = []
        for chunk, vector in zip(chunks, embeddings):
            cursor = self.db.execute(
                'INSERT INTO chunks (article_id, position, start, "end", first_sentence, last_sentence, text, embedding)'
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    chunk.article_id,
                    chunk.position,
                    chunk.start,
                    chunk.end,
                    chunk.first_sentence,
                    chunk.last_sentence,
                    chunk.text,
                    np.asarray(vector, dtype=np.float32).tobytes(),
                ),
            )
            ids.append(cursor.lastrowid)
        if ids:
            vectors.add_with_ids(np.asarray(embeddings, dtype=np.float32), np.asarray(ids, dtype=np.int64))
        return ids

    def remove_articles(self, article_ids: Iterable[str]) -> int:
        """Delete articles with their sentences, chunks and vectors; returns chunks removed."""
        article_ids = list(article_ids)
        chunk_ids: list[int] = []
        for start in range(0, len(article_ids), SQL_BATCH):
            batch = article_ids[start : start + SQL_BATCH]
            marks = ",".join("?" * len(batch))
            chunk_ids += [r[0] for r in self.db.execute(f"SELECT id FROM chunks WHERE article_id IN ({marks})", batch)]
            self.db.execute(f"DELETE FROM articles WHERE id IN ({marks})", batch)
        if chunk_ids:
            self.vectors.remove_ids(np.asarray(chunk_ids, dtype=np.int64))
        return len(chunk_ids)

    # ------------------------------------------------------------ vectors

    def _vectors_path(self, generation: int) -> Path:
        return self.dir / f"vectors-{generation}.faiss"

    @property
    def vectors(self) -> faiss.Index:
        """FAISS index matching the database: loaded from its file, else (missing or
        damaged) rebuilt from SQLite."""
        if self._vectors is None:
            path = self._vectors_path(self.generation)
            loaded = self._load_derived(path, lambda p: faiss.read_index(str(p)), lambda index: index.ntotal)
            self._vectors = loaded if loaded is not None else self._rebuild_vectors()
        return self._vectors

    def _load_derived(self, path: Path, load, size):
        """The derived file or folder at `path`, or None when it is missing or damaged
        (checksum recorded at write, or it fails to load, or does not hold one entry
        per chunk); damage is noted in `problems`."""
        if not path.exists():
            return None
        problem = self._damage(path)
        if problem is None:
            try:
                loaded = load(path)
                chunks = self.db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0]
                if size(loaded) == chunks:
                    return loaded
                problem = f"holds {size(loaded)} entries for {chunks} chunks"
            except Exception as err:  # any parse failure of a damaged file
                problem = f"cannot be read ({type(err).__name__}: {str(err)[:120]})"
        self.problems.append(
            f"{path.name} is damaged ({problem}): rebuilt from the database in memory; `rag build` rewrites it"
        )
        return None

    def _damage(self, path: Path) -> str | None:
        """How `path` differs from the size and SHA-256 recorded when it was written
        (None if it matches, or if nothing was recorded: an index from before records)."""
        expected = self._records().get(path.name)
        if expected is None:
            return None
        actual = _fingerprint(path)
        if actual == expected:
            return None
        if actual["bytes"] != expected["bytes"]:
            return f"{actual['bytes']} bytes, {expected['bytes']} written"
        return "checksum differs from the one recorded at write"

    def _records(self) -> dict:
        try:
            return json.loads(self.meta("derived", "{}"))
        except ValueError:
            return {}

    def derived_problems(self) -> list[str]:
        """Derived files of the current generation that are missing or damaged (for `rag stats`)."""
        problems = []
        for path in (self._vectors_path(self.generation), self._lexical_path(self.generation)):
            if not path.exists():
                problems.append(f"{path.name} is missing (rebuilt from the database when loaded; `rag build` writes it)")
            elif (problem := self._damage(path)) is not None:
                problems.append(f"{path.name} is damaged ({problem}); `rag build` rewrites it")
        return problems

    def _rebuild_vectors(self) -> faiss.Index:
        manifest = self.manifest or {}
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(int(manifest["dimension"])))
        ids, blobs = [], []
        for row in self.query("SELECT id, embedding FROM chunks ORDER BY id"):
            ids.append(row[0])
            blobs.append(row[1])
        if ids:
            matrix = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(ids), -1)
            index.add_with_ids(matrix, np.asarray(ids, dtype=np.int64))
        return index

    @property
    def lexical(self) -> LexicalIndex:
        """BM25 over title, outlet and text of every chunk: loaded, or rebuilt from SQLite."""
        if self._lexical is None:
            path = self._lexical_path(self.generation)
            loaded = self._load_derived(path, LexicalIndex.load, lambda index: len(index.ids))
            if loaded is not None:
                self._lexical = loaded
            else:
                rows = self.query(
                    "SELECT c.id, a.title, a.source, c.text FROM chunks c JOIN articles a ON a.id = c.article_id"
                    " ORDER BY c.id"
                )
                self._lexical = LexicalIndex.build([r[0] for r in rows], [f"{r[1]}\n{r[2]}\n{r[3]}" for r in rows])
        return self._lexical

    def _lexical_path(self, generation: int) -> Path:
        return self.dir / f"bm25-{generation}"

    def save_derived(self) -> list[str]:
        """Write the FAISS file and the BM25 folder for the current generation
        (each atomically, by rename; missing or damaged ones are written anew), record
        their sizes and checksums, and drop those of older generations. Returns the
        names of damaged files it replaced."""
        generation = self.generation
        records = self._records()
        repaired = []
        vectors = self._vectors_path(generation)
        if self._needs_writing(vectors, records, repaired):
            tmp = vectors.with_suffix(".tmp")
            if vectors.is_dir():  # damaged into a folder: os.replace cannot overwrite that
                _remove(vectors)
            try:
                data = faiss.serialize_index(self.vectors)
                with open(tmp, "wb") as handle:
                    handle.write(memoryview(data))
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, vectors)
            finally:
                tmp.unlink(missing_ok=True)
            records[vectors.name] = _fingerprint(vectors)
        lexical = self._lexical_path(generation)
        if self._needs_writing(lexical, records, repaired):
            self._lexical = None  # chunks changed since it was loaded
            tmp = lexical.with_name(lexical.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            try:
                self.lexical.save(tmp)
                _remove(lexical)
                os.replace(tmp, lexical)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            records[lexical.name] = _fingerprint(lexical)
        records = {name: records[name] for name in (vectors.name, lexical.name)}
        if records != self._records():
            self.begin()
            self.set_meta("derived", json.dumps(records, sort_keys=True))
            self.commit(changed=False)
        for old in [*self.dir.glob("vectors-*.faiss"), *self.dir.glob("bm25-*")]:
            if old not in (vectors, lexical):
                shutil.rmtree(old) if old.is_dir() else old.unlink(missing_ok=True)
        return repaired

    def _needs_writing(self, path: Path, records: dict, repaired: list[str]) -> bool:
        """True when `path` is missing, damaged (then its name goes to `repaired`) or
        has no recorded checksum yet (an index from before they were recorded)."""
        if not path.exists() or path.name not in records:
            return True
        if (damage := self._damage(path)) is not None:
            log.warning("%s is damaged (%s): writing it anew from the database", path, damage)
            repaired.append(path.name)
            return True
        return False

    def remove_leftovers(self) -> list[str]:
        """Delete what a failed or killed write left behind (`*.tmp` files and folders);
        only a build, holding the build lock, may call this."""
        removed = []
        for leftover in self.dir.glob("*.tmp"):
            _remove(leftover)
            removed.append(leftover.name)
        return removed

    def write_manifest(self) -> None:
        """Readable copy of the manifest next to the database."""
        manifest = self.manifest
        if manifest is None:
            return
        tmp = self.dir / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, self.dir / MANIFEST)

    # ------------------------------------------------------------ reading

    def article_text(self, article_id: str) -> str:
        rows = self.query("SELECT text FROM articles WHERE id = ?", (article_id,))
        return rows[0][0] if rows else ""

    def article(self, article_id: str) -> dict | None:
        """All stored fields of one article (text included), or None."""
        rows = self.query("SELECT * FROM articles WHERE id = ?", (article_id,))
        return dict(rows[0]) if rows else None

    def articles(self) -> list[dict]:
        """Every article's metadata and chunk count, newest first (no text)."""
        rows = self.query(
            "SELECT a.id, a.path, a.title, a.source, a.published, a.url, a.author, a.category,"
            " (SELECT COUNT(*) FROM chunks c WHERE c.article_id = a.id) AS chunks"
            " FROM articles a ORDER BY a.published DESC, a.title"
        )
        return [dict(r) for r in rows]

    def sentences(self, article_id: str, first: int, last: int) -> list[SentenceRow]:
        """Sentences first..last (inclusive) of an article, with their vectors."""
        rows = self.query(
            'SELECT position, start, "end", vector FROM sentences WHERE article_id = ? AND position BETWEEN ? AND ?'
            " ORDER BY position",
            (article_id, first, last),
        )
        return [
            SentenceRow(r[0], r[1], r[2], np.frombuffer(r[3], dtype=SENTENCE_DTYPE).astype(np.float32)) for r in rows
        ]

    def chunk_metadata(self) -> list[tuple[int, str, str]]:
        """(chunk id, outlet, publication date) of every chunk, by id."""
        rows = self.query(
            "SELECT c.id, a.source, a.published FROM chunks c JOIN articles a ON a.id = c.article_id ORDER BY c.id"
        )
        return [(r[0], r[1] or "", r[2] or "") for r in rows]

    def chunks(self, chunk_ids: list[int]) -> dict[int, sqlite3.Row]:
        """Chunks by id, each with its article's title, outlet, date, url and path."""
        found = {}
        for start in range(0, len(chunk_ids), SQL_BATCH):
            batch = chunk_ids[start : start + SQL_BATCH]
            marks = ",".join("?" * len(batch))
            rows = self.query(
                'SELECT c.id, c.article_id, c.text, c.start, c."end", c.first_sentence, c.last_sentence,'
                " a.title, a.source, a.published, a.url, a.path"
                f" FROM chunks c JOIN articles a ON a.id = c.article_id WHERE c.id IN ({marks})",
                batch,
            )
            found.update((r["id"], r) for r in rows)
        return found

    def chunk_ids(self) -> list[int]:
        return [r[0] for r in self.query("SELECT id FROM chunks ORDER BY id")]

    def counts(self) -> dict[str, int]:
        return {
            table: self.query(f"SELECT COUNT(*) FROM {table}")[0][0]
            for table in ("articles", "chunks", "sentences")
        }

    def stats(self) -> dict:
        """What `rag stats` and the UI show: counts, model, size on disk, last build."""
        manifest = self.manifest or {}
        last = self.meta("last_build")
        return {
            **self.counts(),
            "model": manifest.get("model"),
            "dimension": manifest.get("dimension"),
            "chunking": manifest.get("chunking"),
            "index_bytes": self.size_on_disk(),
            "last_build": datetime.fromtimestamp(float(last)).isoformat(timespec="seconds") if last else None,
            "last_report": self.meta("last_report"),
        }

    def size_on_disk(self) -> int:
        return sum(p.stat().st_size for p in self.dir.rglob("*") if p.is_file())


def _free_bytes(path: Path) -> int:
    """Free space on the file system holding `path` (or its nearest existing parent)."""
    for folder in (path, *path.absolute().parents):
        if folder.exists():
            try:
                return shutil.disk_usage(folder).free
            except OSError:
                return 1 << 62
    return 1 << 62


def _remove(path: Path) -> None:
    """Delete a file or a folder, if there is one."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _fingerprint(path: Path) -> dict:
    """Size and SHA-256 of a file, or of a folder's files (names included)."""
    digest = hashlib.sha256()
    size = 0
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(file.relative_to(path).as_posix().encode() + b"\0" if path.is_dir() else b"")
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
                size += len(block)
    return {"bytes": size, "sha256": digest.hexdigest()}
