"""News feeds -> article files in the corpus: `rag feed add/list/remove/pull`.

A pull reads each RSS or Atom feed (feedparser), fetches the page of every item
not seen before and extracts its article as HTML files are read (trafilatura,
`rag.ingest.parse`), and saves it as one JSON article file under
`corpus/feeds/<host>/`, so the corpus stays the source of truth and the normal
incremental build indexes it.

- Incremental: an item is known by its GUID (or link) and never fetched twice;
  the feed itself is asked for with its last ETag / Last-Modified, so an
  unchanged feed costs one 304 answer.
- Polite: a User-Agent naming the program, timeouts, robots.txt honoured
  (urllib.robotparser), requests made one at a time, and `feed_delay` seconds
  between two requests to one host.
- Never fatal: a feed or page that cannot be read is reported and skipped. An
  item whose page cannot be fetched is saved from the feed's own summary, marked:
  its JSON has `"from_summary": true` and the reason, and its title ends in
  " (feed summary)", so a citation shows it.

The feed list and what was seen live in one small JSON file (`corpus/.feeds.json`
by default: hidden files are not articles), replaced atomically on every change.
"""

from __future__ import annotations

import calendar
import hashlib
import html
import json
import logging
import os
import re
import tempfile
import time
import urllib.robotparser
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from filelock import FileLock

from rag.ingest import Article, parse
from rag.settings import Settings

log = logging.getLogger(__name__)

FEEDS_FOLDER = "feeds"
"""Sub-folder of the corpus that pulled articles are saved in."""
SUMMARY_MARK = " (feed summary)"
"""Ends the title of an article saved from the feed's summary, not its page."""
MAX_PAGE_BYTES = 10_000_000


class FeedError(Exception):
    """A feed cannot be added or removed (bad URL, unknown feed)."""


@dataclass
class FeedReport:
    url: str
    saved: list[str] = field(default_factory=list)
    """Corpus paths of the articles saved."""
    from_summary: int = 0
    """How many of them came from the feed's summary (page not fetched)."""
    not_modified: bool = False
    problems: list[str] = field(default_factory=list)
    """What was skipped and why: the feed, or single items."""

    def summary(self) -> str:
        if self.not_modified:
            return f"{self.url}: not modified"
        text = f"{self.url}: {len(self.saved)} new article(s)"
        if self.from_summary:
            text += f" ({self.from_summary} from the feed's summary)"
        return text + (f", {len(self.problems)} problem(s)" if self.problems else "")


@dataclass
class PullReport:
    feeds: list[FeedReport] = field(default_factory=list)

    @property
    def saved(self) -> list[str]:
        return [path for feed in self.feeds for path in feed.saved]

    def summary(self) -> str:
        return f"{len(self.feeds)} feed(s) pulled, {len(self.saved)} new article(s)"


# ---------------------------------------------------------------- the feed list


class FeedList:
    """The feeds to pull and what each has given so far, kept in one JSON file."""

    def __init__(self, path: Path):
        self.path = path
        self.lock = FileLock(str(path) + ".lock")

    @classmethod
    def of(cls, settings: Settings) -> FeedList:
        return cls(settings.feeds_file or settings.corpus_dir / ".feeds.json")

    def load(self) -> dict[str, dict]:
        """url -> state ({'added', 'etag', 'modified', 'seen', 'last_pull', 'last_result'})."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as err:
            raise FeedError(f"{self.path}: cannot read the feed list ({err}); fix or delete it") from None
        feeds = data.get("feeds") if isinstance(data, dict) else None
        if not isinstance(feeds, dict):
            raise FeedError(f"{self.path}: not a feed list (no 'feeds' object); fix or delete it")
        return feeds

    def save(self, feeds: dict[str, dict]) -> None:
        """Written to a temporary file, then renamed over the old one: never half written."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".feeds-", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump({"feeds": feeds}, out, indent=1, ensure_ascii=False)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def add(self, url: str) -> bool:
        """Add a feed; False when it was there already."""
        url = check_url(url)
        with self.lock:
            feeds = self.load()
            if url in feeds:
                return False
            feeds[url] = {"added": _now(), "seen": []}
            self.save(feeds)
            return True

    def remove(self, url: str) -> None:
        """Stop pulling a feed (its articles stay in the corpus)."""
        with self.lock:
            feeds = self.load()
            if url not in feeds:
                raise FeedError(f"no such feed: {url} (see `rag feed list`)")
            del feeds[url]
            self.save(feeds)


def check_url(url: str) -> str:
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FeedError(f"not a feed URL: {url!r} (expected http:// or https://...)")
    return url


# ---------------------------------------------------------------- fetching


