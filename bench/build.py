"""Build benchmark: our full build of a corpus vs raw SentenceTransformer.encode of the same chunks.

    python bench/build.py [--corpus ../shared/data/multihop/corpus.json] [--limit N] [--device cpu]

Builds the corpus from scratch into a temporary index (parse, split, chunk, embed, write SQLite and
FAISS), then encodes exactly the chunk texts that build produced with a bare SentenceTransformer in the
same process and batch size, and prints both throughputs, their ratio (target >= 0.9) and peak memory.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.build import Builder  # noqa: E402
from rag.embed import resolve_model  # noqa: E402
from rag.settings import Settings  # noqa: E402
from rag.store import IndexStore  # noqa: E402

DEFAULT_CORPUS = ROOT.parent / "shared" / "data" / "multihop" / "corpus.json"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="a corpus file or folder")
    parser.add_argument("--limit", type=int, help="only the first N articles of a JSON list corpus")
    parser.add_argument("--device", default=None)
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
        settings = Settings(corpus_dir=corpus, index_dir=work / "index", device=args.device)

        started = time.perf_counter()
        report = Builder(settings)(full=True)
        build_seconds = time.perf_counter() - started
        build_peak = peak_rss_mb()

        store = IndexStore(settings.index_dir)
        texts = [r[0] for r in store.db.execute("SELECT text FROM chunks ORDER BY id")]
        store.close()

        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(resolve_model(settings.model), device=args.device)
        started = time.perf_counter()
        model.encode(texts, batch_size=settings.batch_size, normalize_embeddings=True, show_progress_bar=False)
        raw_seconds = time.perf_counter() - started
    finally:
        shutil.rmtree(work, ignore_errors=True)

    ours = len(texts) / build_seconds
    raw = len(texts) / raw_seconds
    figures = {
        "articles": report.added,
        "chunks": len(texts),
        "build_seconds": round(build_seconds, 1),
        "build_chunks_per_s": round(ours, 2),
        "raw_encode_seconds": round(raw_seconds, 1),
        "raw_encode_chunks_per_s": round(raw, 2),
        "ratio": round(ours / raw, 3),
        "peak_rss_mb_build": round(build_peak),
        "device": str(model.device),
    }
    print(f"articles:          {figures['articles']}  ({len(report.skipped)} skipped)")
    print(f"chunks:            {figures['chunks']}")
    print(f"our build:         {build_seconds:8.1f} s  {ours:8.2f} chunks/s  (parse, split, chunk, embed, write; model load included)")
    print(f"raw encode:        {raw_seconds:8.1f} s  {raw:8.2f} chunks/s  (SentenceTransformer.encode, same texts, batch {settings.batch_size})")
    print(f"ratio:             {ours / raw:.3f}  (target >= 0.9)")
    print(f"peak memory:       {build_peak:.0f} MB RSS during the build")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
