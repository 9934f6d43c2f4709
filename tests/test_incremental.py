"""An incremental build always reaches the state a clean build of the same corpus
has: checked on random sequences of add / edit / move / delete / duplicate / touch
(seeded, small articles), and on the duplicate whose twin is deleted (issue 17)."""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path

import pytest
from conftest import assert_consistent

from rag.build import Builder, Reading, plan
from rag.ingest import Article
from rag.settings import Settings
from rag.store import IndexStore

URLS = [f"https://news.example/{slug}" for slug in ("rail", "wheat", "ports", "power")]
NAMES = ["a.json", "b.jsonl", "c.txt", "d.json", "m/e.jsonl", "m/f.txt", "z.json", "0.txt"]
WORDS = "river bridge harbour council budget grain tunnel station ferry market school hospital".split()


def snapshot(index: Path) -> dict:
    """Everything a question could see: articles (path, hash, text) and chunks."""
    store = assert_consistent(index)  # FAISS ids == chunk ids, every article whole
    try:
        articles = [tuple(r) for r in store.db.execute("SELECT id, path, hash, title, text FROM articles ORDER BY id")]
        chunks = [tuple(r) for r in store.db.execute("SELECT article_id, position, text FROM chunks ORDER BY article_id, position")]
        sentences = [tuple(r) for r in store.db.execute('SELECT article_id, position, start, "end" FROM sentences ORDER BY article_id, position')]
    finally:
        store.close()
    return {"articles": articles, "chunks": chunks, "sentences": sentences}


class Corpus:
    """A small corpus changed at random; every write gets a new modification time
    (file systems keep times at a coarse tick: two writes of one size within it
    would look unchanged to any size-and-time check, ours and make's alike)."""

    def __init__(self, folder: Path, rng: random.Random):
        self.folder, self.rng, self.clock = folder, rng, 1_700_000_000 * 10**9

    def files(self) -> list[str]:
        return sorted(p.relative_to(self.folder).as_posix() for p in self.folder.rglob("*") if p.is_file())

    def write(self, name: str, data: str) -> None:
        path = self.folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(data)
        self.clock += 10**9
        os.utime(path, ns=(self.clock, self.clock))

    def record(self) -> dict:
        rng = self.rng
        topic = " ".join(rng.sample(WORDS, 2))
        record = {
            "title": f"The {topic} report",
            "body": f"The {topic} plan was discussed on day {rng.randint(1, 9)}. Officials said the {rng.choice(WORDS)} would open soon.",
        }
        if rng.random() < 0.8:
            record["url"] = rng.choice(URLS)  # few urls: duplicates and moves happen often
        return record

    def content(self, name: str) -> str:
        if name.endswith(".txt"):
            return self.record()["body"] + "\n"
        records = [self.record() for _ in range(self.rng.randint(1, 2))]
        if name.endswith(".jsonl"):
            return "".join(json.dumps(r) + "\n" for r in records)
        return json.dumps(records if len(records) > 1 else records[0])

    def step(self) -> str:
        rng, files = self.rng, self.files()
        free = [n for n in NAMES if n not in files]
        operation = rng.choice(["add", "edit", "move", "delete", "duplicate", "touch"] if files else ["add"])
        if operation in {"move", "duplicate", "add"} and not free:
            operation = "edit"
        if operation == "add":
            name = rng.choice(free)
            self.write(name, self.content(name))
            return f"add {name}"
        name = rng.choice(files)
        path = self.folder / name
        if operation == "edit":
            self.write(name, self.content(name))
        elif operation == "touch":
            self.write(name, path.read_text())
        elif operation == "delete":
            path.unlink()
        else:  # move or duplicate, to a name of the same kind (so that it still parses)
            same_kind = [n for n in free if Path(n).suffix == path.suffix] or [n for n in free if n.endswith(".txt")]
            if not same_kind:
                return "nothing"
            target = rng.choice(same_kind)
            data = path.read_text() if Path(target).suffix == path.suffix else self.content(target)
            if operation == "move":
                path.unlink()
            self.write(target, data)
            name = f"{name} -> {target}"
        return f"{operation} {name}"


