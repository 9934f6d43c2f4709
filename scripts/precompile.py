"""Write the bytecode of everything the project runs, once, at set-up.

`scripts/setup.sh` installs with `pip --no-compile` (compiling every file of torch, Ray, Gradio and
transformers, most never imported, is the slow part of an install). Python then compiles a module
when it is first imported and keeps the result, unless the environment sets
PYTHONDONTWRITEBYTECODE, as some machine images do: then every `rag` process, test worker and test
subprocess compiled torch, transformers and Gradio from source again (~15 s of CPU each; a clean
clone's test suite took 3 minutes longer for it). So set-up runs this with bytecode writing on:
it imports every module of `rag` and `ui`, loads the bundled model and encodes a sentence with
torch (transformers imports a model's code only when it loads one), and imports what the tests
drive (Ray Data, Playwright, the OpenAI client) when they are installed.
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
import sys

# Imported inside functions by `rag` and `ui` (so a plain walk of the packages misses them), then
# what the tests drive; a missing one is skipped (the test extra may not be installed).
LATER = (
    "feedparser", "trafilatura", "tokenizers", "onnx", "onnxruntime", "onnxruntime.quantization",
    "onnxruntime.transformers.optimizer", "torch.onnx", "ray.data", "openai", "playwright.sync_api",
    "pytest", "xdist",
)


def main() -> None:
    sys.dont_write_bytecode = False
    import rag
    import ui

    for package in (rag, ui):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            importlib.import_module(module.name)
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    from rag.embed import resolve_model
    from rag.settings import Settings

    hf_logging.disable_progress_bar()
    SentenceTransformer(resolve_model(Settings().model), device="cpu").encode(["A sentence."])
    for name in LATER:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


if __name__ == "__main__":
    main()
