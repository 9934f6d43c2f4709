"""Write the bytecode of everything the project runs, once, at set-up.

`scripts/setup.sh` installs with `pip --no-compile` (compiling every file of torch, Ray, Gradio and
transformers, most never imported, is the slow part of an install). Python then compiles a module
when it is first imported and keeps the result, unless the environment sets
PYTHONDONTWRITEBYTECODE, as some machine images do: then every `rag` process, test worker and test
subprocess compiled torch, transformers and Gradio from source again (~15 s of CPU each; a clean
clone's test suite took 3 minutes longer for it). So set-up runs this with bytecode writing on.
One process loads the bundled model and encodes a sentence with torch (transformers imports a
model's code only when it loads one), then imports every module of `rag` and `ui`; a second one,
meanwhile, imports what those import later, inside functions, and what the tests drive (Ray Data,
Playwright, the OpenAI client) when installed: 47 s in one process, 29 s in two, on two cores.
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
import subprocess
import sys

# Imported inside functions by `rag` and `ui` (so a walk of the packages misses them), then
# what the tests drive; a missing one is skipped (the test extra may not be installed).
LATER = (
    "gradio", "feedparser", "trafilatura", "tokenizers", "onnx", "onnxruntime", "onnxruntime.quantization",
    "onnxruntime.transformers.optimizer", "ray.data", "openai", "playwright.sync_api", "pytest", "xdist",
)


def project() -> None:
    """The model through torch, then every module of `rag` and `ui`."""
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    from rag.embed import resolve_model
    from rag.settings import Settings

    hf_logging.disable_progress_bar()
    SentenceTransformer(resolve_model(Settings().model), device="cpu").encode(["A sentence."])
    import torch.onnx  # noqa: F401  (the ONNX export's)

    import rag
    import ui

    for package in (rag, ui):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            importlib.import_module(module.name)


def later() -> None:
    for name in LATER:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def main() -> None:
    sys.dont_write_bytecode = False
    if sys.argv[1:] == ["--later"]:
        later()
        return
    other = subprocess.Popen([sys.executable, __file__, "--later"])
    project()
    sys.exit(other.wait())


if __name__ == "__main__":
    main()
