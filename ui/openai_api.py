"""The OpenAI-compatible chat API that `rag serve` adds to Gradio's app, on the same
port: `GET /v1/models` and `POST /v1/chat/completions`, streamed (server-sent events)
or not, so Open WebUI, LibreChat, Chatbox or the `openai` package can ask the index
(docs/api.md).

Only protocol lives here: the request is read and checked (`rag.validate`, as for
`/ask`), answered by `Pipeline.ask` / `Pipeline.stream` as the chat is, and written
back in OpenAI's shapes. The answer text keeps its `[n]` marks and ends with its
numbered sources, so a client that ignores extra fields still reads them; the
response adds `citations` (the `rag ask --json` objects), as Perplexity's API does.
Refusals use OpenAI's error shape `{"error": {"message", "type", "param", "code"}}`.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import re
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from rag import validate
from rag.answer import Answer, Turn
from rag.pipeline import Pipeline
from rag.retrieve import Filters
from rag.settings import DEFAULT_K, Settings
from ui import guard

EXTRACTIVE_MODEL = "rag-news"
"""Model id of the extractive answers (verbatim cited sentences)."""
LLM_MODEL = "rag-news-llm"
"""Model id of the answers written by the configured LLM server (docs/llm.md)."""
SOURCES_HEADING = "Sources:"
NOTE_PREFIX = "Note: "
MAX_BODY_BYTES = 1_000_000
"""Largest request body read: a long conversation is a few kilobytes."""


@dataclass
class ApiError(Exception):
    """A refusal, as OpenAI writes it."""

    status: int
    message: str
    type: str = "invalid_request_error"
    param: str | None = None
    code: str | None = None
    retry_after: int | None = None

    def response(self) -> JSONResponse:
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after else None
        if self.status == 401:
            headers = {"WWW-Authenticate": "Bearer"}
        body = {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}
        return JSONResponse(body, status_code=self.status, headers=headers)


@dataclass(frozen=True)
class ChatRequest:
    """What a chat completion request asks, checked."""

    model: str
    question: str
    history: list[Turn]
    k: int
    filters: Filters | None
    stream: bool


# ------------------------------------------------------------------ auth


class Access:
    """Who may call: anyone when no key is set (rag serve allows that only on
    loopback or with --insecure), else a request with `Authorization: Bearer <key>`
    for one of `keys`. Wrong keys are throttled per client address by `throttle`
    (ui/guard.py's login throttle: after a few failures each attempt waits, doubling)."""

    def __init__(self, keys: Sequence[str], throttle):
        self.keys = [key for key in keys if key]
        self.throttle = throttle

    def check(self, request: Request, also_ok: bool = False) -> None:
        """Raises ApiError 401 or 429 unless the request may go on. `also_ok`: the
        caller is already known (e.g. logged in to the UI), a key is not needed."""
        if not self.keys or also_ok:
            return
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            raise ApiError(401, "An API key is required: send the header 'Authorization: Bearer <key>' (RAG_API_KEY).",
                           code="invalid_api_key")
        # Counted like a login (one locked check-and-count), under a key of its own.
        keys = (f"api {guard.client_key(self.throttle.client(request.scope))}",)
        wait = self.throttle.admit(keys)
        if wait > 0:
            seconds = math.ceil(wait)
            raise ApiError(
                429, f"Too many wrong API keys from this address: try again in {seconds} s.",
                type="rate_limit_error", code="rate_limit_exceeded", retry_after=seconds,
            )
        ok = any(hmac.compare_digest(given.strip().encode(), key.encode()) for key in self.keys)
        if ok:
            self.throttle.forgive(keys)
        else:
            raise ApiError(401, "Incorrect API key provided.", code="invalid_api_key")

    @staticmethod
    def logged_in(request: Request) -> bool:
        """True when the request carries the cookie of a Gradio login to this app
        (so a logged-in browser can open /export without a key)."""
        app = request.app
        cookie = getattr(app, "cookie_id", None)
        token = request.cookies.get(f"access-token-{cookie}") or request.cookies.get(f"access-token-unsecure-{cookie}")
        return cookie is not None and token is not None and token in (getattr(app, "tokens", None) or {})


def keys_of(settings: Settings, login: object) -> list[str]:
    """The keys the API accepts: `settings.api_key` and the UI login's password(s)
    (`login` as Gradio's launch takes it: (user, password) or a list of them)."""
    logins = [login] if isinstance(login, tuple) else login if isinstance(login, list) else []
    return [key for key in (settings.api_key, *(pair[1] for pair in logins)) if key]


# --------------------------------------------------------------- request


def models(settings: Settings) -> list[str]:
    """Model ids offered: the extractive answers, and the LLM's when one is set."""
    return [EXTRACTIVE_MODEL, *([LLM_MODEL] if settings.llm_base_url else [])]


def message_text(content: object, index: int) -> str:
    """A message's text: a string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if all(isinstance(t, str) for t in texts):
            return "\n".join(texts)
    raise ApiError(400, f"messages[{index}].content must be text or a list of text parts", param=f"messages[{index}].content")


def strip_extras(answer: str) -> str:
    """An answer as a client sends it back, without what this API added to the
    answer (its note and its list of sources), as the chat's history holds it."""
    answer = answer.split(f"\n\n{SOURCES_HEADING}\n", 1)[0]
    if answer.startswith(NOTE_PREFIX) and "\n\n" in answer:
        answer = answer.split("\n\n", 1)[1]
    return answer.strip()


def conversation(messages: object) -> tuple[str, list[Turn]]:
    """The last user message (the question) and the earlier user/assistant turns.
    System and developer messages are ignored: answers come from the articles."""
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "messages must be a non-empty list of {role, content} objects", param="messages")
    turns: list[Turn] = []
    pending: str | None = None
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise ApiError(400, f"messages[{i}] must be an object with a role and content", param=f"messages[{i}]")
        role = message["role"]
        if role in ("system", "developer"):
            continue
        if role not in ("user", "assistant"):
            raise ApiError(400, f"messages[{i}].role {role!r} is not supported (user, assistant, system)", param=f"messages[{i}].role")
        text = message_text(message.get("content"), i)
        if role == "user":
            if pending is not None:
                turns.append(Turn(pending, ""))
            pending = text
        else:
            turns.append(Turn(pending or "", strip_extras(text)))
            pending = None
    if pending is None:
        raise ApiError(400, "the last message must be the user's question", param="messages")
    return pending, [t for t in turns if t.question]


