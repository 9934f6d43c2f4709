"""Upload names that Gradio rewrites before the app sees them (trailing space or dot,
`<>`) or that differ from a file's only in Unicode form must not replace that file.
The browser's own upload of the same names is in test_ui.py."""

from __future__ import annotations

import hashlib
import unicodedata
from pathlib import Path

import gradio as gr
import pytest
from gradio.data_classes import FileData, ListFiles
from gradio_client.utils import strip_invalid_filename_characters

from ui.articles import keep_upload_names
from ui.files import Uploaded, save_upload

NFC_CAFE = unicodedata.normalize("NFC", "café.txt")
NFD_CAFE = unicodedata.normalize("NFD", "café.txt")
NAMES = [("evil.txt ", "evil.txt"), ("evil.txt.", "evil.txt"), ("ev<il>.txt", "evil.txt"), (NFD_CAFE, NFC_CAFE)]


def gradio_copy(tmp_path: Path, name: str, text: str) -> Path:
    """Where Gradio's upload route stores a file sent as `name` (routes.py upload)."""
    folder = tmp_path / "gradio" / hashlib.sha256(text.encode()).hexdigest()
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / strip_invalid_filename_characters(name)
    copy.write_text(text, encoding="utf-8")
    return copy


@pytest.mark.parametrize(("sent", "existing"), NAMES)
def test_a_name_gradio_rewrites_does_not_replace_the_file_it_becomes(tmp_path, sent, existing):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / existing).write_text("the original article", encoding="utf-8")
    copy = gradio_copy(tmp_path, sent, "an upload")
    if sent != NFD_CAFE:  # what the app was given as the name: the existing file's
        assert copy.name == existing
    # The upload box gives the handler the name the browser sent along with Gradio's copy.
    box = keep_upload_names(gr.File(file_count="multiple", type="filepath"))
    [value] = box.preprocess(ListFiles(root=[FileData(path=str(copy), orig_name=sent)]))
    assert isinstance(value, Uploaded) and value == str(copy) and value.original_name == sent
    saved = save_upload(value, value.original_name, corpus, max_bytes=1_000_000)
    assert (corpus / existing).read_text(encoding="utf-8") == "the original article"
    assert not saved.replaced and saved.name != existing
    assert (corpus / saved.name).read_text(encoding="utf-8") == "an upload"
    if saved.clash:
        assert saved.clash == existing and f"a different file is already called {existing}" in saved.describe()
    else:  # ev<il>.txt is saved as ev-il.txt, which is no other file's name
        assert saved.name == "ev-il.txt" and "uploaded as ev<il>.txt" in saved.describe()


def test_the_exact_name_still_replaces_its_own_file(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / NFC_CAFE).write_text("first version", encoding="utf-8")
    copy = gradio_copy(tmp_path, NFC_CAFE, "corrected version")
    box = keep_upload_names(gr.File(file_count="single", type="filepath"))
    value = box.preprocess(FileData(path=str(copy), orig_name=NFC_CAFE))
    saved = save_upload(value, value.original_name, corpus, max_bytes=1_000_000)
    assert saved.replaced and saved.name == NFC_CAFE
    assert (corpus / NFC_CAFE).read_text(encoding="utf-8") == "corrected version"
    # A client that sends no name: the name of Gradio's copy is used.
    assert Uploaded(str(copy)).original_name == copy.name
