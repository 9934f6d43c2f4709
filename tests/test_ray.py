"""`rag build --ray`: a two-node Ray cluster on loopback embeds, and the index equals a local build's."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import article_text

from rag import build
from rag.build import Builder
from rag.cli import main
from rag.store import SENTENCE_DTYPE, IndexStore

ROOT = Path(__file__).resolve().parents[1]
# Ray Data warns about its own deprecated settings when it starts.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_asking_never_imports_ray():
    # Ray takes seconds to import: only `rag build --ray` may pay for it.
    code = "import sys, rag.cli, rag.build, rag.pipeline; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


@pytest.fixture(scope="module")
def cluster():
    """Address of a Ray head and one worker node, one CPU each, started with `ray start`
    as on real machines (both on 127.0.0.1 here); stopped by process group afterwards,
    never with `ray stop`, which would stop every Ray on the machine."""
    # Token authentication, as a real cluster should run: one secret for every node
    # and the driver. Given here explicitly, so ~/.ray/auth_token is neither read nor
    # made; set before Ray is imported, which reads it once.
    saved = {name: os.environ.get(name) for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")}
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32))
    os.environ.pop("RAY_AUTH_TOKEN_PATH", None)
    ray = pytest.importorskip("ray")
    ray_cli = Path(sys.executable).parent / "ray"
    port = _free_port()
    address = f"127.0.0.1:{port}"
    # Short: Ray's socket paths below it must stay within 107 bytes.
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    common = ["--num-cpus", "1", "--object-store-memory", str(100 * 2**20), "--disable-usage-stats", "--block"]
    common += ["--node-ip-address", "127.0.0.1", "--temp-dir", temp]
    nodes = [_start([ray_cli, "start", "--head", "--port", str(port), "--include-dashboard", "false", *common])]
    try:
        _wait_for_port(port, nodes[0])
        nodes.append(_start([ray_cli, "start", "--address", address, *common]))
        deadline = time.monotonic() + 60
        ray.init(address=address, logging_level="WARNING")
        while ray.cluster_resources().get("CPU", 0) < 2:
            assert time.monotonic() < deadline, "the worker node did not join"
            time.sleep(0.5)
        # The build calls ray.init itself (shipping rag/ to the workers): let it.
        ray.shutdown()
        yield address
    finally:
        ray.shutdown()
        for node in reversed(nodes):
            _stop(node)
        shutil.rmtree(temp, ignore_errors=True)
        for name, value in saved.items():
            os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(command: list) -> subprocess.Popen:
    # Own process group: stopping it stops exactly the processes this node started.
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def _wait_for_port(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "ray start --head exited"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise AssertionError("the Ray head did not open its port")


def _stop(process: subprocess.Popen) -> None:
    # `ray start --block` stops its node in order on SIGTERM (a signal to the whole
    # group at once kills the GCS first and leaves it waiting); what is left of the
    # group after 10 s (the head waits on a GCS that is gone) is killed.
    process.terminate()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@pytest.fixture
def news(tmp_path, corpus):
    """The sample article and four small ones: a few groups of chunks, each a few batches."""
    for topic in ("ports", "rail", "schools", "water"):
        (corpus / f"{topic}.txt").write_text(article_text(topic, n=9))
    return corpus


def index_contents(index_dir: Path) -> dict:
    """What a build wrote: articles, chunk texts with vectors, sentence vectors (in position order)."""
    store = IndexStore(index_dir)
    try:
        articles = [tuple(r) for r in store.query("SELECT id, hash, title FROM articles ORDER BY id")]
        chunks = store.query("SELECT article_id, position, text, embedding FROM chunks ORDER BY article_id, position")
        sentences = store.query("SELECT article_id, position, vector FROM sentences ORDER BY article_id, position")
        return {
            "articles": articles,
            "chunks": [(r["article_id"], r["position"], r["text"]) for r in chunks],
            "vectors": np.vstack([np.frombuffer(r["embedding"], np.float32) for r in chunks]),
            "sentences": [(r["article_id"], r["position"]) for r in sentences],
            "sentence_vectors": np.vstack([np.frombuffer(r["vector"], SENTENCE_DTYPE) for r in sentences]).astype(np.float32),
            "manifest": store.manifest,
            "ntotal": store.segments.ntotal,
        }
    finally:
        store.close()


def assert_same_index(ray_dir: Path, local_dir: Path) -> None:
    on_ray, here = index_contents(ray_dir), index_contents(local_dir)
    assert len(on_ray["articles"]) == 5
    for key in ("articles", "chunks", "sentences", "manifest", "ntotal"):
        assert on_ray[key] == here[key], key
    assert len(on_ray["chunks"]) > len(on_ray["articles"])  # some articles have several chunks
    np.testing.assert_allclose(on_ray["vectors"], here["vectors"], atol=1e-4)
    np.testing.assert_allclose(on_ray["sentence_vectors"], here["sentence_vectors"], atol=1e-3)  # stored as float16
    # Not a vacuous match: the vectors are real unit vectors, distinct per chunk.
    assert np.allclose(np.linalg.norm(here["vectors"], axis=1), 1, atol=1e-3)
    assert len({v.tobytes() for v in here["vectors"]}) == len(here["vectors"])


def test_cli_build_on_a_cluster_equals_a_local_build(cluster, news, tmp_path, monkeypatch):
    # Small groups and batches: several Ray Data runs, several rows each, rows in any order.
    monkeypatch.setenv("RAG_EMBED_GROUP", "16")
    monkeypatch.setenv("RAG_BATCH_SIZE", "4")
    ray_dir, local_dir = tmp_path / "on-ray", tmp_path / "local"
    # Chunking goes to the cluster too (from 2 articles here), not to the driver's processes.
    monkeypatch.setattr(build, "PARALLEL_CHUNKING_MIN", 2)
    with monkeypatch.context() as driver:
        driver.setattr(build, "chunk_articles", lambda *_: pytest.fail("chunked on the driver"))
        assert main(["build", "--corpus", str(news), "--index", str(ray_dir), "--ray", cluster, "--quiet"]) == 0
    import ray

    assert ray.is_initialized() and len([n for n in ray.nodes() if n["Alive"]]) == 2
    assert main(["build", "--corpus", str(news), "--index", str(local_dir), "--quiet"]) == 0
    assert_same_index(ray_dir, local_dir)

    # An incremental build on the cluster embeds only what changed.
    (news / "rail.txt").write_text(article_text("trams", n=5))
    assert main(["build", "--corpus", str(news), "--index", str(ray_dir), "--ray", cluster, "--quiet"]) == 0
    assert main(["build", "--corpus", str(news), "--index", str(local_dir), "--quiet"]) == 0
    assert_same_index(ray_dir, local_dir)


def test_separate_sentence_vectors_on_a_cluster(cluster, settings, news, tmp_path):
    # `separate` embeds with `embedder(texts)` rather than `embed(texts, spans)`.
    local = replace(settings, sentence_vectors="separate", embed_group=24, index_dir=tmp_path / "local")
    on_ray = replace(local, ray_address=cluster, index_dir=tmp_path / "on-ray")
    builder = Builder(on_ray)
    report = builder(full=True)
    assert type(builder.embedder).__name__ == "RayEmbedder" and builder.embedder.actors == 2
    assert report.added == 5 and report.chunks_embedded == report.chunks_total
    Builder(local)(full=True)
    assert_same_index(on_ray.index_dir, local.index_dir)


def test_a_single_forward_pass_stays_on_the_driver(cluster, embedder, monkeypatch):
    # A question (`rag eval` reuses the build's embedder) must not wait seconds for an actor pool.
    import ray.data

    from rag.cluster import RayEmbedder

    on_ray = RayEmbedder(cluster)
    monkeypatch.setattr(ray.data, "from_items", lambda *a, **k: pytest.fail("a Ray Data run for one batch"))
    question = ["Who met on Monday to discuss the plan?"]
    np.testing.assert_array_equal(on_ray(question), embedder(question))
