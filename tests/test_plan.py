"""The build's plan (rag/build.py `plan`) on plain values: what a build found in the
corpus, what the index holds, and what it does about it. No files, no database."""

from __future__ import annotations

import pytest

from rag.build import Reading, plan
from rag.ingest import Article

ROW = (10, 1, "sha")
"""A file's (size, mtime_ns, sha256) as read: its value does not matter here."""


def art(aid: str, path: str, text: str = "Some text.") -> Article:
    return Article(id=aid, path=path, text=text)


def stored(*articles: Article) -> dict[str, tuple[str, str]]:
    """The index's (path, hash) of these articles."""
    return {a.id: (a.path, a.hash) for a in articles}


def reading(order: list[str], parsed: dict[str, list[Article]] | None = None, unchanged=(), unreadable=()) -> Reading:
    """Files in corpus order; those `parsed` (new or changed) were read whole and are recorded."""
    parsed = parsed or {}
    return Reading(
        {path: i for i, path in enumerate(order)},
        parsed=list(parsed.items()),
        file_rows={path: ROW for path in parsed},
        unchanged=set(unchanged),
        keep_indexed=set(unreadable),
    )


def outcome(result) -> dict:
    return {
        "embed": [(p.article.id, p.article.path, p.replaces) for p in result.pending],
        "remove": sorted(result.removed),
        "record": sorted(result.file_rows),
        "forget": sorted(result.forget),
        "skipped": [(s.path, s.reason) for s in result.skipped],
        "counts": (result.added, result.updated, result.unchanged),
    }


def expect(embed=(), remove=(), record=(), forget=(), skipped=(), counts=(0, 0, 0)) -> dict:
    return {
        "embed": list(embed),
        "remove": sorted(remove),
        "record": sorted(record),
        "forget": sorted(forget),
        "skipped": list(skipped),
        "counts": counts,
    }


A_OLD, A_NEW = art("a", "a.txt", "Old text."), art("a", "a.txt", "New text.")
X, Y, W = art("story", "x.json"), art("story", "y.json"), art("story", "w.json")

CASES = [
    # (what, reading, stored, articles in the index, expected)
    ("empty corpus, empty index", reading([]), {}, 0, expect()),
    (
        "a new file: its article embedded, the file recorded",
        reading(["a.txt"], {"a.txt": [A_NEW]}),
        {},
        0,
        expect(embed=[("a", "a.txt", False)], record=["a.txt"], counts=(1, 0, 0)),
    ),
    (
        "an unchanged file is not read and its article stays",
        reading(["a.txt"], unchanged=["a.txt"]),
        {},
        1,
        expect(counts=(0, 0, 1)),
    ),
    (
        "an edited file: its article replaced",
        reading(["a.txt"], {"a.txt": [A_NEW]}),
        stored(A_OLD),
        1,
        expect(embed=[("a", "a.txt", True)], record=["a.txt"], counts=(0, 1, 0)),
    ),
    (
        "a file touched but the same: nothing embedded",
        reading(["a.txt"], {"a.txt": [A_OLD]}),
        stored(A_OLD),
        1,
        expect(record=["a.txt"], counts=(0, 0, 1)),
    ),
    (
        "a vanished file: its article removed",
        reading([]),
        stored(A_OLD),
        1,
        expect(remove=["a"]),
    ),
    (
        "moved: an article id now in another file is replaced, not removed",
        reading(["y.json"], {"y.json": [Y]}),
        stored(X),
        1,
        expect(embed=[("story", "y.json", True)], record=["y.json"], counts=(0, 1, 0)),
    ),
    (
        "duplicate ids in two new files: the first in corpus order wins, the other is not recorded",
        reading(["x.json", "y.json"], {"x.json": [X], "y.json": [Y]}),
        {},
        0,
        expect(
            embed=[("story", "x.json", False)],
            record=["x.json"],
            skipped=[("y.json", "duplicate article id 'story' (also in x.json)")],
            counts=(1, 0, 0),
        ),
    ),
    (
        "a new copy of an article an earlier unchanged file holds is skipped",
        reading(["x.json", "y.json"], {"y.json": [Y]}, unchanged=["x.json"]),
        stored(X),
        1,
        expect(skipped=[("y.json", "duplicate article id 'story' (also in x.json)")], counts=(0, 0, 1)),
    ),
    (
        "a new file earlier in the corpus takes the id over; the unchanged twin is read again next build",
        reading(["w.json", "x.json"], {"w.json": [W]}, unchanged=["x.json"]),
        stored(X),
        1,
        expect(
            embed=[("story", "w.json", True)],
            record=["w.json"],
            forget=["x.json"],
            skipped=[("x.json", "duplicate article id 'story' (also in w.json)")],
            counts=(0, 1, 0),
        ),
    ),
    (
        "twin deleted: the copy left takes its article over",
        reading(["y.json"], {"y.json": [Y]}),
        stored(X),
        1,
        expect(embed=[("story", "y.json", True)], record=["y.json"], counts=(0, 1, 0)),
    ),
    (
        "broken: a file that held articles and now yields none keeps them",
        reading(["a.txt"], {"a.txt": []}),
        stored(A_OLD),
        1,
        expect(record=["a.txt"]),
    ),
    (
        "unreadable: a file that cannot be read keeps its articles",
        reading(["a.txt"], unreadable=["a.txt"]),
        stored(A_OLD),
        1,
        expect(),
    ),
    (
        "a new file that yields no article is recorded, and nothing else happens",
        reading(["empty.txt"], {"empty.txt": []}),
        {},
        0,
        expect(record=["empty.txt"]),
    ),
]


@pytest.mark.parametrize(("found", "index", "indexed", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_plan(found, index, indexed, expected):
    assert outcome(plan(found, index, indexed)) == expected
