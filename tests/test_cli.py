"""`rag ask` refuses bad input plainly (exit code 2, a message that says what is
allowed, no traceback) and, reading questions from stdin, reports a bad line and
answers the rest."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import SAMPLE

from rag.build import Builder
from rag.settings import Settings

QUESTION = "Why did Russia-Turkey ties sour?"
FOLLOW = "Who offered an apology to Moscow?"


@pytest.fixture(scope="module")
def index(tmp_path_factory, embedder):
    root = tmp_path_factory.mktemp("cli")
    corpus = root / "corpus"
    corpus.mkdir()
    (corpus / SAMPLE.name).write_text(SAMPLE.read_text())
    settings = Settings(corpus_dir=corpus, index_dir=root / "index")
    Builder(settings, embedder=embedder)()
    return settings.index_dir


def rag(*args, stdin: bytes | None = None):
    return subprocess.run(
        [sys.executable, "-m", "rag.cli", *args], capture_output=True, input=stdin, timeout=300
    )


def refused(result, *words: str) -> str:
    err = result.stderr.decode()
    assert result.returncode == 2, (result.returncode, err)
    assert "Traceback" not in err and result.stdout == b""
    for word in words:
        assert word in err, err
    return err


def test_stdin_bad_lines_are_reported_and_the_rest_answered(index):
    stdin = b"".join(
        [
            QUESTION.encode() + b"\n",
            "Caf\u00e9 Putin Erdogan?".encode("latin-1") + b"\n",  # not UTF-8
            b"PK\x03\x04\x14\x00\x00\x00\r\n",  # binary (valid UTF-8, control bytes)
            b"   \t \n",  # blank: skipped without a word
            b"?!\n",  # no word at all
            FOLLOW.encode() + b"\n",
        ]
    )
    result = rag("ask", "--index", str(index), "--json", stdin=stdin)
    err = result.stderr.decode()
    assert "Traceback" not in err
    lines = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert [line.get("line") for line in lines] == [None, 2, 3, 5, None]
    assert lines[0]["question"] == QUESTION and lines[0]["citations"]
    assert lines[-1]["question"] == FOLLOW and lines[-1]["citations"]
    assert "not UTF-8" in lines[1]["error"] and "binary" in lines[2]["error"] and "empty" in lines[3]["error"]
    assert "line 2 skipped" in err and "line 5 skipped" in err
    assert result.returncode == 1  # something was skipped


def test_stdin_bad_line_in_text_mode(index):
    result = rag("ask", "--index", str(index), stdin=b"\xff\xfe\xfa\n" + QUESTION.encode() + b"\n")
    assert "line 1 skipped: not UTF-8" in result.stderr.decode()
    assert "Ties between Moscow and Ankara soured" in result.stdout.decode()
    assert result.returncode == 1


@pytest.mark.parametrize("question", ["", "   ", "\t\n", "?", "... !!"])
def test_a_question_without_words_is_refused(index, question):
    # Given as an argument, it must not fall back to reading stdin (which would wait).
    result = rag("ask", "--index", str(index), question, stdin=QUESTION.encode() + b"\n")
    refused(result, "the question is empty")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--k", "0"], ["k must be a whole number from 1 to 100", "got 0"]),
        (["--k", "-3"], ["from 1 to 100", "got -3"]),
        (["--k", "100000"], ["from 1 to 100"]),
        (["--from", "notadate"], ["--from must be a date written YYYY-MM-DD", "notadate"]),
        (["--to", "2017-13-45"], ["--to must be a date written YYYY-MM-DD", "2017-13-45"]),
        (["--to", "2017-02-30"], ["--to must be a date"]),
        (["--from", "20170209"], ["--from must be a date written YYYY-MM-DD"]),
        (["--from", "2018-01-01", "--to", "2017-01-01"], ["is after --to"]),
    ],
)
def test_k_and_dates_are_checked(index, args, words):
    refused(rag("ask", "--index", str(index), *args, QUESTION), *words)


def test_an_argument_that_is_not_utf8_is_refused(index):
    # Linux hands bytes to argv; Python keeps undecodable ones as lone surrogates.
    result = subprocess.run(
        [sys.executable.encode(), b"-m", b"rag.cli", b"ask", b"--index", str(index).encode(), b"Caf\xe9 \xff?"],
        capture_output=True, timeout=300,
    )
    refused(result, "not valid UTF-8")


def test_valid_limits_still_answer(index):
    result = rag("ask", "--index", str(index), "--json", "--k", "1", "--from", "2017-02-09", "--to", "2017-02-09", QUESTION)
    assert result.returncode == 0, result.stderr.decode()
    data = json.loads(result.stdout)
    assert len(data["passages"]) == 1 and data["citations"]


# ---------------------------------------------------------------- control characters (issue 17, item 13)

FORGED = "x\narticles: 99 added, 0 updated, 0 removed, 0 unchanged, 0 skipped; chunks: 1 embedded, 1 in index; 0.1 s\n"


def test_file_names_cannot_forge_output_or_drive_the_terminal(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / SAMPLE.name).write_text(SAMPLE.read_text())
    (corpus / f"{FORGED}.txt").write_text("")  # skipped: named in the output
    (corpus / "clear\x1b[2J\x1b]0;owned\x07.txt").write_text(
        "Clear\x1b[2J title\n\nA story about the \x1b[31mharbour\x1b[0m ferries, which run every hour from the pier.\n"
    )
    build = rag("build", "--corpus", str(corpus), "--index", str(tmp_path / "index"), "--quiet")
    out, err = build.stdout.decode(), build.stderr.decode()
    assert build.returncode == 0, err
    assert out.count("\n") == 1 and out.startswith("articles: 2 added")  # one summary line, the real one
    assert "\x1b" not in out + err and "\x07" not in err
    assert "skipped x\\narticles: 99 added" in err and all(
        line.startswith(("skipped ", "note: ")) for line in err.splitlines()
    )

    answer = rag("ask", "--index", str(tmp_path / "index"), "How often do the harbour ferries run?")
    text = answer.stdout.decode()
    assert answer.returncode == 0 and "ferries" in text
    assert "\x1b" not in text and "\x07" not in text


def test_answers_show_control_characters_as_escapes():
    from rag.answer import Answer, Citation
    from rag.cli import format_answer

    citation = Citation(1, "A sentence.", "a", "Title\x1b[2J\nforged: line", "Out\u202elet", "2020-01-01", "", "", 0, 11, 1.0)
    shown = format_answer(Answer(question="q", text="A sentence. [1]", abstained=False, citations=[citation]))
    assert shown.splitlines() == ["A sentence. [1]", "", "[1] Title\\x1b[2J\\nforged: line — Out\\u202elet, 2020-01-01"]
