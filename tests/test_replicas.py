"""Serving replicas: several `rag serve` processes on one index folder, each
picking up new builds; an index copied to read-only media answers."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SAMPLE, article_text, free_port, sample_index, tmpfs, wait_for

from rag.build import Builder
from rag.settings import Settings

FERRY = "When will the ferry committee review its plan?"


def rag(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], input=stdin, capture_output=True, text=True, timeout=300)


@pytest.fixture
def built(tmp_path, embedder) -> Settings:
    return sample_index(tmp_path, embedder)


def cited_files(answer: dict) -> set[str]:
    return {c["file"] for c in answer["citations"]}


def test_two_servers_share_one_index_and_both_pick_up_a_new_build(built, embedder):
    from gradio_client import Client

    ports = [free_port(), free_port()]
    servers = [
        subprocess.Popen(
            [sys.executable, "-m", "rag.cli", "serve", "--index", str(built.index_dir), "--corpus", str(built.corpus_dir), "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        for port in ports
    ]
    try:
        urls = [f"http://127.0.0.1:{port}/" for port in ports]
        for url, server in zip(urls, servers):
            wait_for(url, server)
        clients = [Client(url, verbose=False, download_files=False) for url in urls]
        assert all("ferry.txt" not in cited_files(c.predict(FERRY, api_name="/ask")) for c in clients)

        (built.corpus_dir / "ferry.txt").write_text(article_text("ferry"))
        assert Builder(built, embedder=embedder)().added == 1  # a build by a third process, the builder
        for client in clients:
            assert "ferry.txt" in cited_files(client.predict(FERRY, api_name="/ask"))
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=30)


@pytest.fixture
def read_only_copy(built, tmp_path):
    """The index copied onto a tmpfs that is then remounted read-only."""
    with tmpfs(tmp_path / "ro", "64m") as disk:
        # What a deployment copies: the folder as the build left it (no -wal, no lock).
        shutil.copytree(built.index_dir, disk / "index", ignore=shutil.ignore_patterns("*-wal", "*-shm", "build.lock"))
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        yield disk / "index"


def test_an_index_on_read_only_media_answers(read_only_copy):
    with pytest.raises(OSError):
        (read_only_copy / "probe").write_text("x")  # it really is read-only
    asked = rag("ask", "--index", str(read_only_copy), "--json", "Why did Russia-Turkey ties sour?")
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert not answer["abstained"] and cited_files(answer) == {SAMPLE.name}
    stats = rag("stats", "--index", str(read_only_copy), "--json")
    assert stats.returncode == 0 and json.loads(stats.stdout)["problems"] == []
    # Building into it is refused with the reason, not a traceback.
    refused = rag("build", "--index", str(read_only_copy), "--corpus", str(Path(SAMPLE).parent), "--quiet")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr and "read-only" in refused.stderr.lower()