def checked(param: str, check, *args):
    """check(*args), its BadInput as a 400 naming `param`."""
    try:
        return check(*args)
    except validate.BadInput as err:
        raise ApiError(400, str(err), param=param) from None


def outlets(value: object) -> tuple[str, ...]:
    """`source`: an outlet name or a list of them."""
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ApiError(400, "source must be an outlet name or a list of outlet names", param="source")


def parse_request(body: object, settings: Settings) -> ChatRequest:
    """The request body checked: 400 (404 for an unknown model) with what is allowed."""
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise ApiError(400, "you must provide a model parameter", param="model")
    if model not in models(settings):
        hint = "" if model != LLM_MODEL else " (set RAG_LLM_BASE_URL to an OpenAI-compatible server to enable it)"
        raise ApiError(404, f"The model {model!r} does not exist; models: {', '.join(models(settings))}{hint}",
                       param="model", code="model_not_found")
    question, history = conversation(body.get("messages"))
    question = checked("messages", validate.question, question)
    k = checked("k", validate.k, body.get("k", DEFAULT_K), settings.max_k)
    date_from = checked("from", validate.day, body.get("from"), "from")
    date_to = checked("to", validate.day, body.get("to"), "to")
    checked("to", validate.date_range, date_from, date_to)
    stream = body.get("stream", False)
    if not isinstance(stream, bool) and stream is not None:
        raise ApiError(400, "stream must be true or false", param="stream")
    filters = Filters(outlets(body.get("source")), date_from, date_to) or None
    return ChatRequest(model, question, history, k, filters, bool(stream))


# -------------------------------------------------------------- response


def reference(citation: dict) -> str:
    """`Title — Outlet, 2017-02-09 — url` (what is known of them)."""
    where = ", ".join(x for x in (citation["source"], citation["published"]) if x)
    return " — ".join(x for x in (citation["title"] or "Untitled", where, citation["url"] or citation["file"]) if x)


def sources_list(citations: list[dict]) -> str:
    """The numbered sources, one a line (a Markdown list, so renderers keep the lines)."""
    lines, previous = [], None
    for c in citations:
        same = c["article_id"] == previous
        lines.append(f"- [{c['n']}] " + (f"same article as above: “{c['sentence']}”" if same else reference(c)))
        previous = c["article_id"]
    return f"{SOURCES_HEADING}\n" + "\n".join(lines)


def content(answer: Answer, citations: list[dict]) -> str:
    """The message text: a note if any, the answer with its [n] marks, the sources."""
    parts = [f"{NOTE_PREFIX}{answer.notice}"] if answer.notice else []
    parts.append(answer.text)
    if citations and not answer.abstained:
        parts.append(sources_list(citations))
    return "\n\n".join(parts)


def completion(request: ChatRequest, answer: Answer, ident: str, created: int) -> dict:
    citations = answer.to_dict()["citations"]
    return {
        "id": ident,
        "object": "chat.completion",
        "created": created,
        "model": request.model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content(answer, citations)}, "finish_reason": "stop"}],
        "citations": citations,
    }


