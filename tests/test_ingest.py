"""Ingest: every supported format, metadata, boilerplate, and bad input reported by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import SAMPLE, SHARED_DATA

from rag.ingest import DROPPED_REPORT_SHARE, Article, Skipped, normalise_date, read_file

MAX = 25_000_000


def read(path: Path, corpus: Path | None = None) -> list[Article | Skipped]:
    return list(read_file(path, corpus or path.parent, MAX))


def test_sample_article_keeps_story_drops_boilerplate_and_finds_metadata():
    [article] = read(SAMPLE)
    assert article.title == "Putin condoles with Erdogan after mistaken airstrikes kill 3 Turkish troops"
    assert article.source == "Iran Press TV"
    assert article.published == "2017-02-09T18:37:00"
    assert article.id == SAMPLE.name
    assert article.text.startswith('Moscow has "expressed condolences" to Ankara')
    assert article.text.endswith("between the Damascus government and opposition groups.")
    for boilerplate in ("UNITED24", "mailing list", "Weapons of Mass Destruction", "6:37PM"):
        assert boilerplate not in article.text


def test_plain_text_rules_are_general_not_for_one_file(tmp_path):
    path = tmp_path / "story.txt"
    path.write_text(
        "Subscribe now and save 50 percent on your first year of access!\n\n"
        "Daily Planet\n\nMayor opens new bridge over the river\n\nDaily Planet\n\n"
        "March 3, 2021\n\n"
        "The mayor opened the new bridge on Wednesday after three years of construction work.\n\n"
        "Residents said the crossing would cut their commute by twenty minutes each day.\n\n"
        "Share this article\n"
    )
    [article] = read(path)
    assert (article.title, article.source, article.published) == (
        "Mayor opens new bridge over the river",
        "Daily Planet",
        "2021-03-03",
    )
    assert article.text.startswith("The mayor opened")
    assert "Subscribe" not in article.text and "Share this" not in article.text
    assert article.dropped == len("Subscribe now and save 50 percent on your first year of access!Share this article")
    assert article.dropped_note().startswith("story.txt: 81 of 246 characters (33%) left out")


def test_markdown_heading_and_key_value_header(tmp_path):
    path = tmp_path / "note.md"
    path.write_text(
        "# Storm hits the coast\n\nSource: Coast News\nDate: 2023-10-05\nURL: https://example.com/storm\n\n"
        "A powerful storm hit the coast overnight, cutting power to thousands of homes.\n"
    )
    [article] = read(path)
    assert article.title == "Storm hits the coast"
    assert article.source == "Coast News" and article.published == "2023-10-05"
    assert article.id == article.url == "https://example.com/storm"


def test_hard_wrapped_lines_are_joined(tmp_path):
    path = tmp_path / "wrapped.txt"
    path.write_text(
        "The central bank raised interest rates on Thursday for the third time\n"
        "this year, citing persistent inflation in services and housing costs.\n"
    )
    [article] = read(path)
    assert article.text == (
        "The central bank raised interest rates on Thursday for the third time"
        " this year, citing persistent inflation in services and housing costs."
    )


def test_json_object_list_and_field_names(tmp_path):
    one = tmp_path / "one.json"
    one.write_text(json.dumps({"title": "T", "content": "Body one is here.", "date": "2023-01-02", "source": "S"}))
    many = tmp_path / "many.json"
    many.write_text(json.dumps([{"title": "A", "text": "Body A."}, {"title": "B", "body": "Body B.", "url": "https://b"}]))
    [a] = read(one)
    assert (a.id, a.text, a.published, a.source) == ("one.json", "Body one is here.", "2023-01-02", "S")
    first, second = read(many)
    assert first.id == "many.json#0" and second.id == "https://b"


def test_jsonl_reports_bad_line_and_keeps_the_rest(tmp_path):
    path = tmp_path / "feed.jsonl"
    path.write_text('{"title": "A", "body": "Body A."}\n{"title": broken\n\n{"title": "C", "body": "Body C."}\n')
    items = read(path)
    articles = [i for i in items if isinstance(i, Article)]
    skipped = [i for i in items if isinstance(i, Skipped)]
    assert [a.id for a in articles] == ["feed.jsonl#L1", "feed.jsonl#L4"]
    assert len(skipped) == 1 and skipped[0].path == "feed.jsonl:2" and "malformed JSON" in skipped[0].reason


def test_malformed_json_reports_file_and_line(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('[\n  {"title": "A",\n   "body": "x"\n  ,,\n]')
    [skipped] = read(path)
    assert isinstance(skipped, Skipped)
    assert skipped.path == "bad.json:4" and "malformed JSON" in skipped.reason


def test_json_record_without_body_is_reported(tmp_path):
    path = tmp_path / "list.json"
    path.write_text(json.dumps([{"title": "no body"}, {"title": "ok", "body": "Fine."}]))
    skipped, article = read(path)
    assert isinstance(skipped, Skipped) and skipped.path == "list.json[0]" and "no article text" in skipped.reason
    assert article.text == "Fine."


def test_html_main_text_and_metadata(tmp_path):
    path = tmp_path / "page.html"
    path.write_text(
        "<html><head><title>Ignored</title><meta property='og:site_name' content='Outlet News'>"
        "<meta property='article:published_time' content='2023-05-01T10:00:00Z'></head><body>"
        "<nav>Home | World | Sport</nav><article><h1>Big headline here</h1>"
        "<p>This is the first paragraph of the story, long enough to count as the main text of the page.</p>"
        "<p>Second paragraph. The U.S. said so on Monday.</p></article>"
        "<footer>Subscribe to our newsletter</footer></body></html>"
    )
    [article] = read(path)
    assert article.title == "Big headline here"
    assert article.source == "Outlet News"
    assert article.published.startswith("2023-05-01")
    assert article.text.startswith("This is the first paragraph")
    assert "Subscribe" not in article.text and "Home |" not in article.text


def test_bad_files_are_reported_by_name(tmp_path):
    (tmp_path / "empty.txt").write_text("  \n")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02\xffGIF89a" * 20)
    (tmp_path / "latin1.txt").write_bytes("Caf\xe9 society is a long sentence about caf\xe9s.".encode("latin-1"))
    huge = tmp_path / "huge.txt"
    with huge.open("wb") as handle:
        handle.truncate(50_000_000)
    (tmp_path / "photo.png").write_bytes(b"\x89PNG")
    reasons = {}
    for path in sorted(tmp_path.iterdir()):
        [item] = read(path)
        assert isinstance(item, Skipped), path
        reasons[item.path] = item.reason
    assert "empty" in reasons["empty.txt"]
    assert "binary" in reasons["binary.txt"]
    assert "not valid UTF-8" in reasons["latin1.txt"]
    assert "too large" in reasons["huge.txt"] and "50.0 MB" in reasons["huge.txt"]
    assert "unsupported file type" in reasons["photo.png"]


def test_utf16_with_bom_is_decoded(tmp_path):
    path = tmp_path / "utf16.txt"
    path.write_bytes("A sentence long enough to be a story, written in UTF-16 by an old tool.".encode("utf-16"))
    [article] = read(path)
    assert article.text.startswith("A sentence long enough")


def test_content_hash_changes_with_text_or_metadata():
    base = Article(id="a", path="a.txt", text="Hello.", title="T")
    assert base.hash == Article(id="a", path="a.txt", text="Hello.", title="T").hash
    assert base.hash != Article(id="a", path="a.txt", text="Hello!", title="T").hash
    assert base.hash != Article(id="a", path="a.txt", text="Hello.", title="T2").hash


def test_normalise_date():
    assert normalise_date("Thu Feb 9, 2017 6:37PM") == "2017-02-09T18:37:00"
    assert normalise_date("2023-11-27T08:45:59+00:00") == "2023-11-27T08:45:59+00:00"
    assert normalise_date("9 February 2017") == "2017-02-09"
    assert normalise_date("not a date") == ""


MULTIHOP = SHARED_DATA / "multihop" / "corpus.json"


@pytest.mark.skipif(not MULTIHOP.exists(), reason="../shared/data is not present")
def test_multihop_corpus_ingests_as_it_is():
    records = json.loads(MULTIHOP.read_text())
    articles = read(MULTIHOP)
    assert not [a for a in articles if isinstance(a, Skipped)]
    assert len(articles) == len(records) == 609
    assert len({a.id for a in articles}) == 609  # ids are the urls: unique and stable
    assert [a.id for a in articles] == [r["url"] for r in records]
    assert all(a.title and a.source and a.published[:4].isdigit() and a.text for a in articles)
    # Nothing of a body is lost or added: only runs of blank lines are collapsed.
    assert all(a.text.split() == r["body"].split() for a, r in zip(articles, records))


# ---------------------------------------------------------------- no prose lost (issue 17, item 4)

LIST_IN_THE_MIDDLE = """City trains
Metro line 4 closes for repairs

