"""Encoder backends side by side: chunk throughput, one-question latency and closeness to torch fp32.

    pip install -e ".[bench]"   # openvino and nncf, for the OpenVINO rows
    python bench/encoders.py [--corpus ../shared/data/multihop/corpus.json] [--chunks 600]

Chunk texts are the first `--chunks` chunks `Chunker` makes of the corpus. Each backend encodes them
(mean pooling, unit length, our `Embedder` batching: sorted by length, batches of 8, two threads),
then encodes 50 questions one at a time. Rows: torch fp32 (sentence-transformers as loaded), onnx
fp32 and onnx int8 (our export, rag/onnx_export.py), OpenVINO fp32 (the same ONNX graph compiled by
OpenVINO) and OpenVINO int8 (that graph quantized by NNCF, calibrated on 300 chunk texts of this
corpus). Retrieval and answer quality for the backends `rag` ships are measured with
`rag eval ... --backend NAME` (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from common import percentile, time_each

from rag.chunk import Chunker
from rag.embed import Embedder, cpu_flags, cpu_name, resolve_model, set_torch_threads
from rag.ingest import Article, parse
from rag.onnx_export import cached_export, default_cache, ort_session

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ROOT.parent / "shared/data/multihop/queries_dev.json"


class OpenVinoEncoder:
    """The torch-free part of `Embedder` with an OpenVINO compiled model doing the forward pass."""

    def __init__(self, embedder: Embedder, onnx_path: Path, calibration: list[str] | None):
        import openvino as ov

        core = ov.Core()
        model = core.read_model(str(onnx_path))
        if calibration:
            import nncf

            def feed(text: str) -> dict:
                names = {i.get_any_name() for i in model.inputs}
                return {k: v for k, v in embedder.tokenize([text]).items() if k in names}

            model = nncf.quantize(
                model, nncf.Dataset(calibration, feed), model_type=nncf.ModelType.TRANSFORMER, subset_size=len(calibration)
            )
        self.compiled = core.compile_model(model, "CPU", {"INFERENCE_NUM_THREADS": 1})
        self.names = {i.get_any_name() for i in self.compiled.inputs}
        self.embedder = embedder

    def install(self) -> None:
        """Route the embedder's forward passes through OpenVINO (one request per call: thread-safe)."""

        def forward(features: dict) -> np.ndarray:
            request = self.compiled.create_infer_request()
            result = request.infer({k: v.astype(np.int64) for k, v in features.items() if k in self.names})
            return next(iter(result.values()))

        self.embedder._token_embeddings = forward


INT8_VARIANTS = {
    # name: quantize_dynamic options. "s8 per-channel" is what rag/onnx_export.py ships (optimum's
    # avx512_vnni recipe: uint8 activations x int8 weights); "u8 per-channel" is optimum's avx2
    # recipe (uint8 x uint8: no vpmaddubsw saturation on AVX2 without VNNI); "reduce-range"
    # quantizes weights to 7 bits, onnxruntime's advice for u8s8 on AVX2/AVX-512 without VNNI.
    "int8 s8 per-channel": {"weight_type": "QInt8", "per_channel": True, "reduce_range": False},
    "int8 s8 per-channel reduce-range": {"weight_type": "QInt8", "per_channel": True, "reduce_range": True},
    "int8 u8 per-channel": {"weight_type": "QUInt8", "per_channel": True, "reduce_range": False},
    "int8 s8 per-tensor": {"weight_type": "QInt8", "per_channel": False, "reduce_range": False},
}


