"""Putting uploaded files into the corpus folder and taking them out, safely.

A name coming from a browser is untrusted: only its last path component is kept
(both `/` and `\\` count as separators); letters, marks and digits of any script
are kept (a name written in Chinese or Cyrillic stays readable), as are `. - _ ( )`
and single spaces; anything else becomes `-`, invisible format characters (such
as right-to-left overrides) are dropped. The final path is resolved and checked
to lie directly inside the corpus folder before anything is written or deleted.

An upload replaces a file only when it carries exactly that file's name (a
corrected article updates it). A name that had to be changed, or that differs
from an existing file's only in case or Unicode form (`x.TXT` and `x.txt`, NFD and
NFC `café.txt`), is saved under a new name (`x-2.txt`) and the message says so: a
different file is never replaced. The name compared is the one the browser sent
(`Uploaded.uploaded_as`), not the name Gradio stored its copy under: Gradio drops
trailing dots and spaces and the characters `<>:"|?*`, so `evil.txt.`, `evil.txt `
and `ev<il>.txt` all reach us as `evil.txt`.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from rag.ingest import SUPPORTED

MAX_NAME_BYTES = 200
"""Longest file name written, in UTF-8 bytes (file systems allow 255; room for `-2`)."""


class UploadRefused(ValueError):
    """The file cannot go into the corpus (type, size, name); the message says why."""


def _safe_char(c: str) -> str:
    category = unicodedata.category(c)
    if category[0] in "LMN" or c in "._-()":
        return c
    if category in ("Cf", "Cc", "Co", "Cn", "Cs"):
        return ""  # invisible or undefined: dropped, never shown
    return " " if category[0] == "Z" or c.isspace() else "-"


def _clip(stem: str, limit: int) -> str:
    while len(stem.encode("utf-8")) > limit:
        stem = stem[:-1]
    return stem


def safe_name(name: str) -> str:
    """A harmless file name for `name`: basename only, safe characters, no leading dot,
    a lower-case supported suffix. Raises UploadRefused when the type is not supported."""
    base = re.split(r"[\\/]", unicodedata.normalize("NFC", name or ""))[-1]
    base = "".join(_safe_char(c) for c in base)
    base = re.sub(r" {2,}", " ", base)
    base = re.sub(r"-{2,}", "-", base)
    # Trailing dots and spaces go, as Windows and Gradio drop them: `evil.txt.` is a .txt file.
    base = re.sub(r"\.{2,}", ".", base).strip().rstrip(". ")
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    # The suffix in its plain form (full-width `.TXT` -> `.txt`): the build recognises files by it.
    suffix = "." + unicodedata.normalize("NFKC", suffix).lower() if suffix else ""
    if suffix not in SUPPORTED:
        shown = Path(name or "").suffix or "no extension"
        raise UploadRefused(f"unsupported file type ({shown}); allowed: {', '.join(sorted(SUPPORTED))}")
    stem = _clip(stem.strip(".-_ "), MAX_NAME_BYTES - len(suffix)).rstrip(".-_ ") or "article"
    return stem + suffix


def _key(name: str) -> str:
    """Names that a user (or a case-insensitive file system) would take for the same."""
    return unicodedata.normalize("NFKC", name).casefold()


def inside(folder: Path, candidate: Path) -> Path:
    """`candidate` resolved, provided it lies inside `folder` (raises UploadRefused otherwise)."""
    root = Path(folder).resolve()
    target = Path(candidate).resolve()
    if target == root or root not in target.parents:
        raise UploadRefused(f"refusing a path outside the corpus folder: {candidate}")
    return target


class Uploaded(str):
    """The path of Gradio's copy of an uploaded file, with the name the browser sent
    for it (FileData.orig_name; None when the client sent none)."""

    uploaded_as: str | None

    def __new__(cls, path: str, uploaded_as: str | None = None) -> Uploaded:
        value = super().__new__(cls, path)
        value.uploaded_as = uploaded_as
        return value

    @property
    def original_name(self) -> str:
        """The name to save it under: as sent, else the name of Gradio's copy."""
        return self.uploaded_as or Path(self).name


