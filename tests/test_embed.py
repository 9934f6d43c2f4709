"""Embedder: backends agree with sentence-transformers, late-chunked sentence vectors, thread
safety, and a start-up that needs neither torch nor sentence-transformers once exported."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from rag.embed import Embedder, resolve_model
from rag.onnx_export import _export_folder, cached_export
from rag.settings import DEFAULT_MODEL

TEXTS = [
    "In November 2015, Turkey shot down a Russian jet over Syria. A Russian pilot lost his life in the attack.",
    "Putin condoled with Erdogan.",
    "The agriculture ministry expects the harvest to exceed 90 million tonnes, officials said.",
]


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(resolve_model(DEFAULT_MODEL), device="cpu")
    return model.encode(TEXTS, normalize_embeddings=True, show_progress_bar=False)


def test_torch_backend_equals_sentence_transformers(reference):
    vectors = Embedder(backend="torch")(TEXTS)
    assert np.allclose(vectors, reference, atol=1e-5)


@pytest.mark.parametrize("backend, least", [("onnx", 0.9999), ("onnx-int8", 0.98)])
def test_onnx_backends_stay_close_to_torch(embedder, backend, least, reference):
    vectors = (embedder if backend == embedder.backend else Embedder(backend=backend))(TEXTS)
    assert vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert (vectors * reference).sum(1).min() >= least


def test_span_vectors_come_from_the_same_pass(embedder):
    cut = TEXTS[0].index(". ") + 1
    jet, pilot = (0, cut), (cut + 1, len(TEXTS[0]))
    vectors, spans = embedder.embed(TEXTS, [[jet, pilot], [(0, len(TEXTS[1]))], []])
    assert [s.shape for s in spans] == [(2, 384), (1, 384), (0, 384)]
    own = embedder([TEXTS[0][slice(*jet)], TEXTS[0][slice(*pilot)]])
    # Each sentence's pooled vector is nearest to its own text, and unlike its neighbour.
    similarity = spans[0] @ own.T
    assert similarity[0, 0] > similarity[0, 1] and similarity[1, 1] > similarity[1, 0]
    # A span that is the whole text is the text's own vector (mean over the same tokens, bar [CLS]/[SEP]).
    assert float(spans[1][0] @ vectors[1]) > 0.97


def test_threads_share_one_embedder(embedder):
    expected = embedder(TEXTS)
    counts = embedder.count_tokens(TEXTS)
    with ThreadPoolExecutor(8) as pool:
        vectors = list(pool.map(lambda _: embedder(TEXTS), range(32)))
        token_counts = list(pool.map(lambda _: embedder.count_tokens(TEXTS), range(32)))
    assert all(np.allclose(v, expected, atol=1e-6) for v in vectors)
    assert all(c == counts for c in token_counts)


def test_counts_are_not_truncated_and_max_tokens_leaves_room_for_specials(embedder):
    long = "word " * 600
    assert embedder.count_tokens([long]) == [600]
    assert embedder.max_tokens == 254


def test_cached_onnx_export_starts_without_torch(embedder):
    code = (
        "import sys; from rag.embed import Embedder; e = Embedder(); e(['a question']);"
        "print('torch' in sys.modules, 'sentence_transformers' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]


def test_an_export_is_found_again_by_the_models_contents_not_its_file_times(tmp_path):
    first = tmp_path / "one" / "model"
    first.mkdir(parents=True)
    (first / "config.json").write_text("{}")
    (first / "weights.bin").write_bytes(b"weights")
    cache = tmp_path / "cache"
    assert cached_export(str(first), "onnx", cache) is None
    folder = _export_folder(str(first), "onnx", cache)
    folder.mkdir(parents=True)
    (folder / "model.onnx").write_bytes(b"onnx")  # as exported_model leaves it
    assert cached_export(str(first), "onnx", cache) == folder
    # The same model installed again (a fresh venv): other file times, same contents.
    again = tmp_path / "two" / "model"
    shutil.copytree(first, again)
    os.utime(again / "weights.bin", ns=(1, 1))
    assert cached_export(str(again), "onnx", cache) == folder
    assert cached_export(str(again), "onnx-int8", cache) is None
    (again / "weights.bin").write_bytes(b"weightz")  # same size, other contents
    assert cached_export(str(again), "onnx", cache) is None


def test_unknown_backend_is_refused():
    with pytest.raises(ValueError, match="choose one of"):
        Embedder(backend="tensorrt")


def test_a_folder_saved_by_sentence_transformers_6_is_read_without_torch(tmp_path):
    from sentence_transformers import SentenceTransformer

    from rag.embed import _local_config

    model = SentenceTransformer(resolve_model(DEFAULT_MODEL), device="cpu")
    model.save(str(tmp_path / "saved"))  # the installed version's format (6.x: no max_seq_length key)
    saved, bundled = _local_config(str(tmp_path / "saved")), _local_config(resolve_model(DEFAULT_MODEL))
    assert saved is not None and saved["dimension"] == bundled["dimension"] == 384
    assert saved["max_seq_length"] == model.max_seq_length and saved["pad_token"] == bundled["pad_token"]


def test_thread_settings_are_set_at_start_not_by_the_embedder():
    # torch's thread count is process-wide: building an Embedder must leave it as the process set it,
    # and set_torch_threads (what `rag` calls at start) sets it, for the torch backend only.
    code = (
        "import os, sys\n"
        "from rag.embed import Embedder, set_torch_threads\n"
        "set_torch_threads('onnx-int8', workers=2); print('torch' in sys.modules)\n"
        "import torch; torch.set_num_threads(3)\n"
        "Embedder(backend='torch', workers=2); print(torch.get_num_threads())\n"
        "set_torch_threads('torch', workers=2); print(torch.get_num_threads() == max(1, (os.cpu_count() or 2) // 2))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "3", "True"]
