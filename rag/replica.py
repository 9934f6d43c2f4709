"""`rag export-replica DIR`: a complete, self-contained copy of an index, for
another machine or read-only media, taken while builds and servers run.

Copying the folder's files by hand is complete only once the last build's
checkpoint has copied SQLite's write-ahead log into `rag.sqlite` (see
`Database.checkpoint`, rag/database.py); this never depends on it. The database is copied with
SQLite's online backup from one read snapshot (the log included), the segment
files that snapshot names are copied beside it, every copied file is checked
against the checksum recorded when it was written (a damaged one is written
anew from the copy's database), and the folder appears under its name only when
complete.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from rag.errors import DATABASE, StoreError
from rag.store import IndexStore

log = logging.getLogger(__name__)

ATTEMPTS = 5
"""Snapshots tried when a build merges away segment files while they are copied."""


@dataclass
class ReplicaReport:
    target: Path
    built_at: str | None
    """`last_build` of the copied snapshot."""
    segments: int = 0
    bytes: int = 0
    repaired: list[str] = field(default_factory=list)
    """Segments whose source files were damaged, written anew in the copy."""

    def summary(self) -> str:
        built = datetime.fromtimestamp(float(self.built_at)).isoformat(timespec="seconds") if self.built_at else "(none)"
        return (
            f"exported the index as of its build of {built} to {self.target}/: "
            f"{self.segments} segment(s), {self.bytes / 1e6:.1f} MB"
            + (f"; rewrote damaged {', '.join(self.repaired)}" if self.repaired else "")
        )


def export_replica(index_dir: Path | str, target: Path | str) -> ReplicaReport:
    """Copy the index in `index_dir` to the new folder `target` (which must not
    exist, or be empty); raises StoreError when it cannot."""
    index_dir, target = Path(index_dir), Path(target)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise StoreError(f"{target} exists and is not an empty folder: give export-replica a new folder")
    if target.resolve() == index_dir.resolve():
        raise StoreError("export-replica needs another folder than the index's own")
    staging = target.with_name(target.name + ".tmp")
    for _ in range(ATTEMPTS):
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        try:
            report = _copy(index_dir, staging, target)
        except FileNotFoundError as err:  # merged away by a build since the snapshot: take a newer one
            log.info("export-replica: %s went while copying; starting again from a newer snapshot", err.filename)
            continue
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if target.exists():
            target.rmdir()
        staging.rename(target)
        return report
    shutil.rmtree(staging, ignore_errors=True)
    raise StoreError(f"the segments of {index_dir}/ kept changing while they were copied ({ATTEMPTS} tries); try again")


def _copy(index_dir: Path, staging: Path, target: Path) -> ReplicaReport:
    source = IndexStore(index_dir, snapshot=True)
    try:
        destination = sqlite3.connect(staging / DATABASE)
        try:
            source.db.backup(destination)  # the snapshot, write-ahead log included
        finally:
            destination.close()
    finally:
        source.close()
    copy = IndexStore(staging)
    try:
        report = ReplicaReport(target, copy.meta("last_build"))
        infos = copy.segment_register.infos()
        for info in infos:
            for path in info.files(index_dir):
                if path.is_dir():
                    shutil.copytree(path, staging / path.name)  # copy2: modification times kept, as recorded
                else:
                    shutil.copy2(path, staging / path.name)
        report.segments = len(infos)
        report.repaired = copy.segment_register.repair(quick=False)
        copy.segment_register.remove_unowned()  # the damaged files those replaced
        copy.write_manifest()
        copy.db.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no log to carry
    finally:
        copy.close()
    report.bytes = sum(p.stat().st_size for p in staging.rglob("*") if p.is_file())
    return report
