"""Damaged, foreign or misplaced index files and a full disk: every command says what
is wrong in one line (no traceback), loses nothing, and `rag build` (or, for the
database, `rag build --full`) repairs it."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SAMPLE, article_text, tmpfs

from rag import cli
from rag.build import Builder
from rag.errors import DATABASE, DiskFull, IndexDamaged, explain
from rag.pipeline import Pipeline
from rag.settings import Settings
from rag.store import IndexStore

QUESTION = "Why did Russia-Turkey ties sour?"
SOURED = "Ties between Moscow and Ankara soured"


@pytest.fixture(scope="module")
def built(tmp_path_factory, embedder) -> Settings:
    root = tmp_path_factory.mktemp("damage")
    corpus = root / "corpus"
    corpus.mkdir()
    shutil.copy(SAMPLE, corpus / SAMPLE.name)
    (corpus / "wheat.txt").write_text(article_text("wheat harvest"))
    settings = Settings(corpus_dir=corpus, index_dir=root / "index")
    Builder(settings, embedder=embedder)()
    return settings


@pytest.fixture
def fresh(built, tmp_path) -> Settings:
    """A copy of the built index (and its corpus) to damage."""
    shutil.copytree(built.index_dir, tmp_path / "index")
    shutil.copytree(built.corpus_dir, tmp_path / "corpus")
    return Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")


def rag(*args):
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], capture_output=True, text=True, timeout=300)


def said(result, code: int, *words: str) -> str:
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == code, (result.returncode, result.stderr)
    for word in words:
        assert word in result.stderr, result.stderr
    return result.stderr


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def cites(settings: Settings, embedder) -> Pipeline:
    pipeline = Pipeline(settings, embedder=embedder)
    answer = pipeline.ask(QUESTION)
    assert any(c.sentence.startswith(SOURED) for c in answer.citations), answer.text
    return pipeline


# ---------------------------------------------------------------------- not an index


def other_program(folder: Path, schema: str) -> Path:
    folder.mkdir()
    db = sqlite3.connect(folder / DATABASE)
    db.executescript(schema)
    db.commit()
    db.close()
    return folder / DATABASE


@pytest.mark.parametrize(
    "schema",
    [
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users (name) VALUES ('ann');",
        # Same table names as ours in part: still not ours.
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT); CREATE TABLE orders (id INTEGER);"
        "INSERT INTO meta VALUES ('owner', 'billing');",
        "PRAGMA application_id = 1234; CREATE TABLE articles (id TEXT);",
        # Every table name one of ours, no manifest row: taken for an old index before.
        "CREATE TABLE files (path TEXT, owner TEXT); CREATE TABLE articles (id TEXT, body TEXT);"
        "INSERT INTO files VALUES ('/etc/x', 'ann'); INSERT INTO articles VALUES ('a1', 'their text');",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT); INSERT INTO meta VALUES ('manifest', 'theirs');",
    ],
)
def test_another_programs_database_is_refused_and_left_untouched(tmp_path, fresh, schema):
    database = other_program(tmp_path / "theirs", schema)
    before = digest(database)
    folder = str(database.parent)
    said(rag("stats", "--index", folder), 2, "is not a rag-news index", "left untouched")
    said(rag("ask", "--index", folder, QUESTION), 2, "is not a rag-news index")
    said(rag("build", "--index", folder, "--corpus", str(fresh.corpus_dir), "--quiet"), 2, "is not a rag-news index")
    said(rag("build", "--full", "--index", folder, "--corpus", str(fresh.corpus_dir), "--quiet"), 2, "not a rag-news index")
    assert digest(database) == before
    assert sorted(p.name for p in database.parent.iterdir() if p.name != "build.lock") == [DATABASE]


def test_a_file_that_is_not_sqlite_is_deleted_only_when_it_is_provably_ours(tmp_path, fresh):
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / DATABASE).write_bytes(b"their notes, not SQLite\n" * 100)
    before = digest(theirs / DATABASE)
    said(rag("build", "--full", "--index", str(theirs), "--corpus", str(fresh.corpus_dir), "--quiet"), 2, "left untouched")
    assert digest(theirs / DATABASE) == before
    # The same bytes beside the manifest.json our builds write: our index, damaged; rebuilt.
    garbage = fresh.index_dir / DATABASE
    garbage.write_bytes(b"their notes, not SQLite\n" * 100)
    said(rag("build", "--full", "--index", str(fresh.index_dir), "--corpus", str(fresh.corpus_dir), "--quiet"), 0)
    assert IndexStore(fresh.index_dir).article_count() == 2


def test_an_index_written_before_the_application_id_is_recognised(tmp_path, fresh):
    from rag.database import SCHEMA

    old = tmp_path / "old"
    old.mkdir()
    db = sqlite3.connect(old / DATABASE)
    db.executescript(SCHEMA)  # no application id, as format 1 wrote them
    db.execute("INSERT INTO meta VALUES ('manifest', ?)", ('{"format_version": 1, "model": "m", "dimension": 384, "chunking": {}}',))
    db.commit()
    db.close()
    said(rag("build", "--index", str(old), "--corpus", str(fresh.corpus_dir), "--quiet"), 2, "rag build --full")
    said(rag("build", "--full", "--index", str(old), "--corpus", str(fresh.corpus_dir), "--quiet"), 0)
    store = IndexStore(old)
    assert store.article_count() == 2 and store.db.execute("PRAGMA application_id").fetchone()[0] != 0


def test_index_that_is_a_file_is_refused(tmp_path, fresh):
    target = tmp_path / "notes.txt"
    target.write_text("my notes")
    for args in (["stats"], ["ask", QUESTION], ["build", "--corpus", str(fresh.corpus_dir), "--quiet"]):
        said(rag(*args, "--index", str(target)), 2, "is a file, not an index folder")
    # A folder below a file cannot be made: said, not a traceback.
    said(rag("build", "--corpus", str(fresh.corpus_dir), "--index", str(target / "sub"), "--quiet"), 2, "Not a directory")
    assert target.read_text() == "my notes"


# ---------------------------------------------------------------------- derived files


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def scramble(path: Path) -> None:
    """Same size, different bytes in the middle (loads fine, answers wrongly)."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(255 - b for b in data[middle : middle + 64])
    path.write_bytes(bytes(data))


