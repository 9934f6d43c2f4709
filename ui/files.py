"""Putting uploaded files into the corpus folder and taking them out, safely.

A name coming from a browser is untrusted: only its last path component is kept
(both `/` and `\\` count as separators), reduced to letters, digits, `.`, `-` and
`_`, and the final path is resolved and checked to lie directly inside the corpus
folder before anything is written or deleted.
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

MAX_NAME = 100


class UploadRefused(ValueError):
    """The file cannot go into the corpus (type, size, name); the message says why."""


def safe_name(name: str) -> str:
    """A harmless file name for `name`: basename only, safe characters, no leading dot.
    Raises UploadRefused when nothing usable is left or the type is not supported."""
    base = re.split(r"[\\/]", unicodedata.normalize("NFKC", name or ""))[-1]
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", base)
    base = re.sub(r"\.{2,}", ".", base).strip(".-_ ")
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    suffix = "." + suffix.lower() if suffix else ""
    if suffix not in SUPPORTED:
        shown = Path(name or "").suffix or "no extension"
        raise UploadRefused(f"unsupported file type ({shown}); allowed: {', '.join(sorted(SUPPORTED))}")
    stem = stem.strip(".-_")[: MAX_NAME - len(suffix)] or "article"
    return stem + suffix


def inside(folder: Path, candidate: Path) -> Path:
    """`candidate` resolved, provided it lies inside `folder` (raises UploadRefused otherwise)."""
    root = Path(folder).resolve()
    target = Path(candidate).resolve()
    if target == root or root not in target.parents:
        raise UploadRefused(f"refusing a path outside the corpus folder: {candidate}")
    return target


@dataclass
class Saved:
    name: str
    replaced: bool
    size: int


def save_upload(source: Path | str, original_name: str, corpus_dir: Path, max_mb: float) -> Saved:
    """Copy an uploaded file into the corpus folder under a safe name (replacing a
    file of the same name: uploading a corrected article updates it)."""
    source = Path(source)
    name = safe_name(original_name)
    size = source.stat().st_size
    limit = int(max_mb * 1_000_000)  # the build's own limit (rag.build)
    if size > limit:
        raise UploadRefused(f"{name} is too large ({size / 1e6:.1f} MB; limit {max_mb:g} MB)")
    if size == 0:
        raise UploadRefused(f"{name} is empty")
    corpus = Path(corpus_dir).resolve()
    corpus.mkdir(parents=True, exist_ok=True)
    target = inside(corpus, corpus / name)
    if target.parent != corpus:
        raise UploadRefused(f"refusing to write {name} outside the corpus folder")
    replaced = target.exists()
    # Write next to the target and rename: a half-copied file is never seen by a build.
    fd, tmp = tempfile.mkstemp(prefix=".upload-", dir=corpus)
    try:
        with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
            shutil.copyfileobj(src, out)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Saved(name, replaced, size)


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
