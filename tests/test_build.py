"""Incremental build: add / edit / delete reflected exactly, no duplicates, settings checked."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import article_text, assert_consistent
from filelock import FileLock

from rag.build import BuildBusy, Builder
from rag.embed import auto_backend
from rag.errors import IndexMismatch
from rag.store import IndexStore


def build(settings, embedder, full=False):
    return Builder(settings, embedder=embedder)(full=full)


def test_first_build_then_nothing_to_do(settings, embedder):
    first = build(settings, embedder)
    assert (first.added, first.chunks_embedded) == (1, first.chunks_total) and first.chunks_total >= 2
    second = build(settings, embedder)
    assert (second.added, second.updated, second.removed, second.unchanged, second.chunks_embedded) == (0, 0, 0, 1, 0)
    store = assert_consistent(settings.index_dir)
    assert store.counts()["articles"] == 1
    manifest = json.loads((settings.index_dir / "manifest.json").read_text())
    assert manifest.pop("last_build") == store.meta("last_build")  # (see IndexStore.stale)
    assert manifest == {
        "format_version": 3,
        "model": "all-MiniLM-L6-v2",
        "backend": auto_backend(),  # the default, `auto`, recorded as what it chose
        "dimension": 384,
        "chunking": {"chunk_tokens": 200, "chunk_overlap": 1},
        "sentence_vectors": "late",
    }


def test_add_edit_delete_are_reflected_exactly(settings, embedder, corpus):
    build(settings, embedder)
    (corpus / "ports.txt").write_text(article_text("ports"))
    report = build(settings, embedder)
    assert (report.added, report.unchanged) == (1, 1)
    assert 0 < report.chunks_embedded < report.chunks_total

    store = IndexStore(settings.index_dir)
    old_chunk_ids = {r[0] for r in store.db.execute("SELECT id FROM chunks WHERE article_id='ports.txt'")}
    store.close()
    (corpus / "ports.txt").write_text(article_text("harbours", n=8))
    report = build(settings, embedder)
    assert (report.added, report.updated, report.unchanged) == (0, 1, 1)
    store = assert_consistent(settings.index_dir)
    texts = " ".join(r[0] for r in store.db.execute("SELECT text FROM chunks WHERE article_id='ports.txt'"))
    assert "harbours" in texts and "ports" not in texts
    assert not old_chunk_ids & set(store.chunk_ids())
    store.close()

    (corpus / "ports.txt").unlink()
    report = build(settings, embedder)
    assert (report.removed, report.unchanged, report.chunks_embedded) == (1, 1, 0)
    store = assert_consistent(settings.index_dir)
    assert [r[0] for r in store.db.execute("SELECT id FROM articles")] == ["putin-condoles-erdogan-2017-02-09.txt"]


def test_unchanged_files_are_not_even_parsed_again(settings, embedder, corpus, monkeypatch):
    (corpus / "ports.txt").write_text(article_text("ports"))
    build(settings, embedder)
    build(settings, embedder)
    parsed = []
    import rag.build

    real = rag.build._safe_parse
    monkeypatch.setattr(rag.build, "_safe_parse", lambda raw, rel: parsed.append(rel) or real(raw, rel))
    for _ in range(2):
        report = build(settings, embedder)
        assert report.unchanged == 2 and parsed == []
    (corpus / "ports.txt").write_text(article_text("harbours"))
    build(settings, embedder)
    assert parsed == ["ports.txt"]


def test_touched_but_unchanged_file_is_not_re_embedded(settings, embedder, corpus):
    build(settings, embedder)
    path = next(corpus.iterdir())
    path.write_bytes(path.read_bytes())  # new mtime, same content
    report = build(settings, embedder)
    assert (report.unchanged, report.chunks_embedded) == (1, 0)


def test_vectors_match_a_fresh_encode(settings, embedder):
    build(settings, embedder)
    store = IndexStore(settings.index_dir)
    rows = store.db.execute("SELECT id, text FROM chunks ORDER BY id").fetchall()
    expected = embedder([r[1] for r in rows])
    stored = np.vstack([store.segments.vector(r[0]) for r in rows])
    assert np.allclose(stored, expected, atol=1e-5)
    assert np.allclose(np.linalg.norm(stored, axis=1), 1.0, atol=1e-5)


def test_duplicate_ids_are_skipped_not_indexed_twice(settings, embedder, corpus):
    record = {"title": "Same", "body": "One body about rivers and boats.", "url": "https://x/same"}
    (corpus / "a.json").write_text(json.dumps(record))
    (corpus / "b.json").write_text(json.dumps({**record, "body": "Another body."}))
    report = build(settings, embedder)
    assert report.added == 2
    assert any("duplicate article id" in s.reason for s in report.skipped)
    assert IndexStore(settings.index_dir).counts()["articles"] == 2


def test_an_article_moved_to_another_file_stays_indexed(settings, embedder, corpus):
    record = {"title": "Moved", "body": "A body about canals and locks that moves house.", "url": "https://x/moved"}
    (corpus / "a.jsonl").write_text(json.dumps(record) + "\n")
    build(settings, embedder)
    (corpus / "b.jsonl").write_text(json.dumps(record) + "\n")
    (corpus / "a.jsonl").unlink()
    report = build(settings, embedder)
    assert (report.added, report.updated, report.removed, report.unchanged) == (0, 1, 0, 1)
    report = build(settings, embedder)
    assert (report.removed, report.unchanged) == (0, 2)
    store = assert_consistent(settings.index_dir)
    assert [r[0] for r in store.db.execute("SELECT path FROM articles WHERE title = 'Moved'")] == ["b.jsonl"]


def test_a_copy_of_an_indexed_article_in_a_new_file_is_a_duplicate(settings, embedder, corpus):
    record = {"title": "Once", "body": "A body about bridges, indexed once.", "url": "https://x/once"}
    (corpus / "a.jsonl").write_text(json.dumps(record) + "\n")
    build(settings, embedder)
    (corpus / "copy.jsonl").write_text(json.dumps(record) + "\n")
    report = build(settings, embedder)
    assert [(s.path, "also in a.jsonl" in s.reason) for s in report.skipped] == [("copy.jsonl", True)]
    assert (report.added, report.unchanged, report.chunks_embedded) == (0, 2, 0)
    assert IndexStore(settings.index_dir).counts()["articles"] == 2


def test_full_rebuild_gives_same_content(settings, embedder):
    build(settings, embedder)
    before = IndexStore(settings.index_dir).db.execute("SELECT article_id, text FROM chunks ORDER BY id").fetchall()
    report = build(settings, embedder, full=True)
    assert report.added == 1 and report.chunks_embedded == report.chunks_total
    store = assert_consistent(settings.index_dir)
    after = store.db.execute("SELECT article_id, text FROM chunks ORDER BY id").fetchall()
    assert [tuple(r) for r in before] == [tuple(r) for r in after]


def test_other_chunking_settings_need_full_rebuild(settings, embedder):
    build(settings, embedder)
    other = dataclasses.replace(settings, chunk_tokens=120)
    with pytest.raises(IndexMismatch, match="rag build --full"):
        build(other, embedder)
    assert build(other, embedder, full=True).chunks_total >= 3


def test_second_build_at_once_is_refused(settings, embedder):
    settings.index_dir.mkdir()
    with FileLock(settings.index_dir / "build.lock"), pytest.raises(BuildBusy, match="another `rag build`"):
        build(settings, embedder)


def test_broken_file_keeps_what_was_indexed(settings, embedder, corpus):
    (corpus / "feed.json").write_text(json.dumps([{"title": "A", "body": "Body about trains and stations."}]))
    build(settings, embedder)
    (corpus / "feed.json").write_text('[{"title": "A", "body": ')  # truncated by a crashed scraper
    report = build(settings, embedder)
    assert report.removed == 0 and any(s.path.startswith("feed.json") for s in report.skipped)
    assert IndexStore(settings.index_dir).counts()["articles"] == 2


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_cli_build_strict_and_stats(settings, corpus):
    (corpus / "empty.txt").write_text("")
    (corpus / "broken.jsonl").write_text('{"title": "x", "body": "A fine line of text."}\n{oops\n')
    args = ["--corpus", str(corpus), "--index", str(settings.index_dir), "--quiet"]
    result = run_cli("build", *args)
    assert result.returncode == 0, result.stderr
    assert "skipped empty.txt: empty file" in result.stderr
    assert "skipped broken.jsonl:2: malformed JSON" in result.stderr
    assert "2 added" in result.stdout and "2 skipped" in result.stdout
    assert "DEBUG" not in result.stderr  # bm25s sets its logger to DEBUG; the default level is WARNING
    strict = run_cli("build", *args, "--strict")
    assert strict.returncode == 1 and "0 embedded" in strict.stdout
    stats = run_cli("stats", "--index", str(settings.index_dir), "--json")
    data = json.loads(stats.stdout)
    assert data["articles"] == 2 and data["model"] == "all-MiniLM-L6-v2" and data["index_bytes"] > 0
    assert data["last_build"] and data["sentences"] >= 15
    text = run_cli("stats", "--index", str(settings.index_dir)).stdout
    assert "articles:   2" in text and "MB on disk" in text


def test_cli_reports_missing_index(tmp_path):
    result = run_cli("stats", "--index", str(tmp_path / "nothing"))
    assert result.returncode == 2 and "run `rag build` first" in result.stderr


def test_every_stage_reports_progress_in_order(settings, embedder, corpus):
    from rag.build import STAGES

    (corpus / "ports.txt").write_text(article_text("ports"))
    seen: list[tuple[str, int, int]] = []
    Builder(settings, embedder=embedder, progress=lambda *step: seen.append(step))()
    stages = list(dict.fromkeys(stage for stage, _, _ in seen))
    assert stages == list(STAGES)
    for stage in stages:
        steps = [(done, total) for s, done, total in seen if s == stage]
        assert steps[-1][0] == steps[-1][1] > 0, stage  # each ends complete
        assert [done for done, _ in steps] == sorted(done for done, _ in steps), stage


def test_text_left_out_as_boilerplate_is_reported(settings, embedder, corpus):
    (corpus / "promo.txt").write_text(
        "Subscribe now and save 50 percent on your first year of access!\n\nDaily Planet\n\n"
        "Mayor opens new bridge\n\nDaily Planet\n\nMarch 3, 2021\n\n"
        "The mayor opened the new bridge on Wednesday after three years of work.\n\n"
        "Share this article\n\nMore from Daily Planet\n\nSport\n\nWeather\n"
    )
    report = build(settings, embedder)
    assert report.added == 2 and report.skipped == []
    [note] = report.notes  # the sample article's header and footer are 5 % of it: not reported
    assert note.startswith("promo.txt: ") and "left out as site boilerplate" in note
    assert report.summary().endswith("; 1 file(s) partly left out as boilerplate (see notes)")
    result = run_cli("build", "--corpus", str(corpus), "--index", str(settings.index_dir), "--quiet", "--full")
    assert "note: promo.txt: " in result.stderr