Transit News

March 3, 2021

The city's busiest metro line will close for three weeks from Monday, affecting 240,000 daily riders, the transit authority said.

The line will stop at:

Central Station

Harbour Bridge

Old Town

Replacement buses will run every five minutes between the closed stations, officials said on Friday.

The repairs cost 45 million dollars and had been delayed twice since 2019.
"""


@pytest.mark.parametrize("suffix", [".txt", ".md"])
def test_a_list_inside_the_story_keeps_the_lede_and_the_title(tmp_path, suffix):
    path = tmp_path / f"metro{suffix}"
    path.write_text(LIST_IN_THE_MIDDLE)
    [article] = read(path)
    assert (article.title, article.source, article.published) == ("Metro line 4 closes for repairs", "Transit News", "2021-03-03")
    assert article.text.startswith("The city's busiest metro line will close")  # the lede, with its figures
    assert "The line will stop at:\n\nCentral Station\n\nHarbour Bridge\n\nOld Town\n\nReplacement buses" in article.text
    assert article.text.endswith("delayed twice since 2019.")
    assert article.dropped == len("City trains")  # the kicker above the headline


def long_article(sections: int) -> tuple[str, list[str]]:
    """A long feature: prose under subheads, with lists, captions and 'Advertisement'
    lines between, as scraped; returns the file text and its prose paragraphs."""
    parts, prose = ["Port Authority Weekly", "The long history of the harbour", "May 2, 2022"], []
    for i in range(sections):
        paragraphs = [
            f"Section {i} tells how the harbour grew in the year {1800 + i}, when {i % 7 + 2} new piers were built.",
            f"Dock workers in section {i} unloaded grain, timber and coal, the records of the port show.",
        ]
        prose += paragraphs
        parts += [f"Part {i}", paragraphs[0], "Advertisement", "Photo: Port archive", "Cargo that year:", "Grain", "Timber", "Coal", paragraphs[1]]
    return "\n\n".join([*parts, "Share this article", "Subscribe"]) + "\n", prose


def test_a_long_article_with_lists_and_subheads_is_kept_whole(tmp_path):
    text, prose = long_article(sections=20_000)  # 4.5 MB: the old rule kept one section
    path = tmp_path / "harbour.txt"
    path.write_text(text)
    [article] = read(path)
    assert article.title == "The long history of the harbour" and article.published == "2022-05-02"
    assert article.text.startswith(prose[0]) and article.text.endswith(prose[-1])
    at = 0
    for paragraph in prose:  # every prose paragraph, in order
        at = article.text.index(paragraph, at) + len(paragraph)
    assert article.dropped == len("Port Authority Weekly") + len("Share this article") + len("Subscribe")
    assert article.dropped_share < 0.001


@pytest.mark.skipif(not MULTIHOP.exists(), reason="../shared/data is not present")
def test_a_text_file_of_150_multihop_bodies_keeps_all_their_prose(tmp_path):
    bodies = [r["body"] for r in json.loads(MULTIHOP.read_text())[:150]]
    path = tmp_path / "bodies.txt"
    path.write_text("\n\n".join(bodies))
    assert path.stat().st_size > 1_700_000
    [article] = read(path)
    assert article.text.split() == "\n\n".join(bodies).split()  # was about 5 % of it
    assert article.dropped == 0


def test_what_is_dropped_is_counted(tmp_path):
    [sample] = read(SAMPLE)
    banner = ["UNITED24 - Make a charitable donation in support of Ukraine!", "Weapons of Mass Destruction (WMD)"]
    assert sample.dropped == sum(map(len, banner)) + len("Join the GlobalSecurity.org mailing list")
    assert sample.dropped_share < DROPPED_REPORT_SHARE and sample.dropped_note() is None
    assert Article(id="a", path="a.txt", text="x", dropped=5).hash == Article(id="a", path="a.txt", text="x").hash


# ---------------------------------------------------------------- control characters (issue 17, item 13)


def test_control_characters_never_reach_metadata(tmp_path):
    path = tmp_path / "evil\x1b[2Jname\nskipped x.txt"
    path.write_text("A story long enough to be read as the text of an article, with an \x1b[31mescape.\n")
    [article] = read(path)
    assert article.title == "evil [2Jname skipped x"  # from the file name, escape and newline gone
    assert "\x1b" not in article.text and "an  [31mescape." in article.text
    record = {"title": "Evil\n\x1b]0;pwned\x07 title \u202egnp.exe", "source": "Out\rlet", "body": "Fine body text."}
    (tmp_path / "evil.json").write_text(json.dumps(record))
    [article] = read(tmp_path / "evil.json")
    assert (article.title, article.source) == ("Evil ]0;pwned title gnp.exe", "Out let")
