"""What an installed package needs at run time ships inside it, and `rag eval` fails
loudly rather than scoring other questions when it is missing."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT

from rag import evaluate
from rag.answer import Answer


def test_offtopic_questions_ship_in_the_wheel(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in ("rag", "ui"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist"), str(source)],
        capture_output=True,
        text=True,
    )
    if built.returncode != 0 and "No module named" in built.stderr:
        pytest.skip(f"cannot build a wheel here: {built.stderr.strip()[-200:]}")
    assert built.returncode == 0, built.stderr
    [wheel] = (tmp_path / "dist").glob("rag_news-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "rag/data/offtopic_questions.txt" in names
    questions = zipfile.ZipFile(wheel).read("rag/data/offtopic_questions.txt").decode().splitlines()
    assert len([q for q in questions if q.strip()]) == 30
    # The sentence-scorer experiment (training/) is not part of the package.
    assert not any(name.startswith("training/") for name in names)


def test_eval_refuses_to_run_without_the_offtopic_questions(monkeypatch, tmp_path):
    class Abstains:
        def ask(self, question, k=10, llm=False):
            return Answer(question=question, text="", abstained=True)

    queries = [{"query": "q", "evidence_list": [{"fact": "f"}]}]
    assert len(evaluate.offtopic_questions()) == 30
    monkeypatch.setattr(evaluate, "OFFTOPIC", tmp_path / "gone.txt")
    with pytest.raises(FileNotFoundError, match=r"gone\.txt is missing"):
        evaluate.evaluate_multihop(Abstains(), queries)


def test_offtopic_file_lives_in_the_package():
    assert evaluate.OFFTOPIC.is_relative_to(Path(evaluate.__file__).parent)
