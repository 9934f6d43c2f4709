"""A conversation as Markdown: each question, its answer with the `[n]` marks turned
into footnotes, and one footnote per citation (title, outlet, date, link, the quoted
sentence).

Questions, answers, titles and quoted sentences are text from users and articles:
every character Markdown could read as markup is backslash-escaped (CommonMark allows
that for all ASCII punctuation), so an article cannot add a link, an image or HTML to
the export; it reads as it was written. Only links we make, from an article's own
http(s) URL, are links.

`exchange(answer)` is what the chat keeps of each answer for this; `markdown(...)`
writes the document; `Conversations` remembers the chat's conversations by id for
`GET /export`; `ExportHandlers` is the chat's Export button and `router` the /export
route (its key checked as the /v1 API's, ui/openai_api.py).
"""

from __future__ import annotations

import re
import secrets
import threading
from collections import OrderedDict
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import Response

from rag.answer import Answer

TITLE = "News Q&A conversation"
MAX_CONVERSATIONS = 1000
"""Chat conversations `GET /export` can find (the least recently changed are forgotten)."""

_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&$])")
"""Characters Markdown (CommonMark, GFM, and the $ of math extensions) reads as markup
anywhere in a line: emphasis, code, links and images, HTML, tables, strikethrough,
entities, math. Escaped everywhere; `(` `)` `!` are harmless once `[` is."""
_LINE_START = re.compile(r"^([#>+=-]|\d+[.)])")
"""What starts a heading, quote, list or setext underline at the start of a line."""
_MARK = re.compile(r"\[(\d+)\]")


def escape(text: str, line_start: bool = False) -> str:
    """`text` as literal Markdown inline text: whitespace (line breaks too) collapsed
    to single spaces, every markup character backslash-escaped; with `line_start`,
    also what would open a block (heading, list, quote) at the start of a line."""
    flat = _SPECIAL.sub(r"\\\1", " ".join(str(text).split()))
    return _unblock(flat) if line_start else flat


def _unblock(line: str) -> str:
    """`line` with a backslash before the character that would make it a heading,
    quote, list item or setext underline."""
    block = _LINE_START.match(line)
    return line if block is None else line[: block.end() - 1] + "\\" + line[block.end() - 1 :]


def exchange(answer: Answer) -> dict:
    """What an export needs of one answer: question, text, notice, abstained and the
    citations as `Answer.to_dict` gives them (no passages: they are not shown)."""
    full = answer.to_dict()
    return {key: full[key] for key in ("question", "answer", "abstained", "citations")} | {"notice": answer.notice}


def link(url: str) -> str:
    """An article's url as a Markdown link when it is a plain http(s) URL; otherwise
    as escaped text (a `javascript:` or odd url never becomes a link)."""
    parts = urlsplit(url or "")
    if parts.scheme in ("http", "https") and parts.netloc and not re.search(r"[\s<>\"'`\\]", url):
        return f"<{url}>"
    return escape(url)


def footnote(label: str, citation: dict) -> str:
    """`[^label]: **Title**, Outlet, 2017-02-09, <url>. “the quoted sentence”`."""
    where = [f"**{escape(citation.get('title') or 'Untitled')}**"]
    where += [escape(citation[key]) for key in ("source", "published") if citation.get(key)]
    url = citation.get("url") or ""
    if url:
        where.append(link(url))
    elif citation.get("file"):
        where.append(escape(citation["file"]))
    return f"[^{label}]: {', '.join(where)}. “{escape(citation.get('sentence', ''))}”"


def answer_body(text: str, numbers: set[int], prefix: str) -> str:
    """The answer as one escaped paragraph, its `[n]` marks turned into footnote
    references `[^prefix-n]` (a bracketed number that cites nothing stays literal)."""
    flat = " ".join(text.split())
    pieces, last = [], 0
    for mark in _MARK.finditer(flat):
        if int(mark.group(1)) in numbers:
            pieces += [_SPECIAL.sub(r"\\\1", flat[last : mark.start()]), f"[^{prefix}-{mark.group(1)}]"]
            last = mark.end()
    pieces.append(_SPECIAL.sub(r"\\\1", flat[last:]))
    return _unblock("".join(pieces))


def markdown(exchanges: list[dict], now: datetime | None = None, title: str = TITLE) -> str:
    """The conversation as one Markdown document (CommonMark with GFM footnotes)."""
    now = now or datetime.now(timezone.utc)
    count = f"{len(exchanges)} question" + ("" if len(exchanges) == 1 else "s")
    lines = [f"# {title}", "", f"_Exported {now:%Y-%m-%d %H:%M} UTC · {count}_", ""]
    for i, item in enumerate(exchanges, start=1):
        citations = item.get("citations") or []
        lines += [f"## {i}\\. {escape(item.get('question', ''))}", ""]
        if item.get("notice"):
            lines += [f"_Note: {escape(item['notice'])}_", ""]
        if item.get("abstained"):
            lines += [escape(item.get("answer", ""), line_start=True), ""]
            continue
        numbers = {int(c["n"]) for c in citations}
        lines += [answer_body(item.get("answer", ""), numbers, f"q{i}"), ""]
        lines += [footnote(f"q{i}-{c['n']}", c) for c in citations]
        lines.append("")
    if not exchanges:
        lines += ["_No questions asked yet._", ""]
    return "\n".join(lines)


