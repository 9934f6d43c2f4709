"""Many people asking at once: N concurrent gradio_client sessions against `rag serve`.

    python bench/load.py [--index index-eval/multihop] [--clients 50] [--questions 200]

Starts `rag serve` on the index (build it first with `rag eval QUERIES`), then sends the same
MultiHop-RAG dev questions to `/ask` twice: one client asking them one after another, then
`--clients` clients at once (each with its own `gradio_client.Client`, default options), the
questions shared out between them. Prints errors, p50 / p95 latency and throughput of both runs and
the ratio of their throughputs (goal >= 1.5), measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from common import free_port, percentile

ROOT = Path(__file__).resolve().parents[1]


def start_server(index: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    process = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "serve", "--index", str(index), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.time() + 180
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"rag serve exited: {process.stderr.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=2):
                return process
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("rag serve did not start within 180 s")


def run(url: str, questions: list[str], clients: int) -> dict:
    """Ask `questions`, shared out round-robin between `clients` concurrent sessions."""
    from gradio_client import Client

    times: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    shares = [questions[i::clients] for i in range(clients)]
    ready = threading.Barrier(clients + 1)

    def session(share: list[str]) -> None:
        try:
            client = Client(url, verbose=False)
        except Exception as err:  # counted, not raised: the figure is how many fail
            with lock:
                errors.append(f"connect: {type(err).__name__}: {err}")
            ready.wait()
            return
        ready.wait()
        for question in share:
            began = time.perf_counter()
            try:
                answer = client.predict(question, api_name="/ask")
                if not isinstance(answer, dict) or "answer" not in answer:
                    raise ValueError(f"unexpected reply {str(answer)[:80]}")
            except Exception as err:
                with lock:
                    errors.append(f"{type(err).__name__}: {err}")
                continue
            with lock:
                times.append(time.perf_counter() - began)
        client.close()

    threads = [threading.Thread(target=session, args=(share,)) for share in shares]
    for t in threads:
        t.start()
    ready.wait()
    began = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    return {
        "clients": clients,
        "questions": len(questions),
        "answered": len(times),
        "errors": len(errors),
        "first_errors": errors[:3],
        "p50_ms": round(percentile(times, 50) * 1000),
        "p95_ms": round(percentile(times, 95) * 1000),
        "throughput_qps": round(len(times) / wall, 2),
        "wall_s": round(wall, 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, default=ROOT / "index-eval" / "multihop")
    parser.add_argument("--queries", type=Path, default=ROOT.parent / "shared/data/multihop/queries_dev.json")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    questions = [q["query"] for q in json.loads(args.queries.read_text())][: args.questions]

    port = free_port()
    process = start_server(args.index, port)
    try:
        url = f"http://127.0.0.1:{port}/"
        run(url, questions[:5], 1)  # warm-up
        single = run(url, questions, 1)
        many = run(url, questions, args.clients)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    for result in (single, many):
        print(
            f"{result['clients']:3d} client(s): {result['answered']}/{result['questions']} answered, "
            f"{result['errors']} errors, p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, "
            f"{result['throughput_qps']} questions/s"
        )
        for error in result["first_errors"]:
            print(f"    error: {error}")
    ratio = many["throughput_qps"] / single["throughput_qps"]
    print(f"throughput with {args.clients} clients / one client: {ratio:.2f}x (goal >= 1.5)")
    if args.json:
        args.json.write_text(json.dumps({"single": single, "many": many, "ratio": round(ratio, 3)}, indent=2) + "\n")
    return 0 if not many["errors"] and not single["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
