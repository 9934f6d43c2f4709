"""Feeds: RSS and Atom pulled from a local site (127.0.0.1 only) into the corpus,
then indexed and answerable; broken feeds and pages reported, never fatal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import free_port
from feed_server import FeedSite, atom, page, rss

from rag import feeds
from rag.build import Builder
from rag.cli import main
from rag.pipeline import Pipeline
from rag.settings import Settings

LIGHTHOUSE = [
    "The Calder Point lighthouse was relit on Tuesday after a restoration that took three years.",
    "Volunteers from the Calder Point Heritage Trust replaced the copper lantern and repainted the tower white and red.",
    "The restoration cost 1.2 million pounds, most of it raised from local donations and a lottery grant.",
    "Its new LED lamp can be seen from 18 nautical miles away, the trust's chair, Maeve Lindqvist, said.",
]
FERRY = [
    "A new electric ferry began sailing between Port Elwyn and Skerry Island on Monday.",
    "The ferry, named Tern, carries 120 passengers and charges its batteries at each end of the crossing in ten minutes.",
    "The island's council said the crossing would run every forty minutes during the summer season.",
    "Passengers on the first crossing were given free tickets and a commemorative badge by the operator.",
]


def news_site(site: FeedSite) -> None:
    """An RSS feed of four items: a good page, a page gone (404), a page robots.txt
    forbids, a gone page without summary; an Atom feed; broken feeds."""
    base = site.base
    site.routes["/news/lighthouse.html"] = (200, "text/html", page("Calder Point lighthouse shines again", LIGHTHOUSE))
    site.routes["/private/ferry.html"] = (200, "text/html", page("Electric ferry to Skerry Island", FERRY))
    site.routes["/news/ferry.html"] = (200, "text/html", page("Electric ferry to Skerry Island", FERRY))
    items = [
        {"title": "Calder Point lighthouse shines again", "path": "/news/lighthouse.html", "guid": "herald-1", "date": "Tue, 31 Oct 2023 09:00:00 GMT", "summary": "The lighthouse is lit."},
        {"title": "Harbour wall repairs delayed", "path": "/news/gone.html", "guid": "herald-2", "date": "Wed, 01 Nov 2023 08:00:00 GMT",
         "summary": "&lt;p&gt;Repairs to the Port Elwyn harbour wall have been delayed until spring because the contractor, Brandt Civil, went into administration.&lt;/p&gt;"},
        {"title": "Secret plans", "path": "/private/ferry.html", "guid": "herald-3", "date": "Wed, 01 Nov 2023 10:00:00 GMT", "summary": "Plans for a ferry were shown to the council."},
        {"title": "Nothing to say", "path": "/news/nothing.html", "guid": "herald-4", "date": "Wed, 01 Nov 2023 11:00:00 GMT"},
    ]  # fmt: skip
    site.routes["/rss.xml"] = (200, "application/rss+xml", rss(base, items))
    site.etags["/rss.xml"] = '"rss-v1"'
    entries = [{"title": "Electric ferry to Skerry Island", "path": "/news/ferry.html", "guid": "urn:log:1", "date": "2023-11-02T10:00:00Z"}]
    site.routes["/atom.xml"] = (200, "application/atom+xml", atom(base, entries))
    site.routes["/broken.xml"] = (200, "application/rss+xml", "<rss><channel><title>Broken<item><title>x</")
    site.routes["/html-not-feed"] = (200, "text/html", "<html><body><p>Hello</p></body></html>")


@pytest.fixture
def site():
    with FeedSite() as running:
        news_site(running)
        yield running


@pytest.fixture
def feed_settings(tmp_path) -> Settings:
    (tmp_path / "corpus").mkdir()
    return Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index", feed_delay=0.0, feed_timeout=5.0)


def saved(settings: Settings) -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted((settings.corpus_dir / "feeds").rglob("*.json"))}


def test_pull_saves_articles_falls_back_to_summaries_and_reports_the_rest(site, feed_settings):
    feed_list = feeds.FeedList.of(feed_settings)
    assert feed_list.add(site.base + "/rss.xml")
    assert not feed_list.add(site.base + "/rss.xml")
    report = feeds.pull(feed_settings)
    [herald] = report.feeds
    articles = {a["guid"]: a for a in saved(feed_settings).values()}
    assert set(articles) == {"herald-1", "herald-2", "herald-3"}
    good = articles["herald-1"]
    assert good["title"] == "Calder Point lighthouse shines again"
    assert good["source"] == "Harbour Herald"
    assert good["published_at"] == "2023-10-31T09:00:00"
    assert good["url"] == site.base + "/news/lighthouse.html"
    assert "relit on Tuesday" in good["body"] and "Subscribe" not in good["body"] and "from_summary" not in good
    gone = articles["herald-2"]  # 404: the feed's summary, marked, HTML stripped
    assert gone["from_summary"] is True and gone["title"] == "Harbour wall repairs delayed (feed summary)"
    assert gone["body"].startswith("Repairs to the Port Elwyn harbour wall") and "<p>" not in gone["body"]
    assert "HTTP 404" in gone["page_error"]
    forbidden = articles["herald-3"]  # robots.txt disallows /private/: never asked for
    assert forbidden["from_summary"] is True and "robots.txt" in forbidden["page_error"]
    assert site.asked("/private/ferry.html") == 0
    assert herald.from_summary == 2 and len(herald.saved) == 3
    assert any("nothing.html" in p and "no summary" in p for p in herald.problems)
    # Politeness: a User-Agent on every request, robots.txt read once per site.
    assert all(headers.get("User-Agent") == feed_settings.feed_user_agent for _, headers in site.requests)
    assert site.asked("/robots.txt") == 1


def test_second_pull_asks_with_the_etag_and_fetches_no_page_again(site, feed_settings):
    feeds.FeedList.of(feed_settings).add(site.base + "/rss.xml")
    feeds.pull(feed_settings)
    pages_before = site.asked("/news/lighthouse.html")
    report = feeds.pull(feed_settings)
    assert report.feeds[0].not_modified and report.saved == []
    conditional = [h for p, h in site.requests if p == "/rss.xml"][-1]
    assert conditional.get("If-None-Match") == '"rss-v1"'
    assert conditional.get("If-Modified-Since") == "Thu, 02 Nov 2023 10:00:00 GMT"
    # The feed changed (new ETag) and gained an item: only that one's page is fetched.
    site.etags["/rss.xml"] = '"rss-v2"'
    status, kind, body = site.routes["/rss.xml"]
    extra = f'<item><title>Ferry</title><link>{site.base}/news/ferry.html</link><guid>herald-5</guid></item>'
    site.routes["/rss.xml"] = (status, kind, body.replace("</channel>", extra + "</channel>"))
    report = feeds.pull(feed_settings)
    assert [Path(p).name.split("-")[0] for p in report.saved] == ["undated"]
    assert site.asked("/news/lighthouse.html") == pages_before
    assert site.asked("/news/ferry.html") == 1
    state = feeds.FeedList.of(feed_settings).load()[site.base + "/rss.xml"]
    assert state["seen"] == ["herald-1", "herald-2", "herald-3", "herald-5"]


def test_broken_feeds_are_reported_and_the_others_still_pulled(site, feed_settings):
    feed_list = feeds.FeedList.of(feed_settings)
    dead = f"http://127.0.0.1:{free_port()}/feed.xml"
    for path in ("/broken.xml", "/missing.xml", "/html-not-feed"):
        feed_list.add(site.base + path)
    feed_list.add(dead)
    feed_list.add(site.base + "/atom.xml")
    report = feeds.pull(feed_settings)
    problems = {f.url.rsplit("/", 1)[-1]: f.problems for f in report.feeds}
    assert "not a readable RSS or Atom feed" in problems["broken.xml"][0]
    assert problems["missing.xml"] == ["feed skipped: HTTP 404"]
    assert "not a readable RSS or Atom feed" in problems["html-not-feed"][0]
    assert problems["feed.xml"][0].startswith("feed skipped:")
    [ferry] = saved(feed_settings).values()  # the Atom feed after them all
    assert ferry["source"] == "Lighthouse Log" and ferry["published_at"] == "2023-11-02T10:00:00"
    assert "electric ferry" in ferry["body"]


def test_pulled_articles_are_indexed_and_answerable(site, feed_settings, embedder):
    feeds.FeedList.of(feed_settings).add(site.base + "/rss.xml")
    feeds.pull(feed_settings)
    report = Builder(feed_settings, embedder=embedder)()
    assert report.added == 3 and not report.skipped
    pipeline = Pipeline(feed_settings, embedder=embedder)
    answer = pipeline.ask("How far away can the Calder Point lighthouse lamp be seen?")
    assert "18 nautical miles" in answer.text
    assert answer.citations[0].url == site.base + "/news/lighthouse.html"
    assert answer.citations[0].source == "Harbour Herald"
    delayed = pipeline.ask("Why were the Port Elwyn harbour wall repairs delayed?")
    assert delayed.citations[0].title.endswith("(feed summary)")


def test_feed_list_file_is_replaced_whole_and_a_damaged_one_is_named(feed_settings):
    feed_list = feeds.FeedList.of(feed_settings)
    feed_list.add("https://example.org/rss")
    assert json.loads(feed_list.path.read_text())["feeds"]["https://example.org/rss"]["seen"] == []
    assert [p.name for p in feed_list.path.parent.iterdir() if p.name.startswith(".feeds-")] == []
    feed_list.path.write_text("{not json")
    with pytest.raises(feeds.FeedError, match=r"\.feeds\.json: cannot read the feed list"):
        feed_list.load()


def test_cli_feed_commands(site, feed_settings, capsys, monkeypatch):
    corpus = ["--corpus", str(feed_settings.corpus_dir)]
    url = site.base + "/rss.xml"
    assert main(["feed", "add", url, *corpus]) == 0
    assert main(["feed", "add", "ftp://example.org/x", *corpus]) == 2
    assert "not a feed URL" in capsys.readouterr().err
    assert main(["feed", "list", *corpus]) == 0
    assert f"{url}  (0 items seen; last pull: never)" in capsys.readouterr().out
    monkeypatch.setenv("RAG_FEED_DELAY", "0")
    code = main(["feed", "pull", *corpus, "--index", str(feed_settings.index_dir)])
    out, err = capsys.readouterr()
    assert code == 0
    assert f"{url}: 3 new article(s) (2 from the feed's summary), 3 problem(s)" in out
    assert "articles: 3 added" in out  # the index was updated
    assert "no summary" in err
    assert main(["feed", "remove", url, *corpus]) == 0
    assert main(["feed", "remove", url, *corpus]) == 2
    assert "no such feed" in capsys.readouterr().err
    assert len(saved(feed_settings)) == 3  # removing a feed keeps its articles
