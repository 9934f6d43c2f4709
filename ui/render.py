"""HTML for the chat and the sources panel.

Everything that comes from an article (title, outlet, text, url, path) or from a
user is escaped here before it is put into markup; only http(s) urls become
links. The chatbot also renders Markdown, so Markdown's own special characters
are turned into character references as well: a title like `*[x](javascript:…)*`
stays text.
"""

from __future__ import annotations

import html
import re
from typing import Callable, Sequence
from urllib.parse import urlsplit

from rag.answer import Answer, Citation
from rag.retrieve import Hit

CONTEXT_CHARS = 300
"""Characters shown either side of a cited sentence when its paragraph is long."""

# Markdown syntax characters, written as numeric character references so that the
# chatbot's Markdown renderer shows them as they are.
_MARKDOWN = {c: f"&#{ord(c)};" for c in "\\`*_{}[]()#+-!|~$"}


def esc(text: object) -> str:
    """HTML-escape (quotes included)."""
    return html.escape(str(text or ""), quote=True)


def esc_md(text: object) -> str:
    """Escape for a place that renders Markdown and HTML (chat messages, gr.Markdown)."""
    return "".join(_MARKDOWN.get(c, c) for c in esc(text))


def safe_url(url: str) -> str | None:
    """The url if it is an absolute http(s) url, else None (javascript:, data:, relative ...)."""
    url = (url or "").strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() in ("http", "https") and parts.netloc and not any(c in url for c in "\r\n\t\x00 "):
        return url
    return None


def day(published: str) -> str:
    return (published or "")[:10]


# ------------------------------------------------------------------ chat messages


def cite_mark(c: Citation) -> str:
    where = " · ".join(x for x in (c.title, c.source, day(c.published)) if x)
    return (
        f'<sup class="cite-mark"><a href="#cite-{c.n}" data-cite="{c.n}" title="{esc_md(where)}">{c.n}</a></sup>'
    )


def answer_html(answer: Answer, upto: int | None = None) -> str:
    """The answer as a chat message: its sentences (the first `upto` of them), each
    followed by a small numbered link to its card in the sources panel."""
    if answer.abstained:
        return abstention_html(answer)
    shown = answer.citations if upto is None else answer.citations[:upto]
    parts = [f"{esc_md(c.sentence)}{cite_mark(c)}" for c in shown]
    body = " ".join(parts)
    if upto is not None and upto < len(answer.citations):
        body += ' <span class="typing">▍</span>'
    else:
        articles = len({c.article_id for c in answer.citations})
        n = len(answer.citations)
        body += (
            f'<span class="answer-foot">{n} sentence{"s" * (n != 1)} quoted from '
            f'{articles} article{"s" * (articles != 1)} · click a number to see it in place</span>'
        )
    return f'<div class="answer">{body}</div>'


def abstention_html(answer: Answer) -> str:
    n = min(3, len(answer.passages))
    closest = (
        f"The {n} closest passage{'s are' if n != 1 else ' is'} shown beside the chat; "
        "they may not answer the question."
        if n
        else "The index holds no passage close to it."
    )
    return (
        '<div class="abstain"><span class="abstain-title">⚠ Not found in the indexed articles</span>'
        f'<span class="abstain-text">No sentence answers this closely enough, so no answer is given. {esc_md(closest)}'
        "</span></div>"
    )


def user_html(question: str) -> str:
    return esc_md(question)


# ------------------------------------------------------------------ sources panel

EMPTY_SOURCES = (
    '<div class="sources-empty"><div class="sources-empty-icon">❝ ❞</div>'
    "Ask a question: every sentence of the answer is quoted from an article, and its source "
    "appears here with the sentence highlighted in place.</div>"
)


def passage_around(text: str, start: int, end: int, context: int = CONTEXT_CHARS) -> tuple[str, str, str, bool, bool]:
    """(before, sentence, after, clipped_left, clipped_right): the paragraph holding
    text[start:end], cut to about `context` characters either side at word boundaries."""
    left = text.rfind("\n\n", 0, start)
    left = 0 if left < 0 else left + 2
    right = text.find("\n\n", end)
    right = len(text) if right < 0 else right
    clipped_left = clipped_right = False
    if start - left > context:
        lo = start - context
        cut = text.find(" ", lo, start)
        left = cut + 1 if cut >= 0 else lo
        clipped_left = True
    if right - end > context:
        hi = end + context
        cut = text.rfind(" ", end, hi)
        right = cut if cut > end else hi
        clipped_right = True
    flat = lambda s: " ".join(s.split("\n"))  # noqa: E731  (single newlines inside a paragraph)
    return flat(text[left:start]), flat(text[start:end]), flat(text[end:right]), clipped_left, clipped_right


