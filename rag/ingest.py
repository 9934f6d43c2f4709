"""Read article files from the corpus folder into `Article` records.

Supported: .txt and .md (scraped text; site boilerplate dropped, title / outlet /
date picked up by general rules), .html/.htm (trafilatura), .json (one article
object or a list of them) and .jsonl (one article a line).

Nothing here raises on bad input: every file or record that cannot be used is
returned as a `Skipped` with its name (and line or item) and the reason, so that
the build can report it and go on.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from dateutil import parser as dateparser

SUPPORTED = {".txt", ".md", ".html", ".htm", ".json", ".jsonl"}

# Field names as news scrapers write them, first match wins.
BODY_FIELDS = ("body", "text", "content")
DATE_FIELDS = ("published_at", "date", "published", "publish_date")
SOURCE_FIELDS = ("source", "outlet", "sitename")

BINARY_PROBE_BYTES = 8192
"""A NUL byte in a file's first 8 KiB marks it binary (git's heuristic, same size)."""


@dataclass(frozen=True)
class Article:
    id: str
    """Stable id: the url when known, else the path in the corpus (+ '#item' for list files)."""
    path: str
    """File path relative to the corpus folder."""
    text: str
    """The story only; sentence and chunk offsets point into this string."""
    title: str = ""
    source: str = ""
    """Outlet, e.g. 'Iran Press TV'."""
    published: str = ""
    """ISO 8601 date or date-time, '' when unknown."""
    url: str = ""
    author: str = ""
    category: str = ""
    dropped: int = field(default=0, compare=False)
    """Characters of a plain-text file left out as site boilerplate (header and
    footer lines that are not metadata); not stored, not part of the hash."""

    def __post_init__(self) -> None:
        # Metadata is printed on terminals and in the UI: a title that carries a
        # newline or an escape sequence could forge output lines or drive the terminal.
        for name in METADATA_FIELDS:
            value = getattr(self, name)
            if CONTROL.search(value) or BIDI.search(value):
                object.__setattr__(self, name, " ".join(CONTROL.sub(" ", BIDI.sub("", value)).split()))

    @property
    def hash(self) -> str:
        """Content hash: changes when the text or any metadata changes."""
        data = asdict(self)
        del data["dropped"]  # how much boilerplate was cut is not content
        payload = json.dumps(data, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    @property
    def dropped_share(self) -> float:
        """Share of the file's text left out as boilerplate."""
        return self.dropped / max(1, self.dropped + len(self.text))

    def dropped_note(self) -> str | None:
        """What the build reports when more than `DROPPED_REPORT_SHARE` of the file was left out."""
        if self.dropped_share <= DROPPED_REPORT_SHARE:
            return None
        return (
            f"{self.path}: {self.dropped} of {self.dropped + len(self.text)} characters "
            f"({self.dropped_share:.0%}) left out as site boilerplate above or below the story; "
            "if that is article text, give it a blank line before and after each paragraph, or save it as .json"
        )