def vectors(index: Path) -> Path:
    return next(index.glob("seg-*.faiss"))


def bm25(index: Path) -> Path:
    return next(p for p in index.glob("seg-*.bm25") if p.is_dir())


DAMAGE = {
    "faiss truncated": lambda index: truncate(vectors(index)),
    "faiss scrambled": lambda index: scramble(vectors(index)),
    "faiss empty": lambda index: vectors(index).write_bytes(b""),
    "faiss garbage": lambda index: vectors(index).write_bytes(os.urandom(5000)),
    "bm25 file truncated": lambda index: truncate(max(bm25(index).iterdir(), key=lambda p: p.stat().st_size)),
    "bm25 file deleted": lambda index: next(bm25(index).glob("*.npy")).unlink(),
    "bm25 ids garbage": lambda index: (bm25(index) / "chunk_ids.json").write_text("[1, 2,"),
    "bm25 vocab scrambled": lambda index: scramble(bm25(index) / "vocab.index.json"),
    "bm25 replaced by a file": lambda index: replace_with_file(bm25(index)),
    "faiss replaced by a folder": lambda index: replace_with_folder(vectors(index)),
}


def replace_with_file(folder: Path) -> None:
    shutil.rmtree(folder)
    folder.write_text("not a folder")


def replace_with_folder(file: Path) -> None:
    file.unlink()
    file.mkdir()
    (file / "x").write_text("x")


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_derived_files_are_reported_survived_and_repaired(fresh, embedder, damage):
    DAMAGE[damage](fresh.index_dir)
    stats = said(rag("stats", "--index", str(fresh.index_dir)), 0, "is damaged", "`rag build` rewrites it")
    # Answers still come, from vectors or BM25 rebuilt from the database in memory.
    pipeline = cites(fresh, embedder)
    assert pipeline.store.problems and "rebuilt from the database" in pipeline.store.problems[0]
    report = Builder(fresh, embedder=embedder)()
    assert report.repaired and report.repaired[0] in stats and "repaired" in report.summary()
    store = IndexStore(fresh.index_dir)
    assert store.segment_register.derived_problems() == []
    store.close()
    assert not cites(fresh, embedder).store.problems


def test_damaged_derived_files_through_the_cli(fresh):
    truncate(vectors(fresh.index_dir))
    (bm25(fresh.index_dir) / "chunk_ids.json").write_text("garbage")
    index = str(fresh.index_dir)
    result = rag("ask", "--index", index, QUESTION)
    said(result, 0, "segment seg-", ".faiss", "rebuilt from the database")
    assert SOURED in result.stdout
    build = rag("build", "--index", index, "--corpus", str(fresh.corpus_dir), "--quiet")
    said(build, 0)
    assert "repaired seg-" in build.stdout
    stats = rag("stats", "--index", index)
    assert "health:     ok" in stats.stdout and stats.stderr == ""


def test_stats_check_reads_every_byte_and_build_repairs_what_it_found(fresh, embedder):
    # Same size, and the modification time put back: only reading the file shows
    # it (bit rot, or a copy that kept the times). Opening and plain `rag stats`
    # trust size and time, so that they do not read a large index whole.
    path = vectors(fresh.index_dir)
    times = path.stat()
    scramble(path)
    os.utime(path, ns=(times.st_atime_ns, times.st_mtime_ns))
    index = str(fresh.index_dir)
    assert "health:     ok" in rag("stats", "--index", index).stdout
    said(rag("stats", "--index", index, "--check"), 0, "is damaged", "checksum differs", "`rag build` rewrites it")
    # What --check found is recorded: readers no longer use the file, and the
    # build it advises rewrites it (a quick look alone would still trust it).
    assert "health:     ok" not in rag("stats", "--index", index).stdout
    pipeline = cites(fresh, embedder)
    assert any(path.name in problem for problem in pipeline.store.problems)
    pipeline.close()  # else its snapshot, open until garbage-collected, holds the build's checkpoint 30 s
    report = Builder(fresh, embedder=embedder)()
    assert report.repaired == [path.name.removesuffix(".faiss")]
    assert "health:     ok" in rag("stats", "--index", index, "--check").stdout
    assert not cites(fresh, embedder).store.problems


