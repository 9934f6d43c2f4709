"""The default backend, `auto`: chosen from the CPU's instruction sets for a new index, recorded in
the manifest as what it chose, and kept by later builds of an index made with another backend."""

from __future__ import annotations

import dataclasses

import pytest

from rag.build import Builder
from rag.embed import AUTO_WITHOUT_VNNI, Embedder, auto_backend, cpu_flags
from rag.settings import Settings
from rag.store import IndexStore


@pytest.mark.parametrize(
    "flags, expected",
    [
        (("avx2", "avx512f", "avx512bw", "avx512_vnni"), "onnx-int8"),  # Intel Xeon (Cascade Lake on)
        (("avx2", "avx_vnni"), "onnx-int8"),  # Alder Lake and later desktops
        (("asimddp",), "onnx-int8"),  # ARM with the dot-product extension
        (("avx2",), AUTO_WITHOUT_VNNI),  # AVX2 only (the AMD EPYC of docs/benchmarks.md)
        ((), AUTO_WITHOUT_VNNI),  # nothing known (no /proc/cpuinfo)
    ],
)
def test_auto_picks_int8_only_where_the_cpu_has_int8_instructions(flags, expected):
    assert auto_backend(flags) == expected


def test_the_default_is_auto_and_resolves_to_this_cpus_choice(embedder: Embedder):
    assert Settings().backend == "auto"
    assert embedder.backend == auto_backend(cpu_flags()) != "auto"


def manifest_backend(index) -> str:
    store = IndexStore(index)
    try:
        return store.manifest["backend"]
    finally:
        store.close()


def test_auto_records_its_choice_and_keeps_an_existing_indexs_backend(settings: Settings):
    chosen = auto_backend()
    other = "onnx" if chosen == "onnx-int8" else "onnx-int8"
    Builder(dataclasses.replace(settings, backend=other))()
    assert manifest_backend(settings.index_dir) == other
    # An incremental build with the default keeps the index's backend (no "built with other settings").
    report = Builder(settings)()
    assert report.unchanged == 1 and manifest_backend(settings.index_dir) == other
    # A full rebuild is a new index: this CPU's choice.
    Builder(settings)(full=True)
    assert manifest_backend(settings.index_dir) == chosen