@pytest.mark.parametrize("seed", [1, 2])
def test_incremental_builds_match_clean_builds(tmp_path, embedder, seed):
    rng = random.Random(seed)
    folder = tmp_path / "corpus"
    folder.mkdir()
    corpus = Corpus(folder, rng)
    incremental = Settings(corpus_dir=folder, index_dir=tmp_path / "incremental")
    clean = Settings(corpus_dir=folder, index_dir=tmp_path / "clean")
    history = []
    for _ in range(30):
        history.append(corpus.step())
        Builder(incremental, embedder=embedder)()
        shutil.rmtree(clean.index_dir, ignore_errors=True)
        Builder(clean, embedder=embedder)(full=True)
        assert snapshot(incremental.index_dir) == snapshot(clean.index_dir), history
    nothing = Builder(incremental, embedder=embedder)()
    assert (nothing.added, nothing.updated, nothing.removed, nothing.chunks_embedded) == (0, 0, 0, 0)


def test_a_duplicate_is_indexed_once_its_twin_is_deleted(tmp_path, embedder):
    folder = tmp_path / "corpus"
    folder.mkdir()
    record = {"title": "Twin", "body": "A story told twice, about ferries crossing the bay.", "url": "https://x/twin"}
    (folder / "a.json").write_text(json.dumps(record))
    (folder / "b.json").write_text(json.dumps({**record, "body": "The same story, told by a second outlet."}))
    (folder / "c.txt").write_text("Another story, about schools opening on Monday in the north.\n")
    settings = Settings(corpus_dir=folder, index_dir=tmp_path / "index")
    first = Builder(settings, embedder=embedder)()
    assert first.added == 2 and [s.path for s in first.skipped] == ["b.json"]
    (folder / "a.json").unlink()
    report = Builder(settings, embedder=embedder)()
    assert (report.updated, report.unchanged, report.removed) == (1, 1, 0)
    store = IndexStore(settings.index_dir)
    assert tuple(store.db.execute("SELECT path, text FROM articles WHERE id = 'https://x/twin'").fetchone()) == (
        "b.json",
        "The same story, told by a second outlet.",
    )
    store.close()


def test_a_new_file_earlier_in_the_corpus_takes_an_id_over_as_a_clean_build_would(tmp_path, embedder):
    folder = tmp_path / "corpus"
    folder.mkdir()
    record = {"title": "Owner", "body": "The story of the harbour, first told in z.json.", "url": "https://x/owner"}
    (folder / "z.json").write_text(json.dumps(record))
    settings = Settings(corpus_dir=folder, index_dir=tmp_path / "index")
    Builder(settings, embedder=embedder)()
    (folder / "a.json").write_text(json.dumps({**record, "body": "The story of the harbour, now in a.json."}))
    report = Builder(settings, embedder=embedder)()
    assert [s.path for s in report.skipped] == ["z.json"] and report.updated == 1
    store = IndexStore(settings.index_dir)
    assert [tuple(r) for r in store.db.execute("SELECT path FROM articles")] == [("a.json",)]
    store.close()
    again = Builder(settings, embedder=embedder)()  # z.json is read again and is still the duplicate
    assert [s.path for s in again.skipped] == ["z.json"] and (again.updated, again.unchanged) == (0, 1)


def test_plan_is_pure_and_follows_corpus_order():
    a = Article(id="u", path="a.json", text="From a.")
    reading = Reading(order={"a.json": 0, "b.json": 1}, parsed=[("a.json", [a])], file_rows={"a.json": (1, 1, "h")}, unchanged={"b.json"})
    todo = plan(reading, {"u": ("b.json", "old")}, indexed=1)
    assert [p.article for p in todo.pending] == [a] and todo.pending[0].replaces
    assert todo.forget == {"b.json"} and todo.file_rows == {"a.json": (1, 1, "h")}
    assert (todo.updated, todo.unchanged, todo.removed) == (1, 0, [])
    later = Reading(order={"a.json": 1, "b.json": 0}, parsed=[("a.json", [a])], file_rows={"a.json": (1, 1, "h")}, unchanged={"b.json"})
    todo = plan(later, {"u": ("b.json", "old")}, indexed=1)
    assert todo.pending == [] and todo.file_rows == {} and [s.path for s in todo.skipped] == ["a.json"]
