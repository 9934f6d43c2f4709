"""Build benchmark: the whole `rag build` command vs raw torch-fp32 `SentenceTransformer.encode` of the
same chunk texts, measured in the same run.

    python bench/build.py [--corpus ../shared/data/multihop/corpus.json] [--limit N] [--backend NAME[,NAME]] [--repeat N]

Runs `python -m rag.cli build` in a subprocess on a copy of the corpus (a fresh index: parse, split,
chunk, embed chunks and sentences, write SQLite, FAISS and BM25; start-up and model load included),
then encodes exactly the chunk texts that build produced with a bare SentenceTransformer (torch fp32,
its default batch size) in this process, and prints both throughputs and their ratio (goal >= 2).
`--repeat N` does this N times and reports the median ratio. Beside wall time it reports CPU time
(user + system, all threads) of both sides: on a machine shared with other programs the CPU-time
ratio shows what the work costs, the wall-time ratio what it took there and then.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rag.embed import resolve_model
from rag.settings import DEFAULT_MODEL
from rag.store import IndexStore

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "multihop" / "corpus.json"


def build_once(corpus: Path, work: Path, backend: str | None) -> dict | None:
    """One whole `rag build` of `corpus` into a fresh index: wall and CPU seconds, chunk texts."""
    index = work / f"index-{backend or 'default'}"
    shutil.rmtree(index, ignore_errors=True)
    command = [sys.executable, "-m", "rag.cli", "build", "--corpus", str(corpus), "--index", str(index), "--quiet"]
    if backend:
        command += ["--backend", backend]
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        print(done.stderr[-3000:], file=sys.stderr)
        return None
    store = IndexStore(index)
    texts = [r[0] for r in store.query("SELECT text FROM chunks ORDER BY id")]
    built_with = (store.manifest or {}).get("backend")
    store.close()
    shutil.rmtree(index, ignore_errors=True)
    cpu = (after.ru_utime - children.ru_utime) + (after.ru_stime - children.ru_stime)
    return {"backend": built_with, "seconds": seconds, "cpu": cpu, "texts": texts,
            "summary": done.stdout.strip().splitlines()[-1]}


def raw_encode(texts: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of a bare torch-fp32 `SentenceTransformer.encode` of `texts`."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(resolve_model(DEFAULT_MODEL), device="cpu")
    model.encode(texts[:32], show_progress_bar=False)  # warm
    started, cpu_started = time.perf_counter(), time.process_time()
    model.encode(texts, normalize_embeddings=True, show_progress_bar=False)
    return time.perf_counter() - started, time.process_time() - cpu_started


def run_once(corpus: Path, work: Path, backends: list[str | None]) -> list[dict] | None:
    """A build with each backend, then the raw encode of their chunks: one row per backend."""
    builds = [build_once(corpus, work, backend) for backend in backends]
    if any(b is None for b in builds):
        return None
    texts = builds[0]["texts"]
    raw_seconds, raw_cpu = raw_encode(texts)
    raw = len(texts) / raw_seconds
    rows = []
    for build in builds:
        ours = len(texts) / build["seconds"]
        row = {
            "chunks": len(texts),
            "backend": build["backend"],
            "build_seconds": round(build["seconds"], 1),
            "build_chunks_per_s": round(ours, 2),
            "raw_encode_seconds": round(raw_seconds, 1),
            "raw_encode_chunks_per_s": round(raw, 2),
            "ratio": round(ours / raw, 3),
            "build_cpu_seconds": round(build["cpu"], 1),
            "raw_encode_cpu_seconds": round(raw_cpu, 1),
            "cpu_ratio": round(raw_cpu / build["cpu"], 3),
            "summary": build["summary"],
        }
        print(build["summary"])
        print(f"rag build (whole command, backend {row['backend']}): {build['seconds']:8.1f} s  {ours:8.2f} chunks/s"
              f"  ({build['cpu']:.1f} CPU-s)")
        print(f"raw torch-fp32 SentenceTransformer.encode:    {raw_seconds:8.1f} s  {raw:8.2f} chunks/s"
              f"  ({raw_cpu:.1f} CPU-s; same texts, default batch)")
        print(f"ratio: {row['ratio']:.2f}x  (goal >= 2); CPU-time ratio {row['cpu_ratio']:.2f}x", flush=True)
        rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="a corpus file or folder")
    parser.add_argument("--limit", type=int, help="only the first N articles of a JSON list corpus")
    parser.add_argument(
        "--backend", help="the build's backend (default: the settings' default); several, comma-separated, "
        "are built in turn in each run and compared with the same raw encode"
    )
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--repeat", type=int, default=1, help="measure N times and report the median ratio")
    args = parser.parse_args()
    if not args.corpus.exists():
        print(f"corpus {args.corpus} not found; pass --corpus", file=sys.stderr)
        return 2

    backends = args.backend.split(",") if args.backend else [None]
    work = Path(tempfile.mkdtemp(prefix="rag-bench-"))
    try:
        corpus = work / "corpus"
        corpus.mkdir()
        if args.corpus.is_dir():
            shutil.copytree(args.corpus, corpus, dirs_exist_ok=True)
        elif args.limit:
            articles = json.loads(args.corpus.read_text())[: args.limit]
            (corpus / args.corpus.name).write_text(json.dumps(articles))
        else:
            shutil.copy(args.corpus, corpus / args.corpus.name)
        runs = [run_once(corpus, work, backends) for _ in range(args.repeat)]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if any(r is None for r in runs):
        return 1
    figures = []
    for position in range(len(backends)):
        rows = [run[position] for run in runs]
        medians = {key: round(statistics.median(r[key] for r in rows), 3) for key in ("ratio", "cpu_ratio")}
        each = ", ".join(f"{r['ratio']:.2f}" for r in rows)
        each_cpu = ", ".join(f"{r['cpu_ratio']:.2f}" for r in rows)
        print(f"backend {rows[0]['backend']}: median ratio {medians['ratio']:.2f}x, CPU-time ratio "
              f"{medians['cpu_ratio']:.2f}x over {len(rows)} run(s) (each: {each}; CPU {each_cpu})")
        figures.append({"backend": rows[0]["backend"], **{f"median_{k}": v for k, v in medians.items()}, "runs": rows})
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
