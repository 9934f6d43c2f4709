"""Index segments: updates write only the change, removals are hidden then merged
away, BM25 ranks alike across segments, large segments search through HNSW."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from conftest import article_text, assert_consistent

from rag import lexical, segment
from rag.build import Builder, compact
from rag.lexical import LexicalIndex
from rag.pipeline import Pipeline
from rag.segment import Segment, SegmentInfo, SegmentSet, vector_index
from rag.segments import SegmentRegister
from rag.settings import Settings
from rag.store import IndexStore

TOPICS = [
    "harbour", "railway", "vineyard", "glacier", "orchard", "lighthouse", "observatory",
    "brewery", "monastery", "shipyard", "quarry", "aqueduct",
]  # fmt: skip


def build(settings, embedder):
    return Builder(settings, embedder=embedder)()


def segment_files(index_dir):
    """name -> (inode, mtime_ns) of every segment file and folder."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in index_dir.glob("seg-*")}


@pytest.fixture
def big_corpus(corpus):
    for topic in TOPICS:
        (corpus / f"{topic}.txt").write_text(article_text(topic))
    return corpus


def test_an_update_writes_one_small_segment_and_leaves_the_others_untouched(settings, embedder, big_corpus):
    build(settings, embedder)
    before = segment_files(settings.index_dir)
    assert len(before) == 2  # one segment: its FAISS file and its BM25 folder
    (big_corpus / "ferry.txt").write_text(article_text("ferry"))
    report = build(settings, embedder)
    assert report.added == 1
    after = segment_files(settings.index_dir)
    assert {name: after[name] for name in before} == before  # not rewritten, not touched
    store = assert_consistent(settings.index_dir)
    infos = store.segment_register.infos()
    assert len(infos) == 2 and infos[-1].chunks == report.chunks_embedded
    new_ids = {r[0] for r in store.query("SELECT c.id FROM chunks c WHERE c.article_id = ?", ("ferry.txt",))}
    assert set(range(infos[-1].first, infos[-1].last + 1)) >= new_ids == set(store.segments.segments[-1].lexical.ids)


def test_a_removed_article_is_never_found_and_compact_drops_it(settings, embedder, big_corpus, caplog):
    build(settings, embedder)
    (big_corpus / "glacier.txt").unlink()
    assert build(settings, embedder).removed == 1
    removed = assert_consistent(settings.index_dir).counts()["tombstones"]
    assert removed > 0
    pipeline = Pipeline(settings, embedder=embedder)
    hits = pipeline.retriever("What did the glacier committee discuss?", k=50)
    assert hits and all(h.article_id != "glacier.txt" for h in hits)
    answer_before = pipeline.ask("What did the harbour committee discuss?")
    old_view = pipeline.view

    # The pipeline stays open, as a server's: it moves to the compacted index, so the
    # compaction's checkpoint need not wait for its old snapshot in vain.
    with caplog.at_level(logging.WARNING, logger="rag.database"):
        assert compact(settings.index_dir) == (1, removed)
    assert not [r for r in caplog.records if "could not be copied" in r.getMessage()]
    assert pipeline.view is not old_view and old_view.retired
    store = assert_consistent(settings.index_dir)
    assert (store.counts()["segments"], store.counts()["tombstones"]) == (1, 0)
    assert store.stats()["last_report"].startswith(f"compacted: 1 segment(s) into 1, {removed} removed")
    assert len(segment_files(settings.index_dir)) == 2  # the old segment's files are gone
    assert pipeline.store.counts()["segments"] == 1
    assert pipeline.ask("What did the harbour committee discuss?").text == answer_before.text
    pipeline.close()
    assert Pipeline(settings, embedder=embedder, watch=False).ask("What did the harbour committee discuss?").text == answer_before.text


def test_segments_stay_few_over_many_small_updates(settings, embedder, corpus):
    counts = []
    for topic in TOPICS:
        (corpus / f"{topic}.txt").write_text(article_text(topic, n=2))
        build(settings, embedder)
        store = assert_consistent(settings.index_dir)
        counts.append(store.counts()["segments"])
    # Merged as they come (MERGE_RATIO): never more than a handful, whatever the number of builds.
    assert max(counts) <= 4 and counts[-1] < len(TOPICS)
    # A segment left with no (or few) live chunks is dropped (or rewritten) by the next build.
    newest = store.segment_register.infos()[-1]
    for (path,) in store.query("SELECT DISTINCT a.path FROM chunks c JOIN articles a ON a.id = c.article_id WHERE c.id >= ?", (newest.first,)):
        (corpus / path).unlink()
    build(settings, embedder)
    store = assert_consistent(settings.index_dir)
    assert all(info.first != newest.first for info in store.segment_register.infos())
    assert store.counts()["tombstones"] == 0


