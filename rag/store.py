"""The index on disk: SQLite as the source of truth, segments for search.

`rag.sqlite` holds articles, sentences with character offsets and vectors
(float16: read per question, never all in memory), chunks with their
embeddings, the files they came from, the manifest, and the list of segments.
Every change is an SQLite transaction, so a build killed at any moment leaves
either the old or the new state of each article, never half of one.

Search reads segments (rag/segment.py; their lifecycle: rag/segments.py): FAISS
and BM25 files for a range of chunk ids, written once by the build that added those chunks and never changed.
A segment's files are written before the transaction that registers it; chunks
no segment holds yet (a build stopped in between) are searched from the
database until the next build writes them. The chunk embeddings are kept in
the database as well as in the segments: merges, repairs of a damaged segment
and compaction read them from there, inside a transaction, instead of
re-embedding (see docs/scale.md for what that costs on disk). FAISS ids are
chunk ids.

The SQLite file itself (opening, snapshots, transactions, the write-ahead
log's checkpoint) is rag/database.py's `Database`, which `IndexStore` extends.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from rag.chunk import Chunk, Sentence
from rag.database import MANIFEST, Database
from rag.errors import IndexMismatch
from rag.ingest import Article
from rag.manifest import Manifest
from rag.segment import SegmentSet
from rag.segments import SegmentRegister, remove_path

SENTENCE_DTYPE = np.float16
"""Sentence vectors on disk: half the bytes of float32; rounding them to float16
moved question-sentence cosines by at most 3e-5 (200 MultiHop-RAG texts)."""

SQL_BATCH = 500
"""Ids per `IN (?, ...)` query: below SQLite's old limit of 999 parameters."""


@dataclass(frozen=True)
class SentenceRow:
    """A stored sentence: its place in the article and its vector."""

    position: int
    start: int
    end: int
    vector: np.ndarray