def int8_variant(fp32: Path, folder: Path, weight_type: str, per_channel: bool, reduce_range: bool) -> Path:
    """The fused fp32 export quantized with other `quantize_dynamic` options (rag/onnx_export.py's recipe
    apart from them)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = folder / f"{weight_type}-{'pc' if per_channel else 'pt'}-{'rr' if reduce_range else 'full'}.onnx"
    if not target.exists():
        folder.mkdir(parents=True, exist_ok=True)
        quantize_dynamic(
            str(fp32), str(target), weight_type=getattr(QuantType, weight_type), per_channel=per_channel,
            reduce_range=reduce_range, extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
    return target


def chunk_texts(corpus: Path, n: int, embedder: Embedder) -> list[str]:
    chunker = Chunker(embedder.count_tokens, embedder.max_tokens)
    texts: list[str] = []
    for article in parse(corpus.read_bytes(), corpus.name):
        if isinstance(article, Article):
            texts += [c.text for c in chunker(article)[1]]
        if len(texts) >= n:
            break
    return texts[:n]


def measure(name: str, embedder: Embedder, texts: list[str], questions: list[str], reference: np.ndarray | None):
    embedder(texts[:32])  # warm
    started, cpu_started = time.perf_counter(), time.process_time()
    vectors = embedder(texts)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    latencies = time_each(lambda q: embedder([q]), questions)
    cosine = float((vectors * reference).sum(1).mean()) if reference is not None else 1.0
    row = {
        "backend": name,
        "chunks_per_s": round(len(texts) / seconds, 1),
        # CPU time (all threads of this process) per chunk: what the encoding costs, less
        # sensitive than wall time to other programs on a shared machine.
        "chunks_per_cpu_s": round(len(texts) / cpu_seconds, 1),
        "question_ms": round(percentile(latencies, 50) * 1000, 1),
        "mean_cosine_to_torch": round(cosine, 4),
    }
    print(f"{name:>14}: {row['chunks_per_s']:7.1f} chunks/s ({row['chunks_per_cpu_s']:6.1f} per CPU-s)   question {row['question_ms']:5.1f} ms"
          f"   mean cosine to torch fp32 {row['mean_cosine_to_torch']:.4f}", flush=True)
    return row, vectors


def quality(embedder: Embedder, folder: Path) -> dict:
    """MultiHop-RAG Hits@10 / MRR@10 and SQuAD answer-sentence hit of indexes built and
    queried with `embedder` (what `rag eval` does, with an encoder rag does not ship)."""
    from rag import evaluate
    from rag.build import Builder
    from rag.pipeline import Pipeline
    from rag.settings import Settings

    data = ROOT.parent / "shared/data"
    multihop = json.loads((data / "multihop/queries_dev.json").read_text())
    squad = json.loads((data / "squad/dev-v1.1.dev.json").read_text())
    figures = {}
    for kind, articles in (("multihop", json.loads((data / "multihop/corpus.json").read_text())),
                           ("squad", evaluate.squad_corpus(squad))):
        corpus = folder / f"{kind}-corpus"
        corpus.mkdir(parents=True, exist_ok=True)
        (corpus / "articles.json").write_text(json.dumps(articles))
        settings = Settings(corpus_dir=corpus, index_dir=folder / kind, backend="onnx")
        Builder(settings, embedder=embedder)()
        pipeline = Pipeline(settings, embedder=embedder)
        if kind == "multihop":
            result = evaluate.evaluate_multihop(pipeline, multihop)
            figures.update({"hits@10": result["hits@10"], "mrr@10": result["mrr@10"]})
        else:
            result = evaluate.evaluate_squad(pipeline, evaluate.squad_questions(squad))
            figures["squad_answer_sentence_hit"] = result["answer_sentence_hit"]
    return figures


def openvino_rows(torch_embedder, texts, questions, reference, quality_dir: Path | None) -> list[dict]:
    try:
        import nncf  # noqa: F401
        import openvino  # noqa: F401
    except ImportError:
        print("openvino / nncf not installed (pip install -e '.[bench]'): OpenVINO rows skipped")
        return []
    rows = []
    fp32 = cached_export(resolve_model(torch_embedder.name), "onnx", default_cache())
    for name, calibration in (("openvino fp32", None), ("openvino int8", texts[:300])):
        embedder = Embedder(backend="onnx")
        OpenVinoEncoder(embedder, fp32, calibration).install()
        row, _ = measure(name, embedder, texts, questions, reference)
        if quality_dir:
            row.update(quality(embedder, quality_dir / name.replace(" ", "-")))
            print(f"{name:>14}: {row}", flush=True)
        rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=ROOT.parent / "shared/data/multihop/corpus.json")
    parser.add_argument("--chunks", type=int, default=600)
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--openvino-quality", type=Path, metavar="DIR",
        help="also build the MultiHop-RAG and SQuAD dev indexes in DIR with each OpenVINO encoder and score them",
    )
    parser.add_argument(
        "--int8-variants", action="store_true",
        help="also time int8 exports made with other quantization options (INT8_VARIANTS) on this CPU",
    )
    parser.add_argument("--skip-openvino", action="store_true", help="leave out the OpenVINO rows")
    args = parser.parse_args()
    print(f"CPU: {cpu_name()}; instruction sets: {', '.join(cpu_flags()) or 'none of note'}", flush=True)
    questions = [q["query"] for q in json.loads(QUESTIONS.read_text())][:50] if QUESTIONS.exists() else ["a question"] * 50

    set_torch_threads("torch", workers=2)  # as `rag` sets it at start for Embedder's 2 workers
    torch_embedder = Embedder(backend="torch")
    texts = chunk_texts(args.corpus, args.chunks, torch_embedder)
    print(f"{len(texts)} chunk texts of {args.corpus.name}", flush=True)
    rows = []
    row, reference = measure("torch fp32", torch_embedder, texts, questions, None)
    rows.append(row)
    for backend in ("onnx", "onnx-int8"):
        row, _ = measure(backend.replace("-", " "), Embedder(backend=backend), texts, questions, reference)
        rows.append(row)
    if args.int8_variants:
        fp32 = cached_export(resolve_model(torch_embedder.name), "onnx", default_cache())
        for name, options in INT8_VARIANTS.items():
            embedder = Embedder(backend="onnx")
            embedder._session = ort_session(int8_variant(fp32, default_cache() / "bench-int8-variants", **options))
            row, _ = measure(name, embedder, texts, questions, reference)
            rows.append(row)
    if not args.skip_openvino:
        rows += openvino_rows(torch_embedder, texts, questions, reference, args.openvino_quality)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
