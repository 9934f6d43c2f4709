"""A model with modules after pooling (here Dense 64 -> 384, then Normalize) embeds exactly as its
`SentenceTransformer.encode` does, with every backend: chunk and question vectors, the late-pooled
sentence (span) vectors, the dimension, and what the index and `rag stats` record.

The model is made here, offline: a tiny randomly initialised BERT (64-d, 2 layers) with the bundled
model's tokenizer, mean pooling and a Dense head, saved by sentence-transformers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag.embed import Embedder, resolve_model
from rag.settings import DEFAULT_MODEL, Settings

TEXTS = [
    "In November 2015, Turkey shot down a Russian jet over Syria. A Russian pilot lost his life in the attack.",
    "Putin condoled with Erdogan.",
    "The agriculture ministry expects the harvest to exceed 90 million tonnes, officials said.",
]
HIDDEN, OUT = 64, 384
# How close each backend must come to torch fp32 `encode` (cosine of every vector).
LEAST = {"torch": 0.99999, "onnx": 0.9999, "onnx-int8": 0.98}


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    """A randomly initialised 64-d, 2-layer BERT with the bundled model's tokenizer."""
    import torch
    from transformers import BertConfig, BertModel

    bundled = Path(resolve_model(DEFAULT_MODEL))
    bert = tmp_path_factory.mktemp("tiny-bert")
    config = BertConfig.from_pretrained(bundled, local_files_only=True)
    config.update({"hidden_size": HIDDEN, "num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128})
    torch.manual_seed(17)
    BertModel(config).save_pretrained(bert)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(bundled / name, bert / name)
    return bert


@pytest.fixture(scope="module")
def dense_model(tiny_bert, tmp_path_factory) -> Path:
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import (
        Dense,
        Normalize,
        Pooling,
        Transformer,
    )

    bert, base = tiny_bert, tmp_path_factory.mktemp("dense-model")
    modules = [
        Transformer(str(bert), max_seq_length=256),
        Pooling(HIDDEN, "mean"),
        Dense(HIDDEN, OUT, activation_function=torch.nn.Tanh()),
        Normalize(),
    ]
    SentenceTransformer(modules=modules, device="cpu").save(str(base / "model"))
    return base / "model"


@pytest.fixture(scope="module")
def model(dense_model):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(dense_model), device="cpu", local_files_only=True)


def spans_of(text: str) -> list[tuple[int, int]]:
    cut = text.find(". ") + 1 or len(text)
    return [(0, cut), (cut + 1, len(text))] if cut < len(text) else [(0, len(text))]


def span_reference(model, texts: list[str], spans: list[list[tuple[int, int]]]) -> list[np.ndarray]:
    """What `encode` makes of a span's token states: the mean of the span's tokens (read in the
    whole text's pass), then the model's modules after pooling (Dense, Normalize)."""
    import torch

    out = []
    for text, text_spans in zip(texts, spans):
        features = dict(model.tokenizer([text], return_offsets_mapping=True, return_tensors="pt"))
        offsets = features.pop("offset_mapping")[0].tolist()
        with torch.inference_mode():
            tokens = model[0](features)["token_embeddings"][0]
            rows = []
            for start, end in text_spans:
                inside = [i for i, (a, b) in enumerate(offsets) if b > a and a < end and b > start]
                pooled = {"sentence_embedding": tokens[inside].mean(0, keepdim=True)}
                for module in list(model)[2:]:
                    pooled = module(pooled)
                rows.append(pooled["sentence_embedding"][0].numpy())
        out.append(np.array(rows))
    return out


def closeness(ours: np.ndarray, reference: np.ndarray) -> float:
    reference = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    return float((ours * reference).sum(1).min())


@pytest.mark.parametrize("backend", ["torch", "onnx", "onnx-int8"])
def test_vectors_are_the_models_own_after_its_dense_head(dense_model, model, backend, tmp_path):
    reference = model.encode(TEXTS, normalize_embeddings=True, show_progress_bar=False)
    assert reference.shape == (3, OUT)
    spans = [spans_of(t) for t in TEXTS]
    span_expected = span_reference(model, TEXTS, spans)
    # First the export (a fresh cache), then the cached export (opened without torch).
    for attempt in ("fresh", "cached"):
        embedder = Embedder(str(dense_model), backend=backend, cache_dir=tmp_path / "cache")
        assert embedder.dimension == OUT, attempt
        vectors, span_vectors = embedder.embed(TEXTS, spans)
        assert vectors.shape == (3, OUT)
        assert closeness(vectors, reference) >= LEAST[backend], attempt
        for ours, expected in zip(span_vectors, span_expected):
            assert ours.shape == expected.shape
            assert closeness(ours, expected) >= LEAST[backend], attempt
        question = embedder(["Who shot down a Russian jet?"])
        expected = model.encode(["Who shot down a Russian jet?"], normalize_embeddings=True, show_progress_bar=False)
        assert closeness(question, expected) >= LEAST[backend], attempt
        if backend == "torch":
            break


def test_build_records_and_stats_report_the_heads_dimension(dense_model, tmp_path):
    from rag.build import Builder
    from rag.store import IndexStore

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "jet.txt").write_text("Jet downed\n\n" + " ".join(TEXTS) + "\n")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", model=str(dense_model), backend="onnx",
                        model_cache=tmp_path / "cache")
    Builder(settings)()
    store = IndexStore(settings.index_dir)
    try:
        assert store.manifest["dimension"] == OUT
    finally:
        store.close()
    done = subprocess.run(
        [sys.executable, "-m", "rag.cli", "stats", "--index", str(settings.index_dir), "--json"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["dimension"] == OUT


def test_a_cls_pooling_model_embeds_as_encode_in_torch_and_is_refused_by_onnx(tiny_bert, tmp_path):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    modules = [Transformer(str(tiny_bert), max_seq_length=256), Pooling(HIDDEN, "cls")]
    SentenceTransformer(modules=modules, device="cpu").save(str(tmp_path / "cls"))
    model = SentenceTransformer(str(tmp_path / "cls"), device="cpu", local_files_only=True)
    reference = model.encode(TEXTS, normalize_embeddings=True, show_progress_bar=False)
    vectors = Embedder(str(tmp_path / "cls"), backend="torch")(TEXTS)
    assert closeness(vectors, reference) >= LEAST["torch"]
    with pytest.raises(ValueError, match="backend torch"):
        Embedder(str(tmp_path / "cls"), backend="onnx", cache_dir=tmp_path / "cache")


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_a_normalize_before_the_dense_layer_is_kept(tiny_bert, backend, tmp_path):
    """Only a final Normalize may be left out (every vector is made unit anyway); one before a
    Dense layer changes what the Dense layer sees."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import (
        Dense,
        Normalize,
        Pooling,
        Transformer,
    )

    torch.manual_seed(3)
    modules = [
        Transformer(str(tiny_bert), max_seq_length=256),
        Pooling(HIDDEN, "mean"),
        Normalize(),
        Dense(HIDDEN, OUT, activation_function=torch.nn.Identity()),
    ]
    SentenceTransformer(modules=modules, device="cpu").save(str(tmp_path / "model"))
    model = SentenceTransformer(str(tmp_path / "model"), device="cpu", local_files_only=True)
    with torch.no_grad():  # a bias that dominates vectors of length 1 but not unnormalised ones
        model[3].linear.bias.fill_(0.5)
    model.save(str(tmp_path / "model"))
    reference = model.encode(TEXTS, normalize_embeddings=True, show_progress_bar=False)
    vectors = Embedder(str(tmp_path / "model"), backend=backend, cache_dir=tmp_path / "cache")(TEXTS)
    assert closeness(vectors, reference) >= LEAST[backend]