DROPPED_REPORT_SHARE = 0.10
"""A page's header and footer are usually a few percent of it (the sample article: 5 %)."""
METADATA_FIELDS = ("title", "source", "published", "url", "author", "category")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
"""Control characters (C0, DEL, C1): never part of metadata, spaces in a story."""
BIDI = re.compile(r"[\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""Bidirectional marks and overrides, which reorder what a terminal shows: not
kept in metadata (a story keeps them: right-to-left text needs them)."""


@dataclass(frozen=True)
class Skipped:
    path: str
    """File (and ':line' or '[item]' for records inside a file)."""
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def corpus_files(corpus_dir: Path, allow_outside_links: bool = False) -> list[Path]:
    """All non-hidden files below the corpus folder, in a stable order (see `list_corpus`)."""
    return list_corpus(corpus_dir, allow_outside_links)[0]


def list_corpus(corpus_dir: Path, allow_outside_links: bool = False) -> tuple[list[Path], list[Skipped]]:
    """All non-hidden files below the corpus folder, in a stable order, and the
    symbolic links refused: one that leads out of the corpus folder (to another
    user's or a root-only file, which the index would then quote to anyone who
    asks) unless `allow_outside_links`, and one that leads nowhere."""
    files: list[Path] = []
    refused: list[Skipped] = []
    root = corpus_dir.resolve()
    for path in sorted(corpus_dir.rglob("*")):
        rel = path.relative_to(corpus_dir)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if path.is_symlink():
            if not path.exists():
                refused.append(Skipped(rel.as_posix(), "broken symbolic link (its target does not exist)"))
                continue
            if not allow_outside_links and not path.resolve().is_relative_to(root):
                refused.append(
                    Skipped(
                        rel.as_posix(),
                        "symbolic link to a file outside the corpus folder: not read "
                        "(set RAG_ALLOW_OUTSIDE_LINKS=true to index such links)",
                    )
                )
                continue
        if path.is_file():
            files.append(path)
    return files, refused


def read_file(path: Path, corpus_dir: Path, max_bytes: int) -> Iterator[Article | Skipped]:
    """Yield the articles in one file, or `Skipped` records for what cannot be used."""
    rel = path.relative_to(corpus_dir).as_posix()
    raw = read_bytes(path, rel, max_bytes)
    if isinstance(raw, Skipped):
        yield raw
    else:
        yield from parse(raw, rel)


def read_bytes(path: Path, rel: str, max_bytes: int) -> bytes | Skipped:
    """The file's bytes, unless its type is unsupported, it is too large or unreadable."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED:
        return Skipped(rel, f"unsupported file type '{suffix or path.name}' (use {', '.join(sorted(SUPPORTED))})")
    try:
        size = path.stat().st_size
        if size > max_bytes:
            return Skipped(rel, f"too large ({size / 1e6:.1f} MB; limit {max_bytes / 1e6:.0f} MB)")
        return path.read_bytes()
    except OSError as err:
        return Skipped(rel, f"unreadable ({err.strerror or err})")


def parse(raw: bytes, rel: str) -> Iterator[Article | Skipped]:
    """Articles in the bytes of the file at corpus path `rel` (its suffix picks the reader)."""
    text = decode(raw)
    if isinstance(text, Skipped):
        yield Skipped(rel, text.reason)
        return
    suffix = Path(rel).suffix.lower()
    if suffix in {".json", ".jsonl"}:
        yield from _read_json(text, rel, lines=suffix == ".jsonl")
    elif suffix in {".html", ".htm"}:
        yield _article_or_skip(_read_html(text, rel), rel)
    else:
        yield _article_or_skip(_read_plain(text, rel, Path(rel).stem), rel)


def decode(raw: bytes) -> str | Skipped:
    """Bytes to text; empty, binary and non-UTF-8 files become `Skipped` reasons."""
    if not raw.strip():
        return Skipped("", "empty file")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            return raw.decode("utf-16")
        except UnicodeDecodeError:
            return Skipped("", "not valid UTF-16 despite its byte-order mark")
    if b"\x00" in raw[:BINARY_PROBE_BYTES]:
        return Skipped("", "binary file (contains NUL bytes), not text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        return Skipped("", f"not valid UTF-8 (byte 0x{raw[err.start]:02x} at offset {err.start}); save it as UTF-8")


def _article_or_skip(article: Article | None, rel: str) -> Article | Skipped:
    if article is None or not article.text.strip():
        return Skipped(rel, "no article text found")
    return article


# ---------------------------------------------------------------- JSON / JSONL


def _read_json(text: str, rel: str, lines: bool) -> Iterator[Article | Skipped]:
    if lines:
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append((f"{rel}#L{number}", f"{rel}:{number}", json.loads(line)))
            except json.JSONDecodeError as err:
                yield Skipped(f"{rel}:{number}", f"malformed JSON ({err.msg} at column {err.colno})")
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            yield Skipped(f"{rel}:{err.lineno}", f"malformed JSON ({err.msg} at line {err.lineno}, column {err.colno})")
            return
        if isinstance(data, dict) and isinstance(data.get("articles"), list):
            data = data["articles"]
        if isinstance(data, list):
            records = [(f"{rel}#{i}", f"{rel}[{i}]", item) for i, item in enumerate(data)]
        else:
            records = [(rel, rel, data)]
    for fallback_id, where, record in records:
        yield _record_article(record, rel, fallback_id, where)


def _record_article(record: object, rel: str, fallback_id: str, where: str) -> Article | Skipped:
    if not isinstance(record, dict):
        return Skipped(where, f"expected an article object, got {type(record).__name__}")
    body = _first(record, BODY_FIELDS)
    if not body.strip():
        return Skipped(where, f"no article text (none of the fields {', '.join(BODY_FIELDS)})")
    url = _first(record, ("url", "link"))
    return Article(
        id=url or fallback_id,
        path=rel,
        text=_normalise_space(body),
        title=_first(record, ("title", "headline")),
        source=_first(record, SOURCE_FIELDS),
        published=normalise_date(_first(record, DATE_FIELDS)),
        url=url,
        author=_first(record, ("author", "authors")),
        category=_first(record, ("category", "section")),
    )


def _first(record: dict, names: tuple[str, ...]) -> str:
    for name in names:
        value = record.get(name)
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value if v)
        if value not in (None, ""):
            return str(value).strip()
    return ""


# ---------------------------------------------------------------- HTML


def _read_html(text: str, rel: str) -> Article | None:
    import trafilatura  # imported here: it is slow to import and only HTML needs it

    doc = trafilatura.bare_extraction(text, with_metadata=True, include_comments=False)
    if doc is None:
        return None
    meta = doc.as_dict() if hasattr(doc, "as_dict") else dict(doc)
    title = (meta.get("title") or "").strip()
    body = meta.get("text") or ""
    # trafilatura repeats the headline as the first line of the text.
    first, _, rest = body.partition("\n")
    if title and first.strip() == title:
        body = rest
    url = (meta.get("url") or "").strip()
    return Article(
        id=url or rel,
        path=rel,
        text=_normalise_space(body.replace("\n", "\n\n")),
        title=title,
        source=(meta.get("sitename") or meta.get("hostname") or "").strip(),
        published=normalise_date(meta.get("date") or ""),
        url=url,
        author=(meta.get("author") or "").strip(),
        category=", ".join(meta.get("categories") or []),
    )


# ---------------------------------------------------------------- plain text

# "Title: ..." style header lines that scrapers write above the story.
HEADER_FIELD = re.compile(r"^(title|source|outlet|date|published|published_at|author|url|category)\s*:\s*(.+)$", re.I)
MONTH = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
DATE_LINE = re.compile(
    rf"^(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*,?\s+)?(?:"
    rf"{MONTH}\s+\d{{1,2}},?\s+\d{{4}}"  # Feb 9, 2017
    rf"|\d{{1,2}}\s+{MONTH},?\s+\d{{4}}"  # 9 Feb 2017
    rf"|\d{{4}}-\d{{2}}-\d{{2}}"  # 2017-02-09
    rf"|\d{{1,2}}/\d{{1,2}}/\d{{4}}"  # 02/09/2017
    rf")(?:[\sT,|-]+\d{{1,2}}:\d{{2}}(?::\d{{2}})?\s*(?:[ap]\.?m\.?)?\s*(?:[A-Z]{{2,4}}|[+-]\d{{2}}:?\d{{2}}|Z)?)?$",
    re.I,
)
FILENAME_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*$")  # noqa: RUF001 (curly quotes close sentences)


def _read_plain(text: str, rel: str, stem: str) -> Article | None:
    """Split scraped text into header, story and footer by general rules.

    The story is the run of paragraphs from the first to the last *prose*
    paragraph (one that ends like a sentence and has enough words). Short lines
    before it are the header: a line that parses as a date is the date, a line
    repeated in the header is the outlet (sites print their name twice), and the
    nearest remaining line above the story is the title. Lines after the story
    (newsletter prompts, share buttons) are dropped.
    """
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n|\r\n\s*\r\n", text.replace("\r\n", "\n")) if p.strip()]
    fields: dict[str, str] = {}
    header_lines: list[str] = []
    span = _story_span(paragraphs)
    if span is None:
        return None
    first, last = span
    for paragraph in paragraphs[:first]:
        for line in paragraph.splitlines():
            line = _header_line(line)
            match = HEADER_FIELD.match(line)
            if match:
                fields[match.group(1).lower()] = match.group(2).strip()
            elif line:
                header_lines.append(line)
    date = fields.get("date") or fields.get("published") or fields.get("published_at") or ""
    counts = Counter(header_lines)  # not list.count per line: quadratic in a long header
    source = fields.get("source") or fields.get("outlet") or ""
    title = fields.get("title", "")
    for line in reversed(header_lines):
        if DATE_LINE.match(line):
            date = date or line
        elif counts[line] > 1:
            source = source or line
        elif not title and len(line.split()) >= HEADLINE_MIN_WORDS:
            title = line
    # Without a repeated line, a short line next to the date is a byline or the outlet.
    dated = [i for i, line in enumerate(header_lines) if DATE_LINE.match(line)]
    for i in [j for d in dated[-1:] for j in (d - 1, d + 1)]:
        line = header_lines[i] if 0 <= i < len(header_lines) else ""
        if not line or line == title or len(line.split()) > BYLINE_MAX_WORDS or DATE_LINE.match(line):
            continue
        if re.match(r"^by\s+", line, re.I):
            fields.setdefault("author", line[3:].strip())
        elif not source:
            source = line
    if not date and (match := FILENAME_DATE.search(stem)):
        date = match.group(0)
    url = fields.get("url", "")
    # Left out: header lines that are none of the metadata, and everything after the story.
    used = {title, source, fields.get("author", ""), *(line for line in header_lines if DATE_LINE.match(line))}
    byline = [line for line in header_lines if re.match(r"^by\s+", line, re.I) and line[3:].strip() == fields.get("author")]
    dropped = sum(len(line) for line in header_lines if line not in used and line not in byline)
    dropped += sum(len(p) for p in paragraphs[last + 1 :])
    return Article(
        id=url or rel,
        path=rel,
        text=_normalise_space("\n\n".join(_unwrap(p) for p in paragraphs[first : last + 1])),
        title=title or stem.replace("-", " ").replace("_", " ").strip(),
        source=source,
        published=normalise_date(date),
        url=url,
        author=fields.get("author", ""),
        category=fields.get("category", ""),
        dropped=dropped,
    )


def _header_line(line: str) -> str:
    return line.strip().lstrip("#").strip()


def _story_span(paragraphs: list[str]) -> tuple[int, int] | None:
    """First and last paragraph of the story: from the first prose paragraph to
    the last, with everything between (lists, subheads, captions: a file may even
    hold many articles), so that no prose is lost. Only a short run of prose
    *above the article's header* (a site banner: "Make a donation!") does not
    start the story; the header is told by a date line, a `Field: value` line or
    a line printed twice (the outlet)."""
    runs: list[tuple[int, int]] = []  # (first, last) paragraph of each run of prose
    for i, paragraph in enumerate(paragraphs):
        if not _is_prose(paragraph):
            continue
        if runs and i - runs[-1][1] <= STORY_GAP:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    if not runs:
        return None
    start = 0
    while start + 1 < len(runs):
        first, last = runs[start]
        words = sum(len(p.split()) for p in paragraphs[first : last + 1])
        if words > BANNER_MAX_WORDS or not _is_header(paragraphs[last + 1 : runs[start + 1][0]]):
            break
        start += 1
    return runs[start][0], runs[-1][1]


def _is_header(paragraphs: list[str]) -> bool:
    """Whether these non-prose paragraphs look like an article's header."""
    lines = [_header_line(line) for p in paragraphs for line in p.splitlines() if line.strip()]
    return any(DATE_LINE.match(line) or HEADER_FIELD.match(line) for line in lines) or len(set(lines)) < len(lines)


# What counts as the story in a plain-text page, set on the sample article and
# the test cases in tests/test_ingest.py (navigation, bylines, promos, subheads):
PROSE_MIN_WORDS = 8
"""A paragraph of at least this many words that ends like a sentence is prose ..."""
PROSE_ANY_END_WORDS = 40
"""... and one this long is prose however it ends (a paragraph cut off mid-sentence)."""
STORY_GAP = 2
"""Paragraphs between two prose paragraphs of one run (a subhead, a photo credit)."""
BANNER_MAX_WORDS = 40
"""A run of prose this short followed by the header is a site banner, not the story."""
HEADLINE_MIN_WORDS = 3
"""The title is the last header line of at least this many words ..."""
BYLINE_MAX_WORDS = 5
"""... and a line next to the date of at most this many is a byline or the outlet."""
WRAPPED_LINE_CHARS = 50
"""Lines this long on average are hard-wrapped prose (short ones are a list or verse)."""

WRAPPED = re.compile(r"(?<=[^.!?:\"”])\n(?=[a-z0-9(“\"])|(?<=[a-z,;])\n(?=\S)")


def _unwrap(paragraph: str) -> str:
    """Join hard-wrapped lines (a line break inside a sentence); a line break
    after a full stop, or before a capitalised line that follows one without
    trailing punctuation, is kept: it may end a headline or a list item."""
    lines = paragraph.splitlines()
    if len(lines) > 1 and sum(len(line) for line in lines[:-1]) / (len(lines) - 1) >= WRAPPED_LINE_CHARS:
        return WRAPPED.sub(" ", paragraph)
    return paragraph


def _is_prose(paragraph: str) -> bool:
    words = paragraph.split()
    return (len(words) >= PROSE_MIN_WORDS and bool(SENTENCE_END.search(paragraph))) or len(words) >= PROSE_ANY_END_WORDS


def _normalise_space(text: str) -> str:
    """Trim trailing spaces and collapse runs of blank lines; control characters
    (escape sequences, a form feed) become spaces. Offsets are taken after this."""
    text = BODY_CONTROL.sub(" ", text.replace("\r\n", "\n"))
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


BODY_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""`CONTROL` less the tab and line break, which a story's text keeps."""


def normalise_date(value: str) -> str:
    """Any common date spelling to ISO 8601 ('2017-02-09' or '2017-02-09T18:37:00'); '' if unparseable."""
    value = (value or "").strip()
    if not value:
        return ""
    try:
        parsed = dateparser.parse(value, fuzzy=True, default=datetime(1900, 1, 1))
    except (ValueError, OverflowError):
        return ""
    if parsed.year == 1900:
        return ""
    has_time = bool(re.search(r"\d{1,2}:\d{2}", value))
    return parsed.isoformat() if has_time else parsed.date().isoformat()
