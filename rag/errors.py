"""Index problems a person can act on, and how to say them.

Every command and the UI show an error the same way: `explained` turns an OS or
SQLite error into a `StoreError` whose message says what happened to the index
and what to do (`explain`); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DATABASE = "rag.sqlite"
"""The index database's file name in its folder (opened by rag/database.py; named
here, where the messages about it are made)."""
REBUILD_HINT = "Run `rag build --full` to rebuild it from the corpus folder."


class StoreError(Exception):
    """Base for index problems the user can act on."""


class IndexDamaged(StoreError):
    """The database cannot be read: `rag build --full` starts it afresh from the corpus."""


class NotAnIndex(StoreError):
    """The path holds something else (a file, another program's database): never written to."""


class DiskFull(StoreError):
    """A write failed for lack of space; nothing half-written is kept."""


def explain(err: BaseException, where: Path | str) -> StoreError | None:
    """What an OS or SQLite error means for the index in `where`, as a StoreError
    with a message the user can act on; None when it is none of the known cases."""
    if isinstance(err, StoreError):
        return err
    text = str(err)
    if (
        (isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT))
        or "database or disk is full" in text
        # numpy reports a short write without an errno, SQLite a failed -shm file as an
        # I/O error: a full disk, if it is one.
        or (
            ((isinstance(err, OSError) and err.errno is None) or "disk I/O error" in text)
            and _free_bytes(Path(where)) < 1_000_000
        )
    ):
        return DiskFull(
            f"the disk holding {where} is full ({text}). Free some space and run `rag build` again; "
            "the index keeps its last complete state and the next build removes what this one left half-written."
        )
    if isinstance(err, OSError):  # a path that is a file, not writable, ...
        return StoreError(f"cannot use {err.filename or where}: {err.strerror or text}")
    if isinstance(err, sqlite3.OperationalError) and "locked" in text:
        return StoreError(f"the index in {where}/ is locked by another process ({text}); try again in a moment")
    damage = ("not a database", "malformed", "disk image", "no such table", "no such column")
    # sqlite3 raises the bare DatabaseError for a file it cannot make sense of; its
    # subclasses (integrity, programming errors) are something else.
    if type(err) is sqlite3.DatabaseError or (isinstance(err, sqlite3.Error) and any(p in text for p in damage)):
        return damaged(Path(where), text)
    if isinstance(err, sqlite3.Error):  # read-only file system, I/O error, ...
        return StoreError(f"cannot use the index database in {where}/ ({text})")
    return None


class IndexMismatch(StoreError):
    """The index was built with other settings than the ones in use."""


class IndexMissing(StoreError):
    """No index where one was expected."""


def damaged(index_dir: Path, what: str) -> IndexDamaged:
    """The error for an index database SQLite cannot read or finds damaged (`what`)."""
    return IndexDamaged(f"the index database {Path(index_dir) / DATABASE} is damaged ({what}). {REBUILD_HINT}")


@contextmanager
def explained(where: Path | str) -> Iterator[None]:
    """Raise an OS or SQLite error of the block as the `StoreError` that `explain`
    makes of it for the index in `where`; others, unknown cases included, pass as
    they are (a bug: its traceback is wanted)."""
    try:
        yield
    except (StoreError, OSError, sqlite3.Error) as err:
        known = explain(err, where)
        if known is None or known is err:
            raise
        raise known from err


def _free_bytes(path: Path) -> int:
    """Free space on the file system holding `path` (or its nearest existing parent)."""
    for folder in (path, *path.absolute().parents):
        if folder.exists():
            try:
                return shutil.disk_usage(folder).free
            except OSError:
                return 1 << 62
    return 1 << 62