def _where(title: str, source: str, published: str, url: str, path: str, score_line: str) -> str:
    link = safe_url(url)
    if link:
        host = urlsplit(link).netloc
        place = f'<a class="src-link" href="{esc(link)}" target="_blank" rel="noopener noreferrer nofollow">{esc(host)} ↗</a>'
    else:
        place = f'<span class="src-path" title="{esc(url or path)}">{esc(url or path)}</span>'
    meta = [
        f'<span class="src-outlet">{esc(source)}</span>' if source else "",
        f"<span>{esc(day(published))}</span>" if published else "",
        place,
        score_line,
    ]
    return (
        f'<div class="src-title">{esc(title or path or "(untitled)")}</div>'
        f'<div class="src-meta">{" · ".join(m for m in meta if m)}</div>'
    )


def citation_card(c: Citation, article_text: str | None, same_as: int | None = None) -> str:
    score = f'<span class="src-score" title="sentence relevance score {c.score:.4f}">score {c.score:.2f}</span>'
    if article_text and article_text[c.start : c.end] == c.sentence:
        before, sentence, after, cut_left, cut_right = passage_around(article_text, c.start, c.end)
    else:  # the article changed since this answer was given: show the sentence alone
        before, sentence, after, cut_left, cut_right = "", c.sentence, "", False, False
    passage = (
        ("… " if cut_left else "")
        + esc(before)
        + f"<mark>{esc(sentence)}</mark>"
        + esc(after)
        + (" …" if cut_right else "")
    )
    if same_as is None:
        where = _where(c.title, c.source, c.published, c.url, c.path, score)
    else:  # a further sentence of the article of card `same_as`: no need to repeat its title
        where = f'<div class="src-meta"><span class="src-same">same article as [{same_as}]</span> · {score}</div>'
    return (
        f'<article class="src-card" id="cite-{c.n}"><div class="src-num">{c.n}</div><div class="src-body">'
        f"{where}"
        f'<p class="src-passage">{passage}</p></div></article>'
    )


def passage_card(i: int, hit: Hit, limit: int = CONTEXT_CHARS) -> str:
    score = f'<span class="src-score" title="retrieval score {hit.score:.4f}, cosine similarity {hit.dense:.3f}">score {hit.score:.3f}</span>'
    text = " ".join(hit.text.split())
    if len(text) > limit:
        cut = text.rfind(" ", 0, limit)
        text = text[: cut if cut > 0 else limit] + " …"
    return (
        f'<article class="src-card src-near" id="passage-{i}"><div class="src-num">{i}</div><div class="src-body">'
        f"{_where(hit.title, hit.source, hit.published, hit.url, hit.path, score)}"
        f'<p class="src-passage">{esc(text)}</p></div></article>'
    )


def sources_html(answer: Answer | None, article_text: Callable[[str], str | None]) -> str:
    """The sources panel for an answer: one card per citation (id="cite-N"), or for
    an abstention the closest passages."""
    if answer is None:
        return f'<div class="sources">{EMPTY_SOURCES}</div>'
    if answer.abstained:
        cards = "".join(passage_card(i, h) for i, h in enumerate(answer.passages[:3], start=1))
        head = '<div class="sources-head abstained">No answer found · closest passages</div>'
        return f'<div class="sources">{head}{cards}</div>'
    texts: dict[str, str | None] = {}
    first_card: dict[str, int] = {}
    cards = []
    for c in answer.citations:
        if c.article_id not in texts:
            texts[c.article_id] = article_text(c.article_id)
        cards.append(citation_card(c, texts[c.article_id], first_card.get(c.article_id)))
        first_card.setdefault(c.article_id, c.n)
    n = len(answer.citations)
    head = f'<div class="sources-head">Sources · {n} cited sentence{"s" * (n != 1)}</div>'
    return f'<div class="sources">{head}{"".join(cards)}</div>'


def stats_html(counts: dict, size_bytes: int, last_build: str | None, model: str | None, outlets: Sequence[str]) -> str:
    items = [
        ("articles", f"{counts.get('articles', 0):,}"),
        ("chunks", f"{counts.get('chunks', 0):,}"),
        ("sentences", f"{counts.get('sentences', 0):,}"),
        ("outlets", f"{len(outlets):,}"),
        ("on disk", f"{size_bytes / 1e6:.1f} MB"),
        ("last build", last_build or "never"),
        ("model", model or "?"),
    ]
    cells = "".join(f'<div class="stat"><div class="stat-v">{esc(v)}</div><div class="stat-k">{esc(k)}</div></div>' for k, v in items)
    return f'<div class="stats">{cells}</div>'


DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