class Fetcher:
    """HTTP GETs made politely: one at a time, a pause between two to one host,
    robots.txt obeyed, a User-Agent and timeouts."""

    def __init__(self, user_agent: str, timeout: float, delay: float):
        self.user_agent = user_agent
        self.delay = delay
        self.client = httpx.Client(
            headers={"User-Agent": user_agent}, timeout=timeout, follow_redirects=True, max_redirects=5
        )
        self._robots: dict[str, urllib.robotparser.RobotFileParser | None] = {}
        self._last: dict[str, float] = {}

    def close(self) -> None:
        self.client.close()

    def get(self, url: str, headers: dict | None = None) -> httpx.Response:
        """GET `url` in its host's turn; raises httpx.HTTPError (or PermissionError for robots.txt)."""
        if not self.allowed(url):
            raise PermissionError(f"robots.txt of {urlsplit(url).netloc} disallows {url}")
        return self._get(url, headers)

    def _get(self, url: str, headers: dict | None = None) -> httpx.Response:
        host = urlsplit(url).netloc
        wait = self._last.get(host, 0.0) + self.delay - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        try:
            return self.client.get(url, headers=headers or {})
        finally:
            self._last[host] = time.monotonic()

    def allowed(self, url: str) -> bool:
        """What the site's robots.txt says of `url` for our User-Agent. A missing
        robots.txt (4xx) allows everything; one that cannot be read (5xx, no answer)
        allows nothing, as RFC 9309 asks."""
        parts = urlsplit(url)
        site = f"{parts.scheme}://{parts.netloc}"
        if site not in self._robots:
            parser = urllib.robotparser.RobotFileParser(site + "/robots.txt")
            try:
                response = self._get(site + "/robots.txt")
            except httpx.HTTPError as err:
                log.warning("robots.txt of %s unreadable (%s): not fetching from it", site, err)
                parser = None
            else:
                if response.status_code >= 500:
                    parser = None
                elif response.status_code >= 400:
                    parser.allow_all = True
                else:
                    parser.parse(response.text.splitlines())
            self._robots[site] = parser
        parser = self._robots[site]
        return parser is not None and parser.can_fetch(self.user_agent, url)


# ---------------------------------------------------------------- pulling


def pull(settings: Settings, only: str | None = None, fetcher: Fetcher | None = None) -> PullReport:
    """Pull every feed (or `only` that one): save the new items' articles in the
    corpus. Does not build the index; the caller does (see `rag feed pull`)."""
    feeds_list = FeedList.of(settings)
    own = fetcher is None
    fetcher = fetcher or Fetcher(settings.feed_user_agent, settings.feed_timeout, settings.feed_delay)
    report = PullReport()
    try:
        with feeds_list.lock:
            feeds = feeds_list.load()
            if only is not None and only not in feeds:
                raise FeedError(f"no such feed: {only} (see `rag feed list`)")
            for url, state in feeds.items():
                if only is not None and url != only:
                    continue
                feed_report = pull_feed(url, state, settings.corpus_dir, fetcher)
                report.feeds.append(feed_report)
                state["last_pull"] = _now()
                state["last_result"] = feed_report.summary()
                feeds_list.save(feeds)  # after each feed: a crash later loses nothing saved
    finally:
        if own:
            fetcher.close()
    return report


def pull_feed(url: str, state: dict, corpus_dir: Path, fetcher: Fetcher) -> FeedReport:
    """Fetch one feed and save its new items; `state` (etag, modified, seen) is updated in place."""
    import feedparser  # imported here: only feed commands need it

    report = FeedReport(url)
    conditional = {}
    if state.get("etag"):
        conditional["If-None-Match"] = state["etag"]
    if state.get("modified"):
        conditional["If-Modified-Since"] = state["modified"]
    try:
        response = fetcher.get(url, conditional)
    except (httpx.HTTPError, PermissionError) as err:
        report.problems.append(f"feed skipped: {_reason(err)}")
        return report
    if response.status_code == 304:
        report.not_modified = True
        return report
    if response.status_code != 200:
        report.problems.append(f"feed skipped: HTTP {response.status_code}")
        return report
    parsed = feedparser.parse(response.content, response_headers={k.lower(): v for k, v in response.headers.items()})
    if not parsed.entries and (parsed.bozo or not parsed.get("version")):
        problem = getattr(parsed, "bozo_exception", None) or "no RSS or Atom items"
        report.problems.append(f"feed skipped: not a readable RSS or Atom feed ({problem})")
        return report
    outlet = (parsed.feed.get("title") or urlsplit(url).netloc).strip()
    seen = set(state.get("seen", []))
    for entry in parsed.entries:
        key = entry.get("id") or entry.get("link")
        if not key or key in seen:
            continue
        saved = save_item(entry, outlet, url, corpus_dir, fetcher, report)
        if saved:
            seen.add(key)
            state.setdefault("seen", []).append(key)
    # Remembered only once the items are saved: a failed pull asks for the whole feed again.
    state["etag"] = response.headers.get("ETag", "")
    state["modified"] = response.headers.get("Last-Modified", "")
    return report