def test_a_build_stopped_before_registering_its_segment_loses_nothing(settings, embedder, big_corpus, monkeypatch):
    build(settings, embedder)
    (big_corpus / "ferry.txt").write_text(article_text("ferry"))

    def stopped(self, old, first, last):
        self._segment_from_rows(first, last).save(self.dir)  # the files are written ...
        raise KeyboardInterrupt  # ... and the process stops before the database names them

    with monkeypatch.context() as patch:
        patch.setattr(SegmentRegister, "_replace", stopped)
        with pytest.raises(KeyboardInterrupt):
            build(settings, embedder)
    # The committed article is searchable (its chunks are read from the database) ...
    pipeline = Pipeline(settings, embedder=embedder)
    hits = pipeline.retriever("ferry committee agenda", k=5)
    assert hits[0].article_id == "ferry.txt"
    pipeline.close()  # else its snapshot, open until garbage-collected, holds the next build's checkpoint 30 s
    # ... and the next build writes its segment and deletes the orphaned files.
    report = build(settings, embedder)
    assert report.chunks_embedded == 0
    store = assert_consistent(settings.index_dir)
    owned = {p.name for info in store.segment_register.infos() for p in info.files(settings.index_dir)}
    assert set(segment_files(settings.index_dir)) == owned and store.counts()["segments"] == 2


def test_bm25_weighs_words_by_the_whole_index_not_one_segment():
    # Every text has four words, so only the word statistics can differ between
    # one segment and two.
    texts = ["rare cargo ship harbour", "cargo ship harbour dock", "cargo ship dock crane", "ship dock crane tide",
             "cargo crane tide storm", "ship tide storm wave"]  # fmt: skip
    ids = np.arange(len(texts))
    vectors = np.eye(len(texts), 8, dtype=np.float32)

    def segments(parts):
        return SegmentSet(
            [Segment.build(SegmentInfo(int(p[0]), int(p[-1]), len(p)), ids[p], vectors[p], [texts[i] for i in p]) for p in parts],
            removed=np.zeros(0, dtype=np.int64),
        )

    whole = segments([ids])
    split = segments([ids[:2], ids[2:]])
    for question in ("rare cargo", "dock crane storm", "ship"):
        expected = whole.lexical(question, depth=10)
        found = split.lexical(question, depth=10)
        assert [i for i, _ in found] == [i for i, _ in expected]
        assert np.allclose([s for _, s in found], [s for _, s in expected], rtol=1e-5)
    # "cargo" is in both texts of the first segment, in four of six overall: scored
    # by that segment's own statistics it would count for much less.
    alone = dict(LexicalIndex.build([0, 1], texts[:2]).search("cargo"))
    in_index = dict(split.lexical("cargo", depth=10))
    assert set(in_index) == {0, 1, 2, 4} and in_index[0] > 2 * alone[0]


def test_large_segments_search_a_graph_with_high_recall_and_filters(monkeypatch):
    monkeypatch.setattr(segment, "ANN_MIN_CHUNKS", 2000)
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(50, 64))
    vectors = (centres[rng.integers(0, 50, 5000)] + 0.5 * rng.normal(size=(5000, 64))).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(100, 5100)
    graph = vector_index(ids, vectors)
    assert "HNSW" in type(segment.faiss.downcast_index(graph.index)).__name__
    assert "Flat" in type(segment.faiss.downcast_index(vector_index(ids[:1999], vectors[:1999]).index)).__name__

    queries = vectors[:200] + 0.1 * rng.normal(size=(200, 64)).astype(np.float32)
    exact = np.argsort(-(queries @ vectors.T), axis=1)[:, :10] + 100
    texts = [f"chunk number {i}" for i in ids]
    found_set = SegmentSet([Segment(SegmentInfo(100, 5099, 5000), graph, LexicalIndex.build(ids.tolist(), texts))], np.zeros(0))
    recall = np.mean([len({i for i, _ in found_set.dense(q[None], 10)} & set(e)) / 10 for q, e in zip(queries, exact)])
    assert recall >= 0.95
    allowed = ids[::7]
    assert all(i in set(allowed) for q in queries[:20] for i, _ in found_set.dense(q[None], 10, allowed=allowed))
    removed = SegmentSet(found_set.segments, removed=exact[0])
    assert not {i for i, _ in removed.dense(queries[:1], 10)} & set(exact[0])