# ---------------------------------------------------------------------- the database


def garbage_file(database: Path) -> None:
    database.write_bytes(os.urandom(database.stat().st_size))


def garbage_header(database: Path) -> None:
    with open(database, "r+b") as f:
        f.write(b"this is not sqlite" * 10)


def garbage_pages(database: Path) -> None:
    with open(database, "r+b") as f:
        f.seek(4096 * 2)
        f.write(b"\xde\xad\xbe\xef" * 2048)


@pytest.mark.parametrize("damage", [garbage_file, garbage_header, garbage_pages])
def test_damaged_database_is_reported_and_build_full_rebuilds_it(fresh, embedder, damage, capsys):
    damage(fresh.index_dir / DATABASE)
    index, corpus = str(fresh.index_dir), str(fresh.corpus_dir)
    hint = "Run `rag build --full` to rebuild it from the corpus folder"
    said(rag("stats", "--index", index), 2, "is damaged", hint)
    said(rag("build", "--index", index, "--corpus", corpus, "--quiet"), 2, "is damaged", hint)
    if damage is not garbage_pages:  # a damaged page is only met when it is read
        said(rag("ask", "--index", index, QUESTION), 2, "is damaged", hint)
        from ui.app import serve

        assert serve(fresh) == 2
        assert hint in capsys.readouterr().err
    said(rag("build", "--full", "--index", index, "--corpus", corpus, "--quiet"), 0)
    stats = rag("stats", "--index", index)
    assert "articles:   2" in stats.stdout and "health:     ok" in stats.stdout, stats.stdout + stats.stderr
    cites(fresh, embedder)


def test_sqlite_errors_are_explained():
    assert isinstance(explain(sqlite3.OperationalError("database or disk is full"), "index"), DiskFull)
    assert isinstance(explain(sqlite3.DatabaseError("file is not a database"), "index"), IndexDamaged)
    assert isinstance(explain(sqlite3.OperationalError("no such table: chunks"), "index"), IndexDamaged)
    assert explain(ValueError("something else"), "index") is None


# ---------------------------------------------------------------------- full disk


def test_disk_full_is_said_plainly_and_leftovers_go(fresh, embedder, monkeypatch, capsys):
    (fresh.corpus_dir / "ports.txt").write_text(article_text("ports dredging"))
    real_fsync = os.fsync

    def full(fd):  # the kernel's answer on a full disk, after the bytes were handed over
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    code = cli.main(["build", "--index", str(fresh.index_dir), "--corpus", str(fresh.corpus_dir), "--quiet"])
    err = capsys.readouterr().err
    assert code == cli.EXIT_ERROR, err
    assert "is full" in err and "No space left on device" in err and "Traceback" not in err
    assert not list(fresh.index_dir.glob("*.tmp"))  # the half-written file was removed at once
    monkeypatch.setattr(os, "fsync", real_fsync)
    # The articles were committed; the index still answers (vectors rebuilt from the database).
    pipeline = cites(fresh, embedder)
    assert any(a["path"] == "ports.txt" for a in pipeline.store.articles())
    # A build killed in the middle of a write leaves a half-written file: the next build removes it.
    (fresh.index_dir / "seg-90-99-10.faiss.tmp").write_bytes(b"half a vector file")
    (fresh.index_dir / "seg-90-99-10.bm25.tmp").mkdir()
    (fresh.index_dir / "seg-90-99-10.bm25.tmp" / "vocab.index.json").write_text("{")
    (fresh.index_dir / "manifest.json.tmp").write_text("{")
    Builder(fresh, embedder=embedder)()
    assert not list(fresh.index_dir.glob("*.tmp"))
    store = IndexStore(fresh.index_dir)
    assert store.segment_register.derived_problems() == []
    store.close()


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MB tmpfs: a real full disk."""
    with tmpfs(tmp_path / "disk", "4m") as disk:
        yield disk


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as err:
            assert err.errno == errno.ENOSPC
    return filler


def test_a_really_full_disk(fresh, small_disk):
    index = small_disk / "index"
    shutil.copytree(fresh.index_dir, index)
    (fresh.corpus_dir / "ports.txt").write_text(article_text("ports dredging", n=40))
    filler = fill(small_disk)
    args = ["build", "--index", str(index), "--corpus", str(fresh.corpus_dir), "--quiet"]
    said(rag(*args), 2, "is full", "Free some space")
    filler.unlink()
    result = rag(*args)
    said(result, 0)
    assert "1 added" in result.stdout and not list(index.glob("*.tmp"))
    stats = rag("stats", "--index", str(index))
    assert "articles:   3" in stats.stdout and "health:     ok" in stats.stdout, stats.stdout + stats.stderr