class IndexStore(Database):
    """Open (or create, with `create=True`) the index in `index_dir`."""

    def __init__(self, index_dir: Path | str, create: bool = False, snapshot: bool = False):
        """`snapshot=True` (for readers): every read sees the index as it was when
        the store was opened, whatever builds commit meanwhile (one SQLite read
        transaction, kept open until the store is closed)."""
        super().__init__(index_dir, create, snapshot)
        self.segment_register = SegmentRegister(self)

    # ------------------------------------------------------------ metadata

    def published_days(self) -> tuple[str, str]:
        """Days of the oldest and newest dated article ('' when none has a date)."""
        oldest, newest = self.query(
            "SELECT MIN(SUBSTR(published, 1, 10)), MAX(SUBSTR(published, 1, 10)) FROM articles WHERE published != ''"
        )[0]
        return oldest or "", newest or ""

    @property
    def manifest(self) -> dict | None:
        """The manifest as recorded (`Manifest.from_record` reads it; an older index's may lack fields)."""
        raw = self.meta("manifest")
        return json.loads(raw) if raw else None

    def check(self, expected: Manifest) -> None:
        """Raise `IndexMismatch` unless the index was built with the `expected`
        settings (`Manifest.mismatches`)."""
        actual = self.manifest
        if actual is None:
            return
        diffs = expected.mismatches(Manifest.from_record(actual))
        if not diffs:
            return
        raise IndexMismatch(
            f"the index in {self.dir}/ was built with other settings ({'; '.join(diffs)}). "
            "Run `rag build --full` to rebuild it."
        )

    def reset(self, manifest: Manifest) -> None:
        """Empty the index for a full rebuild, or start a new one (inside the caller's transaction)."""
        self.db.execute("DELETE FROM articles")
        self.db.execute("DELETE FROM files")
        self.db.execute("DELETE FROM segments")
        self.db.execute("DELETE FROM tombstones")
        self.set_meta("manifest", json.dumps(manifest.record(), sort_keys=True))
        self.segment_register.forget()

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

    def article_paths(self) -> set[str]:
        """The corpus files that indexed articles came from (read from an index, not the table)."""
        return {r[0] for r in self.query("SELECT DISTINCT path FROM articles")}

    def article_count(self) -> int:
        return self.query("SELECT COUNT(*) FROM articles")[0][0]

    def articles_where(self, paths: set[str], ids: list[str]) -> dict[str, tuple[str, str]]:
        """article id -> (path, hash) of the articles from `paths` and those with `ids`."""
        rows = self._rows_in("SELECT id, path, hash FROM articles", "path", sorted(paths))
        rows += self._rows_in("SELECT id, path, hash FROM articles", "id", ids)
        return {r["id"]: (r["path"], r["hash"]) for r in rows}

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
        return ids

    def remove_articles(self, article_ids: Iterable[str]) -> int:
        """Delete articles with their sentences and chunks; their chunks' vectors stay
        in the segments, hidden by tombstones, until a merge. Returns chunks removed."""
        article_ids = list(article_ids)
        chunk_ids: list[int] = []
        for start in range(0, len(article_ids), SQL_BATCH):
            batch = article_ids[start : start + SQL_BATCH]
            marks = ",".join("?" * len(batch))
            chunk_ids += [r[0] for r in self.db.execute(f"SELECT id FROM chunks WHERE article_id IN ({marks})", batch)]
            self.db.execute(f"DELETE FROM articles WHERE id IN ({marks})", batch)
        self.db.executemany("INSERT OR IGNORE INTO tombstones (chunk_id) VALUES (?)", [(i,) for i in chunk_ids])
        return len(chunk_ids)

    # ------------------------------------------------------------ segments

    @property
    def segments(self) -> SegmentSet:
        """Every chunk, searchable (`SegmentRegister.loaded`)."""
        return self.segment_register.loaded

    @property
    def problems(self) -> list[str]:
        """Damaged derived files found while loading (they were rebuilt in memory)."""
        return self.segment_register.problems

    def _rows_in(self, select: str, column: str, values: list) -> list[sqlite3.Row]:
        """Rows of `select ... WHERE column IN (values)`, asked `SQL_BATCH` values at a time."""
        rows = []
        for start in range(0, len(values), SQL_BATCH):
            batch = values[start : start + SQL_BATCH]
            rows += self.query(f"{select} WHERE {column} IN ({','.join('?' * len(batch))})", batch)
        return rows

    def _rows_of_chunks(self, select: str, chunk_ids: list[int]) -> list[sqlite3.Row]:
        """Rows of `select ... FROM chunks c JOIN articles a ...` for the given chunk ids."""
        return self._rows_in(f"{select} FROM chunks c JOIN articles a ON a.id = c.article_id", "c.id", chunk_ids)

    def chunk_vectors(self, chunk_ids: list[int]) -> dict[int, np.ndarray]:
        """Vectors of the given chunks, by id."""
        rows = self._rows_of_chunks("SELECT c.id, c.embedding", chunk_ids)
        return {r[0]: np.frombuffer(r[1], dtype=np.float32) for r in rows}

    def remove_leftovers(self) -> list[str]:
        """Delete what a failed or killed write left behind (`*.tmp` files and folders);
        only a build, holding the build lock, may call this."""
        removed = []
        for leftover in self.dir.glob("*.tmp"):
            remove_path(leftover)
            removed.append(leftover.name)
        return removed

    def write_manifest(self) -> None:
        """Readable copy of the manifest next to the database."""
        manifest = self.manifest
        if manifest is None:
            return
        # With the last build's time: a copy or reader of rag.sqlite alone can tell
        # it is older (`stale`). Written after the build's checkpoint.
        record = {**manifest, "last_build": self.meta("last_build")}
        tmp = self.dir / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
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

    def sources(self) -> list[str]:
        """Every outlet named by an article, once."""
        return [r[0] for r in self.query("SELECT DISTINCT source FROM articles WHERE source IS NOT NULL")]

    def chunk_ids_where(self, sources: Iterable[str] = (), date_from: str = "", date_to: str = "") -> np.ndarray:
        """Ids of the chunks of articles from any of `sources` (any case), published
        between the two ISO dates (inclusive; an article without a date is left out
        when either is given)."""
        conditions, params = [], []
        if sources:
            # Matched in Python: SQLite's LOWER() knows only ASCII letters.
            wanted = {s.lower() for s in sources}
            names = [name for name in self.sources() if name.lower() in wanted] or [""]
            conditions.append(f"a.source IN ({','.join('?' * len(names))})")
            params += names
        if date_from or date_to:
            conditions.append("COALESCE(a.published, '') != ''")
        if date_from:
            conditions.append("SUBSTR(a.published, 1, 10) >= ?")
            params.append(date_from[:10])
        if date_to:
            conditions.append("SUBSTR(a.published, 1, 10) <= ?")
            params.append(date_to[:10])
        rows = self.query(
            "SELECT c.id FROM chunks c JOIN articles a ON a.id = c.article_id"
            + (" WHERE " + " AND ".join(conditions) if conditions else ""),
            params,
        )
        return np.array([r[0] for r in rows], dtype=np.int64)

    def chunk_outlets_and_days(self, chunk_ids: list[int]) -> dict[int, tuple[str, str]]:
        """chunk id -> (its article's outlet, lower-cased; its publication day, ISO)."""
        rows = self._rows_of_chunks(
            "SELECT c.id, COALESCE(a.source, ''), SUBSTR(COALESCE(a.published, ''), 1, 10)", chunk_ids
        )
        return {r[0]: (r[1].lower(), r[2]) for r in rows}

    def chunks(self, chunk_ids: list[int]) -> dict[int, sqlite3.Row]:
        """Chunks by id, each with its article's title, outlet, date, url and path."""
        rows = self._rows_of_chunks(
            'SELECT c.id, c.article_id, c.text, c.start, c."end", c.first_sentence, c.last_sentence,'
            " a.title, a.source, a.published, a.url, a.path",
            chunk_ids,
        )
        return {r["id"]: r for r in rows}

    def chunk_ids(self) -> list[int]:
        return [r[0] for r in self.query("SELECT id FROM chunks ORDER BY id")]

    def chunk_count(self) -> int:
        return self.query("SELECT COUNT(*) FROM chunks")[0][0]

    def counts(self) -> dict[str, int]:
        return {
            table: self.query(f"SELECT COUNT(*) FROM {table}")[0][0]
            for table in ("articles", "chunks", "sentences", "segments", "tombstones")
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