def test_pruned_bm25_finds_what_scoring_every_chunk_finds(monkeypatch):
    monkeypatch.setattr(lexical, "PRUNE_MIN_CHUNKS", 1000)  # the large index is pruned, the small one not
    # Zipf-distributed words, as in news text: questions mix a few rare words with
    # common ones, whose posting lists MaxScore looks up only for some chunks.
    rng = np.random.default_rng(0)
    vocabulary = [f"w{i}" for i in range(3000)]
    weights = 1 / np.arange(1, len(vocabulary) + 1)
    weights /= weights.sum()
    texts = [" ".join(rng.choice(vocabulary, size=rng.integers(8, 60), p=weights)) for _ in range(6000)]
    ids = np.arange(1000, 7000)
    live = rng.random(len(ids)) > 0.1
    allowed = np.sort(rng.choice(ids, 1500, replace=False))
    indexes = [(LexicalIndex.build(ids.tolist(), texts), ids, live), (LexicalIndex.build(ids[:900].tolist(), texts[:900]), ids[:900], live[:900])]
    compared = 0
    for _ in range(60):
        terms = [vocabulary[i] for i in rng.choice(len(vocabulary), size=rng.integers(1, 9), p=weights)]
        word_weights = rng.uniform(0.5, 2.0, len(terms))  # index-wide idf of several segments
        for index, index_ids, index_live in indexes:
            every = index.scores(terms, word_weights)
            for depth, mask, only in ((10, None, None), (100, None, None), (10, index_live, None), (50, index_live, allowed)):
                keep = every > 0
                if mask is not None:
                    keep &= mask
                if only is not None:
                    keep &= np.isin(index_ids, only)
                positions = np.flatnonzero(keep)
                expected = positions[np.lexsort((positions, -every[positions]))][:depth]
                found_ids, found_scores = index.best(terms, word_weights, depth, mask, only)
                assert np.allclose(found_scores, every[expected], rtol=1e-5)
                # Equal scores may come in either order; every chunk strictly above the
                # last score returned must be there.
                if len(expected):
                    assert set(index_ids[expected[every[expected] > every[expected][-1] * (1 + 1e-5)]]) <= set(found_ids)
                else:
                    assert not len(found_ids)
                compared += 1
    assert compared == 480


def lexical_by_chunk(settings, question):
    """BM25 score of every matching chunk, keyed by (article, position in it)."""
    store = IndexStore(settings.index_dir)
    keys = {r[0]: (r[1], r[2]) for r in store.query("SELECT id, article_id, position FROM chunks")}
    return {keys[i]: score for i, score in store.segments.lexical(question, depth=10_000)}


def test_an_index_built_in_steps_scores_and_answers_as_one_built_at_once(tmp_path, settings, embedder, big_corpus):
    questions = ["What did the harbour committee discuss?", "Why did Russia-Turkey ties sour?", "ferry plan review agenda Monday"]
    build(settings, embedder)
    # Later builds add a short article (a small segment with a much lower average
    # chunk length) and remove one (tombstones in the first segment).
    (big_corpus / "ferry.txt").write_text(article_text("ferry", n=1))
    build(settings, embedder)
    (big_corpus / "glacier.txt").unlink()
    build(settings, embedder)
    stepped = IndexStore(settings.index_dir)
    assert stepped.counts()["segments"] == 2 and stepped.counts()["tombstones"] > 0

    # One built at once from the same corpus: every BM25 score the same.
    clean = Settings(corpus_dir=big_corpus, index_dir=tmp_path / "clean")
    Builder(clean, embedder=embedder)(full=True)
    assert IndexStore(clean.index_dir).counts()["segments"] == 1
    for question in questions:
        found, expected = lexical_by_chunk(settings, question), lexical_by_chunk(clean, question)
        assert found.keys() == expected.keys() and found
        assert np.allclose([found[k] for k in expected], list(expected.values()), rtol=1e-5)

    # The same index in one segment (same vectors: only the segments differ) answers alike.
    before = Pipeline(settings, embedder=embedder)
    answers = [before.ask(q).to_dict() for q in questions]
    before.close()
    compact(settings.index_dir)
    assert IndexStore(settings.index_dir).counts()["segments"] == 1
    assert [Pipeline(settings, embedder=embedder).ask(q).to_dict() for q in questions] == answers


def test_bm25_scores_recomputed_from_the_stored_ones_are_bm25s_own():
    texts = [article_text(topic, n) for topic, n in zip(TOPICS, range(1, 9))]
    index = LexicalIndex.build(list(range(len(texts))), texts)
    terms = lexical.query_terms("committee plan harbour officials reviewed agenda")
    own = lexical.idf(index.document_frequencies(terms), len(texts))
    expected = index.model.get_scores(terms)
    assert np.allclose(index.scores(terms, own), expected, rtol=1e-5) and expected.max() > 0
