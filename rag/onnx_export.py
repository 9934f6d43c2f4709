"""The bundled (or any mean-pooling) sentence-transformers model as ONNX for `rag.embed`'s
`onnx` and `onnx-int8` backends: exported once with `torch.onnx.export`, its graph fused by
onnxruntime's transformer optimizer, for `onnx-int8` its weights quantized to int8 per channel,
the modules after pooling (Dense, LayerNorm, ...) exported beside it as `head.onnx`; cached under
`Settings.model_cache` (`default_cache()`), made offline from the local model, never downloaded.

Only exporting imports torch; a cached export is read with onnxruntime alone (`ort_session`).
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
from pathlib import Path

log = logging.getLogger(__name__)

# Bumped when the export recipe changes, so that old cached exports are not reused.
EXPORT_VERSION = 2


def after_pooling(model) -> list:
    """The modules of a sentence-transformers `model` after its Pooling (Dense, LayerNorm, ...),
    but a final Normalize: every vector is made unit length anyway."""
    names = [type(m).__name__ for m in model]
    if "Pooling" not in names:
        return []
    after = list(model)[names.index("Pooling") + 1 :]
    while after and type(after[-1]).__name__ == "Normalize":  # only a last one: before a Dense it counts
        after.pop()
    return after


def default_cache() -> Path:
    """Where exported encoders are kept: $XDG_CACHE_HOME/rag-news (~/.cache/rag-news)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rag-news"


def _export_folder(path: str, backend: str, cache_dir: Path) -> Path:
    """Where the export of the model at `path` for `backend` is cached. The key is
    the model's files (names and contents): a changed model is exported again, and
    the same model installed again (a new venv: new modification times) is not."""
    source = Path(path)
    stamp = [EXPORT_VERSION, backend]
    if source.is_dir():
        files = sorted(p for p in source.rglob("*") if p.is_file())
        stamp += _contents(tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files))
    else:
        stamp.append(path)
    key = hashlib.sha256(json.dumps(stamp).encode()).hexdigest()[:16]
    return cache_dir / f"{source.name or 'model'}-{backend}-{key}"


@functools.lru_cache(maxsize=8)
def _contents(files: tuple[tuple[str, int, int], ...]) -> list[tuple[str, str]]:
    """(name, sha256) of each of `files` (path, size, mtime): ~0.1 s for the bundled model's
    92 MB, once per process while the files stay as they are."""
    digests = []
    for name, _size, _mtime in files:
        digest = hashlib.sha256()
        with open(name, "rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
        digests.append((Path(name).name, digest.hexdigest()))
    return digests


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
    if cached_export(path, backend, cache_dir, head=bool(after_pooling(model))):
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
        head = bool(after_pooling(model))
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
    head = after_pooling(model)
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


def ort_session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    # One thread per call: batches and concurrent questions run side by side on
    # the cores, which on 2 cores encoded ~20% more chunks/s than one call using both.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