def file_name(now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    return f"conversation-{now:%Y%m%d-%H%M%S}.md"


class Conversations:
    """The chat's conversations by id, so `GET /export?conversation=ID` can give one
    back: in memory, at most `limit` of them (the least recently changed forgotten
    first). Ids are random (128 bits), so one cannot be guessed from another."""

    def __init__(self, limit: int = MAX_CONVERSATIONS):
        self.limit = limit
        self._items: OrderedDict[str, list[dict]] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def new_id() -> str:
        return secrets.token_urlsafe(16)

    def put(self, conversation: str, exchanges: list[dict]) -> None:
        with self._lock:
            self._items.pop(conversation, None)
            self._items[conversation] = list(exchanges)
            while len(self._items) > self.limit:
                self._items.popitem(last=False)

    def get(self, conversation: str) -> list[dict] | None:
        with self._lock:
            found = self._items.get(conversation)
            return None if found is None else list(found)


# ------------------------------------------------------------ the chat's button


class ExportHandlers:
    """The chat's Export button: after each answer (and "New chat") the conversation
    is remembered under its id and written to a file the button downloads."""

    def __init__(self, conversations: Conversations, folder: Path):
        self.conversations = conversations
        self.folder = folder

    def update(self, turns: list[list] | None, conversation: str):
        """(the button, with the conversation's Markdown file; the link to the same at /export)."""
        import gradio as gr

        exchanges = [turn[2] for turn in turns or [] if len(turn) > 2]
        self.conversations.put(conversation, exchanges)
        if not exchanges:
            return gr.DownloadButton(value=None, interactive=False), ""
        # One file per conversation, replaced at each answer; Gradio serves its own copy.
        folder = self.folder / conversation
        for old in folder.glob("*.md"):
            old.unlink(missing_ok=True)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / file_name()
        path.write_text(markdown(exchanges), encoding="utf-8")
        url = f"export?format=md&conversation={conversation}"
        return gr.DownloadButton(value=str(path), interactive=True), f"[This conversation as Markdown]({url}) (`GET /{url}`)"


# ------------------------------------------------------------------- the route


def from_messages(messages: object) -> list[dict]:
    """Exchanges from an OpenAI-style message list whose assistant messages carry
    the `citations` this server's /v1/chat/completions gave them."""
    from ui.openai_api import ApiError, strip_extras

    if not isinstance(messages, list):
        raise ApiError(400, "messages must be a list of {role, content, citations} objects", param="messages")
    exchanges, question = [], ""
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("content", ""), str):
            raise ApiError(400, f"messages[{i}] must be an object with a text content", param=f"messages[{i}]")
        if message.get("role") == "user":
            question = message.get("content", "")
        elif message.get("role") == "assistant":
            citations = message.get("citations") or []
            if not isinstance(citations, list) or not all(isinstance(c, dict) and isinstance(c.get("n"), int) for c in citations):
                raise ApiError(400, f"messages[{i}].citations must be a list of citation objects with a number n", param=f"messages[{i}].citations")
            text = strip_extras(message.get("content", ""))
            exchanges.append({"question": question, "answer": text, "abstained": False, "notice": "", "citations": citations})
            question = ""
    return exchanges


def router(conversations: Conversations, access) -> APIRouter:
    """`GET /export?format=md&conversation=ID` (a chat conversation, by the id its
    Export link shows) and `POST /export?format=md` with `{"messages": [...]}` (a
    conversation held by an API client): a Markdown file."""
    from ui.openai_api import ApiError, guarded, json_body

    def reply(request: Request, exchanges: list[dict]) -> Response:
        fmt = request.query_params.get("format", "md")
        if fmt not in ("md", "markdown"):
            raise ApiError(400, f"format must be md (got {fmt[:20]!r})", param="format")
        headers = {"Content-Disposition": f'attachment; filename="{file_name()}"'}
        return Response(markdown(exchanges), media_type="text/markdown; charset=utf-8", headers=headers)

    def get(request: Request) -> Response:
        access.check(request, also_ok=access.logged_in(request))
        conversation = request.query_params.get("conversation", "")
        if not conversation:
            raise ApiError(400, "conversation is required: the id shown by the chat's Export link", param="conversation")
        exchanges = conversations.get(conversation)
        if exchanges is None:
            raise ApiError(404, "no such conversation on this server (ids last until the server restarts)",
                           param="conversation", code="conversation_not_found")
        return reply(request, exchanges)

    async def post(request: Request) -> Response:
        access.check(request, also_ok=access.logged_in(request))
        body = await json_body(request)
        if not isinstance(body, dict):
            raise ApiError(400, 'the request body must be {"messages": [...]}')
        return reply(request, from_messages(body.get("messages")))

    routes = APIRouter()
    routes.add_api_route("/export", guarded(get), methods=["GET"], include_in_schema=False)
    routes.add_api_route("/export", guarded(post), methods=["POST"], include_in_schema=False)
    return routes
