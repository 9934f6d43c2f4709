"""The merge decision on plain lists (as tantivy tests its log_merge_policy): no
index, no files, only the segments' numbers and the steps that come out."""

from __future__ import annotations

import pytest

from rag.segments import MergeStep, SegmentStats, compact_plan, merge_plan


def seg(first: int, last: int, chunks: int | None = None, live: int | None = None) -> SegmentStats:
    """A segment of ids first..last, all of them written and live unless told."""
    chunks = last - first + 1 if chunks is None else chunks
    return SegmentStats(first, last, chunks, chunks if live is None else live)


def steps(plan: list[MergeStep]) -> list[tuple]:
    """A plan as (action, ranges replaced, range written)."""
    return [(s.action, [(o.first, o.last) for o in s.replaces], (s.first, s.last)) for s in plan]


CASES = [
    # (what, segments, unsegmented chunks, newest chunk id, expected steps)
    ("no segments, nothing new", [], 0, 0, []),
    ("one segment, nothing new", [seg(0, 99)], 0, 99, []),
    ("first build: its chunks become the first segment", [], 50, 49, [("write", [], (0, 49))]),
    ("a big segment is left alone, the new one kept apart", [seg(0, 999)], 10, 1009, [("write", [], (1000, 1009))]),
    (
        "a tiny new segment merges into a small one",
        [seg(0, 19)],
        10,
        29,
        [("write", [], (20, 29)), ("merge", [(0, 19), (20, 29)], (0, 29))],
    ),
    (
        "merges cascade while the older one is at most MERGE_RATIO times the newer",
        [seg(0, 399), seg(400, 499), seg(500, 529)],
        10,
        539,
        [
            ("write", [], (530, 539)),
            ("merge", [(500, 529), (530, 539)], (500, 539)),
            ("merge", [(400, 499), (500, 539)], (400, 539)),
            ("merge", [(0, 399), (400, 539)], (0, 539)),
        ],
    ),
    (
        "the cascade stops at a segment more than MERGE_RATIO times the newer",
        [seg(0, 999), seg(1000, 1029)],
        10,
        1039,
        [("write", [], (1030, 1039)), ("merge", [(1000, 1029), (1030, 1039)], (1000, 1039))],
    ),
    (
        "exactly MERGE_RATIO times: merged",
        [seg(0, 39)],
        10,
        49,
        [("write", [], (40, 49)), ("merge", [(0, 39), (40, 49)], (0, 49))],
    ),
    (
        "a segment with no live chunk is dropped",
        [seg(0, 999), seg(1000, 1009, live=0)],
        0,
        999,
        [("drop", [(1000, 1009)], (1000, 1009))],
    ),
    (
        "a dropped newest segment's range goes to the new chunks",
        [seg(0, 999), seg(1000, 1009, live=0)],
        5,
        1014,
        [("drop", [(1000, 1009)], (1000, 1009)), ("write", [], (1000, 1014))],
    ),
    (
        "one with fewer than half its chunks live is rewritten, then merged as any",
        [seg(0, 999), seg(1000, 1099, live=40)],
        0,
        1099,
        [("rewrite", [(1000, 1099)], (1000, 1099))],
    ),
    (
        "a rewritten segment counts its live chunks only",
        [seg(0, 159, live=70), seg(160, 179)],
        0,
        179,
        [("rewrite", [(0, 159)], (0, 159)), ("merge", [(0, 159), (160, 179)], (0, 179))],
    ),
    (
        "half live is not rewritten, and its live chunks decide the merge",
        [seg(0, 99, live=50), seg(100, 109)],
        0,
        109,
        [],
    ),
    (
        "every segment emptied: all dropped, nothing written",
        [seg(0, 9, live=0), seg(10, 19, live=0)],
        0,
        0,
        [("drop", [(0, 9)], (0, 9)), ("drop", [(10, 19)], (10, 19))],
    ),
]


@pytest.mark.parametrize(("segments", "unsegmented", "newest", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_merge_plan(segments, unsegmented, newest, expected):
    assert steps(merge_plan(segments, unsegmented, newest)) == expected


def test_the_ratio_is_a_parameter():
    segments = [seg(0, 99), seg(100, 109)]
    assert steps(merge_plan(segments, ratio=4)) == []
    assert steps(merge_plan(segments, ratio=10)) == [("merge", [(0, 99), (100, 109)], (0, 109))]


COMPACT_CASES = [
    ("no segments", [], []),
    ("one segment, all live: nothing to do", [seg(0, 99)], []),
    ("one segment with removed chunks is rewritten", [seg(0, 99, live=90)], [("compact", [(0, 99)], (0, 99))]),
    ("several become one", [seg(0, 99), seg(100, 109)], [("compact", [(0, 99), (100, 109)], (0, 109))]),
]


@pytest.mark.parametrize(("segments", "expected"), [c[1:] for c in COMPACT_CASES], ids=[c[0] for c in COMPACT_CASES])
def test_compact_plan(segments, expected):
    assert steps(compact_plan(segments)) == expected
