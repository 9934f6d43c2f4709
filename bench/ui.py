"""Chat UI figures: start-up time of `rag serve` and answer latency through its API.

    python bench/ui.py                        # corpus/ copied to a temp folder, indexed there
    python bench/ui.py --screenshot docs/screenshot.png

1. Start-up: `python -m rag.cli serve` in a subprocess, timed from launch until the
   page answers HTTP 200 and the app config (/config, with its components) loads.
   Repeated --starts times; the index is built beforehand and not counted.
2. Latency: 20 questions (2 unanswerable) sent to /ask with gradio_client, one at a
   time after one warm-up question; p50 / p95 / max of the wall time per answer.
3. With --screenshot: headless Chromium asks the Russia-Turkey question in the chat
   and saves the page.

Results are printed (and written as JSON with --out FILE).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from common import free_port, percentile, time_each

ROOT = Path(__file__).resolve().parents[1]

QUESTIONS = [
    "Why did Russia-Turkey ties sour?",
    "What did Putin tell Erdogan on the phone?",
    "How many Turkish soldiers were killed in al-Bab?",
    "Who is the Kremlin spokesman?",
    "When did Moscow launch its campaign in Syria?",
    "What is Operation Euphrates Shield?",
    "Which countries mediate the Syria peace talks?",
    "When did Turkey shoot down a Russian jet?",
    "How did Russia and Turkey mend their relations?",
    "What did the Turkish army statement say?",
    "Where are Russia and Turkey conducting joint operations?",
    "How many soldiers were wounded in the airstrike?",
    "What did the Kremlin impose on Turkey?",
    "What is the Democratic Union Party?",
    "How did Damascus describe the Turkish intervention?",
    "Which peace talks did Putin and Erdogan agree to advance?",
    "What did the Russian warplane accidentally hit?",
    "At whose request did Russia start its Syria campaign?",
    "What is the capital of Peru?",
    "Who won the 2018 football World Cup?",
]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"]


def prepare(corpus: Path, work: Path) -> tuple[Path, Path]:
    from rag.build import Builder
    from rag.settings import Settings

    shutil.copytree(corpus, work / "corpus")
    settings = Settings.from_env(corpus_dir=work / "corpus", index_dir=work / "index")
    report = Builder(settings)()
    print(f"index: {report.summary()}", flush=True)
    return settings.corpus_dir, settings.index_dir


def start_server(corpus: Path, index: Path, port: int) -> subprocess.Popen:
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"}
    env.pop("RAG_AUTH", None)
    return subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "serve", "--index", str(index), "--corpus", str(corpus), "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def wait_usable(url: str, process: subprocess.Popen, timeout: float = 180) -> None:
    """Until GET / is 200 and GET /config returns the app's components."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"rag serve exited with {process.returncode}: {process.stderr.read().decode()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as page:
                if page.status == 200:
                    with urllib.request.urlopen(url + "config", timeout=5) as config:
                        if json.load(config).get("components"):
                            return
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise TimeoutError(f"{url} not usable after {timeout} s")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def screenshot(url: str, path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1360, "height": 860}, device_scale_factor=1)
        page.set_default_timeout(120_000)
        page.goto(url)
        box = page.locator("#question textarea")
        box.fill(QUESTIONS[0])
        box.press("Enter")
        page.locator("#chat .answer-foot").wait_for()
        page.locator("#sources mark").first.wait_for()
        page.mouse.move(0, 0)
        time.sleep(0.5)
        path.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(path))
        browser.close()
    print(f"screenshot: {path}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    parser.add_argument("--starts", type=int, default=3, help="times to start the server (default 3)")
    parser.add_argument("--screenshot", type=Path, help="save a screenshot of the chat here")
    parser.add_argument("--out", type=Path, help="also write the results as JSON here")
    args = parser.parse_args()
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

    from gradio_client import Client

    with tempfile.TemporaryDirectory(prefix="rag-bench-ui-") as tmp:
        corpus, index = prepare(args.corpus, Path(tmp))
        starts = []
        for i in range(args.starts):
            port = free_port()
            began = time.perf_counter()
            process = start_server(corpus, index, port)
            try:
                wait_usable(f"http://127.0.0.1:{port}/", process)
                starts.append(time.perf_counter() - began)
                print(f"start-up {i + 1}: {starts[-1]:.2f} s", flush=True)
                if i < args.starts - 1:
                    continue
                url = f"http://127.0.0.1:{port}/"
                client = Client(url, verbose=False, download_files=False)
                warmup = ["warm-up question about Syria"]
                answers = []

                def ask(question: str, client: Client = client, answers: list = answers) -> None:
                    answers.append(client.predict(question, api_name="/ask"))

                times = time_each(ask, QUESTIONS, warmup)
                abstained = sum(answer["abstained"] for answer in answers[len(warmup) :])
                client.close()
                if args.screenshot:
                    screenshot(url, args.screenshot)
            finally:
                stop(process)

    result = {
        "startup_s": {"runs": [round(s, 2) for s in starts], "median": round(statistics.median(starts), 2)},
        "answer_latency_ms": {
            "questions": len(times),
            "abstained": abstained,
            "p50": round(percentile(times, 50) * 1000),
            "p95": round(percentile(times, 95) * 1000),
            "max": round(max(times) * 1000),
        },
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
    }
    print(
        f"\nrag serve start-up to usable page: median {result['startup_s']['median']:.2f} s "
        f"(runs: {', '.join(f'{s:.2f}' for s in starts)})\n"
        f"/ask latency over {len(times)} questions ({abstained} abstained): "
        f"p50 {result['answer_latency_ms']['p50']} ms, p95 {result['answer_latency_ms']['p95']} ms, "
        f"max {result['answer_latency_ms']['max']} ms"
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
