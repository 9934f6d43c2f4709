"""Upload names: any script is kept, nothing escapes the corpus, and an upload never
replaces a different file (only the file of exactly its own name)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rag.ingest import corpus_files
from ui.files import MAX_NAME_BYTES, UploadRefused, safe_name, save_upload


def upload(tmp_path: Path, corpus: Path, name: str, text: str):
    source = tmp_path / "incoming"
    source.write_text(text, encoding="utf-8")
    return save_upload(source, name, corpus, max_bytes=1_000_000)


@pytest.mark.parametrize(
    "name",
    ["新闻一.txt", "Новости дня.md", "خبر عاجل.html", "ニュース.json", "खबर.jsonl", "Ελλάδα.htm", "café.txt"],
)
def test_names_in_any_script_are_kept(tmp_path, name):
    corpus = tmp_path / "corpus"
    saved = upload(tmp_path, corpus, name, "Some article text.")
    assert saved.name == name and not saved.replaced
    assert (corpus / name).read_text(encoding="utf-8") == "Some article text."
    assert [p.name for p in corpus_files(corpus)] == [name]  # the build will read it


def test_unsafe_characters_are_dropped_or_replaced():
    assert safe_name("\u202egnp.txt") == "gnp.txt"  # a right-to-left override is not kept
    assert safe_name("a\x00b\nc.txt") == "abc.txt"
    assert safe_name("a?b*c.txt") == "a-b-c.txt"
    assert safe_name("\uff52\uff45\uff50\uff4f\uff52\uff54.\uff34\uff38\uff34").endswith(".txt")
    assert safe_name("???.txt") == "article.txt"
    long = safe_name("长" * 300 + ".txt")
    assert long.endswith(".txt") and len(long.encode("utf-8")) <= MAX_NAME_BYTES
    with pytest.raises(UploadRefused, match="unsupported file type"):
        safe_name("新闻一.exe")


def test_same_name_replaces_its_own_file(tmp_path):
    corpus = tmp_path / "corpus"
    upload(tmp_path, corpus, "report.txt", "first version")
    saved = upload(tmp_path, corpus, "report.txt", "corrected version")
    assert saved.replaced and saved.name == "report.txt" and "replaced" in saved.describe()
    assert sorted(p.name for p in corpus.iterdir()) == ["report.txt"]
    assert (corpus / "report.txt").read_text() == "corrected version"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("x.txt", "x.TXT"),  # the suffix is written in lower case
        ("X.txt", "x.txt"),  # case only
        ("a-b.txt", "a?b.txt"),  # names that sanitise alike
        ("b.txt", "../B.txt"),  # last component, case
        ("café.txt", "cafe\u0301.txt".upper()),  # Unicode form and case
        ("report.txt", "\uff52\uff45\uff50\uff4f\uff52\uff54.txt"),  # full-width letters
    ],
)
def test_a_different_file_is_never_replaced(tmp_path, first, second):
    corpus = tmp_path / "corpus"
    kept = upload(tmp_path, corpus, first, "the first file")
    saved = upload(tmp_path, corpus, second, "the second file")
    assert not saved.replaced and saved.name != kept.name
    assert (corpus / kept.name).read_text() == "the first file"
    assert (corpus / saved.name).read_text() == "the second file"
    assert saved.clash == kept.name  # the upload is told which file it did not replace
    assert f"a different file is already called {kept.name}, it was left as it is" in saved.describe()
    assert len(list(corpus.iterdir())) == 2
    again = upload(tmp_path, corpus, second, "the third file")  # and again: a third name
    assert again.name not in (kept.name, saved.name) and len(list(corpus.iterdir())) == 3


def test_no_temporary_file_is_left(tmp_path):
    corpus = tmp_path / "corpus"
    upload(tmp_path, corpus, "one.txt", "text")
    upload(tmp_path, corpus, "one.TXT", "text")
    assert all(not p.name.startswith(".upload-") for p in corpus.iterdir())
