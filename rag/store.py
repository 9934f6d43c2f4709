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

import json
import os
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


class StoreError(Exception):
    """Base for index problems the user can act on."""


class IndexMismatch(StoreError):
    """The index was built with other settings than the ones in use."""


class IndexMissing(StoreError):
    """No index where one was expected."""


SENTENCE_DTYPE = np.float16
"""Sentence vectors on disk: half the bytes of float32, and the SQuAD dev
answer-sentence hit was the same to three decimals (docs/evaluation.md)."""


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
        if not path.exists() and not create:
            raise IndexMissing(f"no index in {self.dir}/: run `rag build` first")
        self.dir.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are begun and committed explicitly.
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("PRAGMA foreign_keys=ON")
        if create:
            self.db.executescript(SCHEMA)
        # One connection serves every thread (a snapshot must be one connection's);
        # statements on it take turns, each one short.
        self._lock = threading.RLock()
        if snapshot:
            self.db.execute("BEGIN")
            self.db.execute("SELECT COUNT(*) FROM meta").fetchone()  # the read starts the snapshot
        self._vectors: faiss.Index | None = None
        self._lexical: LexicalIndex | None = None

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
        for start in range(0, len(article_ids), 500):
            batch = article_ids[start : start + 500]
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
        """FAISS index matching the database: loaded from its file, else rebuilt from SQLite."""
        if self._vectors is None:
            path = self._vectors_path(self.generation)
            if path.exists():
                self._vectors = faiss.read_index(str(path))
            else:
                self._vectors = self._rebuild_vectors()
        return self._vectors

    def _rebuild_vectors(self) -> faiss.Index:
        manifest = self.manifest or {}
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(int(manifest.get("dimension", 384))))
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
            if (path / "chunk_ids.json").exists():
                self._lexical = LexicalIndex.load(path)
            else:
                rows = self.query(
                    "SELECT c.id, a.title, a.source, c.text FROM chunks c JOIN articles a ON a.id = c.article_id"
                    " ORDER BY c.id"
                )
                self._lexical = LexicalIndex.build([r[0] for r in rows], [f"{r[1]}\n{r[2]}\n{r[3]}" for r in rows])
        return self._lexical

    def _lexical_path(self, generation: int) -> Path:
        return self.dir / f"bm25-{generation}"

    def save_derived(self) -> None:
        """Write the FAISS file and the BM25 folder for the current generation
        (each atomically, by rename) and drop those of older generations."""
        generation = self.generation
        vectors = self._vectors_path(generation)
        if not vectors.exists():
            tmp = vectors.with_suffix(".tmp")
            faiss.write_index(self.vectors, str(tmp))
            _fsync(tmp)
            os.replace(tmp, vectors)
        lexical = self._lexical_path(generation)
        if not lexical.exists():
            self._lexical = None  # chunks changed since it was loaded
            tmp = lexical.with_name(lexical.name + ".tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            self.lexical.save(tmp)
            os.replace(tmp, lexical)
        for old in [*self.dir.glob("vectors-*.faiss"), *self.dir.glob("bm25-*")]:
            if old not in (vectors, lexical):
                shutil.rmtree(old) if old.is_dir() else old.unlink(missing_ok=True)

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
        for start in range(0, len(chunk_ids), 500):
            batch = chunk_ids[start : start + 500]
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


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