@dataclass
class Saved:
    name: str
    """The name the file was saved under, in the corpus folder."""
    replaced: bool
    """True when it replaced the file of exactly that name (a corrected article)."""
    size: int
    asked: str = ""
    """The name it was uploaded as (its last path component)."""
    clash: str | None = None
    """An existing file that the upload's name would have replaced, left as it was."""

    def describe(self) -> str:
        """What happened, for the status line (plain text)."""
        verb = "replaced" if self.replaced else "saved"
        if self.clash:
            return f"{verb} as {self.name}: a different file is already called {self.clash}, it was left as it is"
        if self.asked and self.asked != self.name:
            return f"{verb} as {self.name} (uploaded as {self.asked})"
        return f"{verb} {self.name}"


def save_upload(source: Path | str, original_name: str, corpus_dir: Path, max_bytes: int) -> Saved:
    """Copy an uploaded file into the corpus folder under a safe name. It replaces
    a file only of exactly its own name; otherwise it gets a free name (see above)."""
    source = Path(source)
    name = safe_name(original_name)
    # Exactly as sent (not normalised): only a name identical to a file's replaces it.
    asked = re.split(r"[\\/]", original_name or "")[-1]
    size = source.stat().st_size
    if size > max_bytes:  # the build's own limit (Settings.max_file_bytes)
        raise UploadRefused(f"{name} is too large ({size / 1e6:.1f} MB; limit {max_bytes / 1e6:g} MB)")
    if size == 0:
        raise UploadRefused(f"{name} is empty")
    corpus = Path(corpus_dir).resolve()
    corpus.mkdir(parents=True, exist_ok=True)
    # Write next to the target and rename: a half-copied file is never seen by a build.
    fd, tmp = tempfile.mkstemp(prefix=".upload-", dir=corpus)
    try:
        with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
            shutil.copyfileobj(src, out)
        return _place(Path(tmp), corpus, name, asked, size)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _place(tmp: Path, corpus: Path, name: str, asked: str, size: int) -> Saved:
    """Move `tmp` into the corpus as `name`, or as `name-2`, `name-3`... when `name`
    would replace a file the upload was not named after."""
    taken = {_key(p.name): p.name for p in corpus.iterdir()}
    holder = taken.get(_key(name))
    if holder is not None and holder == name == asked:
        target = inside(corpus, corpus / name)
        os.replace(tmp, target)
        return Saved(name, True, size, asked)
    stem, suffix = name[: -len(Path(name).suffix)], Path(name).suffix
    candidate, number = name, 1
    while True:
        if _key(candidate) not in taken:
            target = inside(corpus, corpus / candidate)
            if target.parent != corpus:
                raise UploadRefused(f"refusing to write {candidate} outside the corpus folder")
            try:
                # A hard link fails if the name appeared meanwhile: nothing is overwritten.
                os.link(tmp, target)
            except FileExistsError:
                taken[_key(candidate)] = candidate
                continue
            return Saved(candidate, False, size, asked, clash=holder)
        number += 1
        candidate = _clip(stem, MAX_NAME_BYTES - len(suffix) - len(f"-{number}")) + f"-{number}{suffix}"


def is_list_file(path: str) -> bool:
    """json/jsonl files may hold many articles: removing one removes them all."""
    return Path(path.split("#", 1)[0]).suffix.lower() in {".json", ".jsonl"}


def remove_file(corpus_dir: Path, rel_path: str) -> Path:
    """Delete the corpus file at `rel_path` (relative to the corpus folder)."""
    target = inside(corpus_dir, Path(corpus_dir) / rel_path)
    if not target.is_file():
        raise UploadRefused(f"{rel_path} is not in the corpus folder any more")
    target.unlink()
    return target