def save_item(entry, outlet: str, feed_url: str, corpus_dir: Path, fetcher: Fetcher, report: FeedReport) -> bool:
    """Fetch one item's page, extract its article and save it; from the item's
    summary when the page fails. False when there is nothing to save."""
    link = (entry.get("link") or "").strip()
    title = " ".join((entry.get("title") or "").split())
    published = _entry_date(entry)
    page, failure = (None, "the item has no link") if not link else fetch_article(link, fetcher)
    if page is not None:
        record = {
            "title": title or page.title,
            "source": outlet,
            "published_at": published or page.published,
            "url": link,
            "author": entry.get("author") or page.author,
            "body": page.text,
        }
    else:
        summary = _plain(entry.get("summary") or entry.get("description") or "")
        if not summary:
            report.problems.append(f"{link or title}: skipped: {failure}, and the feed gives no summary")
            return False
        report.problems.append(f"{link or title}: {failure}; saved the feed's summary instead")
        report.from_summary += 1
        record = {
            "title": (title or link) + SUMMARY_MARK,
            "source": outlet,
            "published_at": published,
            "url": link,
            "author": entry.get("author") or "",
            "body": summary,
            "from_summary": True,
            "page_error": failure,
        }
    record["feed"] = feed_url
    record["guid"] = entry.get("id") or link
    path = _article_path(corpus_dir, feed_url, record)
    _write_atomically(path, json.dumps(record, indent=1, ensure_ascii=False))
    report.saved.append(path.relative_to(corpus_dir).as_posix())
    return True


def fetch_article(url: str, fetcher: Fetcher) -> tuple[Article | None, str]:
    """The article on the page at `url`, or None and why not."""
    try:
        response = fetcher.get(url)
    except (httpx.HTTPError, PermissionError) as err:
        return None, f"page not fetched ({_reason(err)})"
    if response.status_code != 200:
        return None, f"page not fetched (HTTP {response.status_code})"
    kind = response.headers.get("Content-Type", "text/html").split(";")[0].strip().lower()
    if kind not in ("text/html", "application/xhtml+xml"):
        return None, f"page is not HTML ({kind})"
    if len(response.content) > MAX_PAGE_BYTES:
        return None, f"page too large ({len(response.content) / 1e6:.1f} MB)"
    found = next(parse(response.content, "page.html"), None)
    if not isinstance(found, Article):
        return None, f"no article text found on the page ({getattr(found, 'reason', 'empty')})"
    return found, ""


# ---------------------------------------------------------------- helpers


def _article_path(corpus_dir: Path, feed_url: str, record: dict) -> Path:
    """corpus/feeds/<host>/<day>-<title words>-<hash of guid>.json: readable, unique, stable."""
    host = re.sub(r"[^a-z0-9.-]+", "-", urlsplit(feed_url).netloc.lower()).strip("-.") or "feed"
    words = re.sub(r"[^a-z0-9]+", "-", record["title"].lower()).strip("-")[:60].strip("-") or "item"
    day = (record.get("published_at") or "")[:10] or "undated"
    digest = hashlib.sha256(record["guid"].encode("utf-8")).hexdigest()[:8]
    return corpus_dir / FEEDS_FOLDER / host / f"{day}-{words}-{digest}.json"


def _write_atomically(path: Path, text: str) -> None:
    """A build running meanwhile sees the whole file or none of it (the temporary
    name starts with a dot: hidden files are not read as articles)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _entry_date(entry) -> str:
    """The item's publication time as ISO 8601 UTC, '' when it gives none."""
    parsed = entry.get("published_parsed") or entry.get("updated_parsed")
    if not parsed:
        return ""
    return datetime.fromtimestamp(calendar.timegm(parsed), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def _plain(markup: str) -> str:
    """A feed summary (often HTML) as plain text."""
    text = re.sub(r"<(br|/p|/div|/li)\b[^>]*>", "\n\n", markup, flags=re.I)
    text = html.unescape(re.sub(r"<[^>]+>", " ", text))
    return "\n\n".join(" ".join(p.split()) for p in text.split("\n\n") if p.strip())


def _reason(err: Exception) -> str:
    if isinstance(err, httpx.TimeoutException):
        return "timed out"
    return str(err) or type(err).__name__


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