def chunk(request: ChatRequest, ident: str, created: int, delta: dict, finish: str | None = None, **extra) -> str:
    """One server-sent event of a streamed completion."""
    body = {
        "id": ident,
        "object": "chat.completion.chunk",
        "created": created,
        "model": request.model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


def pieces(text: str) -> list[str]:
    """Text cut after each [n] mark, so a streamed extractive answer arrives sentence by sentence."""
    return [p for p in re.split(r"(?<=\])(?=\s)", text) if p]


def stream_events(request: ChatRequest, answers: Iterator[str | Answer]) -> Iterator[str]:
    """The completion as server-sent events: the role, the text as it comes, the
    rest of the content (sources; or, when the LLM answer was replaced by the
    extractive one, that answer), a last chunk with `citations`, then [DONE].
    `answers` is Pipeline.stream's output, or one finished Answer."""
    ident, created = f"chatcmpl-{secrets.token_hex(12)}", int(time.time())
    yield chunk(request, ident, created, {"role": "assistant", "content": ""})
    sent = ""
    try:
        for piece in answers:
            if isinstance(piece, str):
                sent += piece
                yield chunk(request, ident, created, {"content": piece})
                continue
            citations = piece.to_dict()["citations"]
            full = content(piece, citations)
            if sent and full.startswith(sent.strip()):
                rest = full[len(sent.strip()) :]
            elif sent:  # what streamed was not kept (e.g. the LLM answer failed its check)
                rest = "\n\n---\n\n" + full
            else:
                rest = full
            for part in pieces(rest):
                yield chunk(request, ident, created, {"content": part})
            yield chunk(request, ident, created, {}, "stop", citations=citations)
    except Exception as err:  # the client is told, in the stream, rather than left with a cut connection
        logging.getLogger(__name__).exception("streamed answer failed")
        error = {"error": {"message": f"the answer failed: {err}", "type": "server_error", "param": None, "code": None}}
        yield f"data: {json.dumps(error)}\n\n"
    yield "data: [DONE]\n\n"


# ---------------------------------------------------------------- routes


async def json_body(request: Request) -> object:
    """The request's JSON body; ApiError 413 when over `MAX_BODY_BYTES`, 400 when not JSON."""
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise ApiError(413, f"the request body is over {MAX_BODY_BYTES} bytes")
    try:
        return json.loads(raw or b"null")
    except (ValueError, UnicodeDecodeError) as err:
        raise ApiError(400, f"the request body is not valid JSON: {err}") from None


class ChatApi:
    """The /v1 endpoints over one pipeline; at most `concurrency` answers at once
    (others wait), as the UI's queue allows."""

    def __init__(self, settings: Settings, pipeline: Pipeline, access: Access, concurrency: int = 8):
        self.settings = settings
        self.pipeline = pipeline
        self.access = access
        self._slots = threading.BoundedSemaphore(concurrency)

    def models(self, request: Request) -> JSONResponse:
        self.access.check(request)
        data = [{"id": name, "object": "model", "created": 0, "owned_by": "rag-news"} for name in models(self.settings)]
        return JSONResponse({"object": "list", "data": data})

    async def chat_completions(self, request: Request):
        self.access.check(request)
        body = await json_body(request)
        chat = parse_request(body, self.settings)
        if chat.stream:
            return StreamingResponse(self.streamed(chat), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        from starlette.concurrency import run_in_threadpool

        answer = await run_in_threadpool(self.answer, chat)
        return JSONResponse(completion(chat, answer, f"chatcmpl-{secrets.token_hex(12)}", int(time.time())))

    def answer(self, chat: ChatRequest) -> Answer:
        with self._slots:
            self.pipeline.refresh()
            return self._ask(chat)

    def streamed(self, chat: ChatRequest) -> Iterator[str]:
        """Server-sent events (a sync generator: Starlette runs it in a worker thread)."""
        with self._slots:
            self.pipeline.refresh()
            if chat.model == LLM_MODEL and self.settings.llm_stream:
                answers = self.pipeline.stream(chat.question, history=chat.history, k=chat.k, filters=chat.filters)
            else:
                answers = self._ask_lazily(chat)
            yield from stream_events(chat, answers)

    def _ask_lazily(self, chat: ChatRequest) -> Iterator[Answer]:
        """The answer, computed when the stream asks for it: after the first event has
        gone out, and with its failure reported in the stream."""
        yield self._ask(chat)

    def _ask(self, chat: ChatRequest) -> Answer:
        return self.pipeline.ask(chat.question, history=chat.history, k=chat.k, filters=chat.filters, llm=chat.model == LLM_MODEL)


def guarded(handler):
    """`handler` with its ApiError answered in OpenAI's error shape."""

    async def route(request: Request):
        try:
            result = handler(request)
            if hasattr(result, "__await__"):
                result = await result
            return result
        except ApiError as err:
            return err.response()
        except Exception as err:  # a failure of ours, still in the shape clients can show
            logging.getLogger(__name__).exception("%s failed", request.url.path)
            return ApiError(500, f"the server failed to answer: {type(err).__name__}: {err}", type="server_error").response()

    route.__name__ = handler.__name__
    return route


def router(api: ChatApi) -> APIRouter:
    """The /v1 routes, for Gradio's FastAPI app (ui/app.py adds them at launch)."""
    routes = APIRouter()
    routes.add_api_route("/v1/models", guarded(api.models), methods=["GET"], include_in_schema=False)
    routes.add_api_route("/v1/chat/completions", guarded(api.chat_completions), methods=["POST"], include_in_schema=False)
    return routes
