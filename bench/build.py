"""Build benchmark: the whole `rag build` command vs raw torch-fp32 `SentenceTransformer.encode` of the
same chunk texts, measured in the same run.

    python bench/build.py [--corpus ../shared/data/multihop/corpus.json] [--limit N] [--backend NAME]

Runs `python -m rag.cli build` in a subprocess on a copy of the corpus (a fresh index: parse, split,
chunk, embed chunks and sentences, write SQLite, FAISS and BM25; start-up and model load included),
then encodes exactly the chunk texts that build produced with a bare SentenceTransformer (torch fp32,
its default batch size) in this process, and prints both throughputs and their ratio (goal >= 2).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="a corpus file or folder")
    parser.add_argument("--limit", type=int, help="only the first N articles of a JSON list corpus")
    parser.add_argument("--backend", help="the build's backend (default: the settings' default)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    if not args.corpus.exists():
        print(f"corpus {args.corpus} not found; pass --corpus", file=sys.stderr)
        return 2

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
        index = work / "index"
        command = [sys.executable, "-m", "rag.cli", "build", "--corpus", str(corpus), "--index", str(index), "--quiet"]
        if args.backend:
            command += ["--backend", args.backend]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
        build_seconds = time.perf_counter() - started
        if done.returncode:
            print(done.stderr[-3000:], file=sys.stderr)
            return 1
        summary = done.stdout.strip().splitlines()[-1]

        store = IndexStore(index)
        texts = [r[0] for r in store.query("SELECT text FROM chunks ORDER BY id")]
        backend = (store.manifest or {}).get("backend")
        store.close()

        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(resolve_model(DEFAULT_MODEL), device="cpu")
        model.encode(texts[:32], show_progress_bar=False)  # warm
        started = time.perf_counter()
        model.encode(texts, normalize_embeddings=True, show_progress_bar=False)
        raw_seconds = time.perf_counter() - started
    finally:
        shutil.rmtree(work, ignore_errors=True)

    ours = len(texts) / build_seconds
    raw = len(texts) / raw_seconds
    figures = {
        "chunks": len(texts),
        "backend": backend,
        "build_seconds": round(build_seconds, 1),
        "build_chunks_per_s": round(ours, 2),
        "raw_encode_seconds": round(raw_seconds, 1),
        "raw_encode_chunks_per_s": round(raw, 2),
        "ratio": round(ours / raw, 3),
        "summary": summary,
    }
    print(summary)
    print(f"rag build (whole command, backend {backend}): {build_seconds:8.1f} s  {ours:8.2f} chunks/s")
    print(f"raw torch-fp32 SentenceTransformer.encode:    {raw_seconds:8.1f} s  {raw:8.2f} chunks/s (same texts, default batch)")
    print(f"ratio: {ours / raw:.2f}x  (goal >= 2)")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
