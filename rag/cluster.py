"""Embedding and chunking on a Ray cluster (`rag build --ray [ADDRESS]`), for
corpora one machine cannot process in time.

The driver (the machine running `rag build`) reads the corpus and writes the index
exactly as a local build does, one group per transaction. It sends the parsed
articles to Ray tasks to be cut into sentences and chunks (`chunk_articles`), and
each group's chunk texts to a pool of Ray actors (Ray Data `map_batches`), each
holding one `Embedder` loaded once, and gets the vectors back. Workers never see
the corpus files or the index.

The vectors equal a local build's because the actors encode the very batches a
local `Embedder.embed` would (`length_batches`): onnx-int8 quantizes activations per
batch, so regrouping texts would move vectors (see rag/embed.py).

Ray is imported here only, when `--ray` is given: it is slow to import and
`rag ask` never needs it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from rag.chunk import Chunk, Chunker, Sentence
from rag.embed import Embedder, Span, length_batches
from rag.ingest import Article
from rag.settings import DEFAULT_MODEL


class RayEmbedder:
    """Drop-in for `Embedder` in the build: `embed` and `__call__` run on the cluster at
    `address`; `count_tokens`, `max_tokens` and `dimension` come from a local copy of
    the model (the chunker needs the tokenizer on the driver).

    `address` is what `ray.init` takes: "auto" (the cluster this machine joined with
    `ray start`), "host:6379", "ray://host:10001" (Ray Client), or "local" (a
    throwaway one-machine cluster inside this process)."""

    def __init__(
        self,
        address: str,
        model: str = DEFAULT_MODEL,
        *,
        actors: int | None = None,
        batches_per_call: int = 4,
        ship_code: bool = True,
        **options,
    ):
        """`actors`: size of the pool, one CPU each (None: one per CPU in the cluster).
        `batches_per_call`: encoder batches handed to an actor at once.
        `ship_code`: send this copy of `rag/` to the workers (Ray `py_modules`), so
        they run the driver's code, not whatever version is installed there.
        `options`: `Embedder`'s keyword arguments (`Settings.embedder_options()`)."""
        import ray
        import ray.data

        self.local = Embedder(model, **options)
        self.dimension = self.local.dimension
        self.max_tokens = self.local.max_tokens
        self.tokenizer = self.local.tokenizer
        self.batch_size = self.local.batch_size
        self.batches_per_call = batches_per_call
        # One forward pass per actor at a time: each actor is given one CPU.
        self._actor_options = {**options, "workers": 1}
        self._model = model
        if not ray.is_initialized():
            # Ray and Ray Data report usage to the Ray team (and query Prometheus for it) unless
            # told not to; a local news index does not. The environment is the only switch
            # Ray reads; a value the user set wins.
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            os.environ.setdefault("RAY_DATA_USAGE_DISABLED", "1")
            runtime_env = {"py_modules": [str(Path(__file__).parent)]} if ship_code else None
            extra = {"include_dashboard": False} if address == "local" else {}
            ray.init(address=address, runtime_env=runtime_env, logging_level=logging.WARNING, **extra)
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # the build shows its own bar of chunks embedded
        context.print_on_execution_start = False
        self.actors = actors or max(1, int(ray.cluster_resources().get("CPU", 1)))

    def count_tokens(self, texts: list[str]) -> list[int]:
        return self.local.count_tokens(texts)

    def __call__(self, texts: list[str]) -> np.ndarray:
        vectors, _ = self.embed(texts)
        return vectors

    def embed(self, texts: list[str], spans: list[list[Span]] | None = None) -> tuple[np.ndarray, list[np.ndarray]]:
        """As `Embedder.embed`: vectors of `texts` and, with `spans`, one vector per span."""
        if len(texts) <= self.batch_size:
            # One forward pass (a question, a small update): here, in milliseconds, rather
            # than seconds of starting an actor pool. The same batch gives the same vectors.
            return self.local.embed(texts, spans)
        import ray.data

        batches = length_batches(texts, self.batch_size)
        rows = [
            _row(number, [texts[i] for i in batch], None if spans is None else [spans[i] for i in batch])
            for number, batch in enumerate(batches)
        ]
        dataset = ray.data.from_items(rows, override_num_blocks=min(len(rows), self.actors * 4)).map_batches(
            _Encoder,
            fn_constructor_args=(self._model, self._actor_options, spans is not None),
            compute=ray.data.ActorPoolStrategy(size=min(self.actors, len(rows))),
            batch_size=self.batches_per_call,
            num_cpus=1,
        )
        vectors = np.zeros((len(texts), self.dimension), dtype=np.float32)
        span_vectors: list[np.ndarray] = [np.zeros((0, self.dimension), np.float32)] * len(texts)
        # Rows come back in any order: each carries the number of its batch.
        for row in dataset.take_all():
            batch = batches[int(row["batch"])]
            vectors[batch] = row["vectors"]
            if spans is not None:
                counts = [len(spans[i]) for i in batch]
                for i, part in zip(batch, np.split(row["span_vectors"], np.cumsum(counts)[:-1])):
                    span_vectors[i] = part
        return vectors, span_vectors

    def chunk_articles(self, chunker: Chunker, articles: list[Article]) -> Iterator[tuple[list[Sentence], list[Chunk]]]:
        """`chunker(article)` for each article, in order, as Ray tasks on the cluster
        (as `rag.chunk.chunk_articles` does in local processes)."""
        import ray

        shared = ray.put(chunker)  # sent to each node once, not with every task
        size = max(1, min(CHUNKING_TASK_ARTICLES, len(articles) // (self.actors * 4)))
        remote = ray.remote(num_cpus=1)(_chunk_task)
        tasks = [remote.remote(shared, articles[i : i + size]) for i in range(0, len(articles), size)]
        for task in tasks:  # in order, each as soon as it is done
            yield from ray.get(task)


CHUNKING_TASK_ARTICLES = 256
"""At most this many articles per chunking task: enough to outweigh a task's
overhead, few enough to keep every CPU busy and the progress bar moving."""


def _chunk_task(chunker: Chunker, articles: list[Article]) -> list[tuple[list[Sentence], list[Chunk]]]:
    return [chunker(article) for article in articles]


def _row(number: int, texts: list[str], spans: list[list[Span]] | None) -> dict:
    """One encoder batch as a dataset row; spans flattened, since Arrow holds flat lists best."""
    row = {"batch": number, "texts": texts}
    if spans is not None:
        row["span_counts"] = [len(s) for s in spans]
        row["span_starts"] = [start for text_spans in spans for start, _ in text_spans]
        row["span_ends"] = [end for text_spans in spans for _, end in text_spans]
    return row


class _Encoder:
    """Ray Data actor: loads the model once, then encodes whole batches as rows give them."""

    def __init__(self, model: str, options: dict, with_spans: bool):
        self.embedder = Embedder(model, **options)
        self.with_spans = with_spans

    def __call__(self, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        vectors, span_vectors = [], []
        for i in range(len(rows["batch"])):
            texts = [str(t) for t in rows["texts"][i]]
            spans = None
            if self.with_spans:
                bounds = list(zip(np.asarray(rows["span_starts"][i]).tolist(), np.asarray(rows["span_ends"][i]).tolist()))
                cuts = np.cumsum(np.asarray(rows["span_counts"][i]))[:-1].tolist()
                spans = [bounds[a:b] for a, b in zip([0, *cuts], [*cuts, len(bounds)])]
            # Exactly one forward pass: the row holds at most `batch_size` texts, in length order.
            batch_vectors, batch_spans = self.embedder.embed(texts, spans)
            vectors.append(batch_vectors)
            span_vectors.append(np.concatenate(batch_spans) if batch_spans else np.zeros((0, batch_vectors.shape[1]), np.float32))
        out = {"batch": rows["batch"], "vectors": _ragged(vectors)}
        if self.with_spans:
            out["span_vectors"] = _ragged(span_vectors)
        return out


def _ragged(arrays: list[np.ndarray]) -> np.ndarray:
    """An object array of 2-D arrays of different lengths: Ray stores it as a variable-shaped tensor column."""
    out = np.empty(len(arrays), dtype=object)
    out[:] = arrays
    return out
