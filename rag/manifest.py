"""What an index is: the model, backend and settings its vectors were made with.

A build records the `Manifest` in the database (and a readable copy,
manifest.json, beside it); whoever opens the index compares it with the
settings in use (`mismatches`), since vectors made otherwise cannot be searched
together: changing any of these needs `rag build --full`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from rag.embed import BUNDLED_NAMES
from rag.settings import DEFAULT_MODEL, FORMAT_VERSION, Settings


def model_name(model: str) -> str:
    """The name recorded in the manifest: all spellings of the bundled model are one."""
    return DEFAULT_MODEL if model in BUNDLED_NAMES else model


@dataclass(frozen=True)
class Manifest:
    """An index's identity. Read from an older index, a field it did not record is None."""

    format_version: int | None
    model: str | None
    backend: str | None
    dimension: int | None
    """Length of the vectors: follows from the model, so it is not compared (0 when
    not known yet: the model is not loaded)."""
    chunking: dict | None
    """`Settings.chunking()`: chunk size and overlap, in tokens."""
    sentence_vectors: str | None

    COMPARED = ("format_version", "model", "backend", "chunking", "sentence_vectors")
    """What must match for an index to be used with other settings."""

    @classmethod
    def from_settings(cls, settings: Settings, dimension: int = 0) -> Manifest:
        """The manifest of an index built with `settings` (by a model of `dimension`)."""
        return cls(
            FORMAT_VERSION,
            model_name(settings.model),
            settings.backend,
            dimension,
            settings.chunking(),
            settings.sentence_vectors,
        )

    @classmethod
    def from_record(cls, record: dict) -> Manifest:
        """A manifest as stored (other keys, such as manifest.json's `last_build`, are left out)."""
        return cls(**{f.name: record.get(f.name) for f in fields(cls)})

    def record(self) -> dict:
        """What is stored: every field by name."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def mismatches(self, built: Manifest) -> list[str]:
        """How the manifest of an index, `built`, differs from this one (the
        settings'), one phrase per field; empty when it can be used as it is."""
        return [
            f"{name}: index has {getattr(built, name)!r}, settings ask for {getattr(self, name)!r}"
            for name in self.COMPARED
            if getattr(built, name) != getattr(self, name)
        ]
