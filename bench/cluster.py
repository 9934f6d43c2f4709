"""What `rag build --ray` costs: a local build and a Ray build of the same corpus, measured in one run.

    python bench/cluster.py [--corpus ../shared/data/multihop/corpus.json] [--limit 50] [--address local] [--group 512]

Builds the first `--limit` articles twice from scratch (`--full`) into temporary
indexes: once embedding here, once on the Ray cluster at `--address` ("local"
starts a one-machine Ray inside this process, using every core). Prints for each:
chunks, build seconds, chunks/s; for Ray also the start-up (ray.init and the
driver's model load) and the fixed cost of one group (an actor pool started and a
dataset run of one batch and one text), and checks that both indexes hold the same vectors.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from rag.build import Builder
from rag.settings import Settings
from rag.store import IndexStore

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "multihop" / "corpus.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="a JSON list of articles (MultiHop-RAG form)")
    parser.add_argument("--limit", type=int, default=50, help="first N articles")
    parser.add_argument("--address", default="local", help="Ray address, as `rag build --ray` takes it")
    parser.add_argument("--group", type=int, default=Settings.embed_group, help="embed_group: chunks per Ray Data run (and per transaction)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    if not args.corpus.exists():
        print(f"corpus {args.corpus} not found; pass --corpus", file=sys.stderr)
        return 2

    work = Path(tempfile.mkdtemp(prefix="rag-bench-ray-"))
    try:
        corpus = work / "corpus"
        corpus.mkdir()
        (corpus / "corpus.json").write_text(json.dumps(json.loads(args.corpus.read_text())[: args.limit]))
        local = Settings(corpus_dir=corpus, index_dir=work / "local", embed_group=args.group)
        # Other work on the machine moves every figure: say how busy it was.
        figures = {"articles": args.limit, "address": args.address, "embed_group": args.group, "load_before": os.getloadavg()[0]}

        started = time.perf_counter()
        report = Builder(local)(full=True)
        figures["local"] = _figures(report.chunks_embedded, time.perf_counter() - started)

        from rag.cluster import RayEmbedder

        on_ray = replace(local, index_dir=work / "ray", ray_address=args.address)
        started = time.perf_counter()
        embedder = RayEmbedder(args.address, on_ray.model, **on_ray.embedder_options())
        figures["ray_start_s"] = round(time.perf_counter() - started, 2)
        figures["ray_actors"] = embedder.actors
        started = time.perf_counter()
        # One text more than a forward pass holds: fewer are embedded on the driver.
        embedder.embed(["one short text"] * (embedder.batch_size + 1))
        figures["ray_group_overhead_s"] = round(time.perf_counter() - started, 2)
        started = time.perf_counter()
        report = Builder(on_ray, embedder=embedder)(full=True)
        figures["ray"] = _figures(report.chunks_embedded, time.perf_counter() - started)
        figures["load_after"] = os.getloadavg()[0]
        figures["max_vector_difference"] = float(np.abs(_vectors(local.index_dir) - _vectors(on_ray.index_dir)).max())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(figures, indent=2))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


def _figures(chunks: int, seconds: float) -> dict:
    return {"chunks": chunks, "seconds": round(seconds, 2), "chunks_per_s": round(chunks / seconds, 1)}


def _vectors(index_dir: Path) -> np.ndarray:
    store = IndexStore(index_dir)
    try:
        rows = store.query("SELECT embedding FROM chunks ORDER BY article_id, position")
        return np.vstack([np.frombuffer(r[0], np.float32) for r in rows])
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(main())
