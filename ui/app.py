"""The chat UI (Gradio 6): ask, read the cited sentences in place, manage the corpus.

`build_app(settings, pipeline=None)` returns the `gr.Blocks`; `serve(settings, ...)`
is what `rag serve` runs. Every answer comes from `Pipeline.ask`, the same code
path as `rag ask`; this module only renders and wires things up.

API endpoints (gradio_client; see docs/ui.md): /ask, /stats, /articles, /rebuild.
"""

from __future__ import annotations

import ipaddress
import sqlite3
import sys
import threading
import time
from pathlib import Path
from typing import Any

import gradio as gr
from starlette.middleware import Middleware

from rag import validate
from rag.answer import Turn
from rag.build import STAGES, BuildBusy, Builder
from rag.ingest import SUPPORTED
from rag.pipeline import Pipeline
from rag.retrieve import Filters
from rag.settings import Settings
from rag.store import StoreError, explain
from ui import files, guard, render
from ui.style import CSS, HEAD, THEME

TITLE = "News Q&A"
EXAMPLES = ["Why did Russia-Turkey ties sour?", "What did Putin tell Erdogan on the phone?"]
FOLLOW_UP_EXAMPLE = "And how were relations mended?"
STREAM_DELAY = 0.06
"""Seconds between the sentences of an answer as it is shown."""
ICON = (
    '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" '
    'stroke-linejoin="round" aria-hidden="true"><path d="M4 22h16a2 2 0 0 0 2-2V4a2 2 0 0 0-2-2H8a2 2 0 0 0-2 2v16'
    'a2 2 0 0 1-2 2Zm0 0a2 2 0 0 1-2-2v-9c0-1.1.9-2 2-2h2"/><path d="M18 14h-8M15 18h-5M10 6h8v4h-8z"/></svg>'
)
ASK_CONCURRENCY = 8
"""Questions answered at once (UI and /ask together). Answers hold no lock, so
several keep both cores busy while others wait on the network; bench/load.py."""
TABLE_HEADERS = ["Title", "Outlet", "Date", "Chunks", "File"]


class NewsApp(gr.Blocks):
    """gr.Blocks whose launch() defaults to this app's theme, CSS, head script and
    upload size limit (Gradio 6 takes those in launch(), not in Blocks())."""

    settings: Settings
    allow_changes: bool = True

    def launch(self, *args, **kwargs):  # type: ignore[override]
        s = self.settings
        # Refused before Gradio sees them: repeated failed logins, uploads when changes are off.
        app_kwargs = dict(kwargs.get("app_kwargs") or {})
        app_kwargs["middleware"] = [
            *app_kwargs.get("middleware", []),
            Middleware(guard.LoginThrottle, free=s.login_free_attempts, delay=s.login_delay),
            Middleware(guard.UploadGate, allowed=self.allow_changes),
        ]
        kwargs["app_kwargs"] = app_kwargs
        kwargs.setdefault("theme", THEME)
        kwargs.setdefault("css", CSS)
        kwargs.setdefault("head", HEAD)
        kwargs.setdefault("max_file_size", int(self.settings.max_file_mb * 1_000_000))
        kwargs.setdefault("footer_links", ["api", "gradio"])
        return super().launch(*args, **kwargs)


class IndexControl:
    """What the Articles tab does to the corpus and the index: one change at a time,
    while questions keep being answered from the loaded index."""

    def __init__(self, settings: Settings, pipeline: Pipeline, allow_changes: bool):
        self.settings = settings
        self.pipeline = pipeline
        self.allow_changes = allow_changes
        self.lock = threading.Lock()

    def check_allowed(self) -> None:
        if not self.allow_changes:
            raise gr.Error(
                "Index changes are disabled: this server listens on a public address without a password. "
                "Restart it with a password (RAG_AUTH or --auth-file) to enable uploads and rebuilds."
            )

    # -------------------------------------------------------------- reading

    def store_call(self, method: str, *args):
        """Call a reading method of the pipeline's store; a refresh may swap the
        store (and close the old one) at any moment, so retry once on the new one."""
        for attempt in range(2):
            try:
                return getattr(self.pipeline.store, method)(*args)
            except sqlite3.ProgrammingError:
                if attempt:
                    raise
        return None

    def article_text(self, article_id: str) -> str | None:
        row = self.store_call("article", article_id)
        return row["text"] if row else None

    def articles(self) -> list[dict]:
        return self.store_call("articles")

    def stats(self) -> dict:
        return {
            **self.store_call("stats"),
            "outlets": list(self.pipeline.retriever.sources),
            "corpus_dir": str(self.settings.corpus_dir),
            "index_dir": str(self.settings.index_dir),
            "changes_allowed": self.allow_changes,
        }

    # -------------------------------------------------------------- changing

    def rebuild(self, progress=None) -> dict:
        """Incremental build, then load the new index. Returns the build report as a dict."""
        self.check_allowed()
        if not self.lock.acquire(blocking=False):
            raise gr.Error("A rebuild is already running; wait for it to finish.")
        try:

            def report_progress(stage: str, done: int, total: int) -> None:
                if progress is not None and total:
                    label, unit = STAGES[stage]
                    progress((done, total), desc=label, unit=unit)

            try:
                # The pipeline's embedder is safe to share: questions asked during the
                # rebuild are answered from the loaded index meanwhile.
                report = Builder(self.settings, embedder=self.pipeline.embedder, progress=report_progress)()
            except BuildBusy as err:
                raise gr.Error(str(err)) from None
            except (StoreError, OSError, sqlite3.Error) as err:
                known = explain(err, self.settings.index_dir)  # a full disk, a damaged database
                if known is None:
                    raise
                raise gr.Error(str(known)) from None
            # A question asked meanwhile may have loaded the new index already.
            self.pipeline.refresh(force=True)
            refreshed = self.pipeline.is_current()
            out = {
                "added": report.added,
                "updated": report.updated,
                "removed": report.removed,
                "unchanged": report.unchanged,
                "skipped": [{"file": s.path, "reason": s.reason} for s in report.skipped],
                "chunks_embedded": report.chunks_embedded,
                "chunks_total": report.chunks_total,
                "seconds": round(report.seconds, 2),
                "summary": report.summary(),
                "reloaded": refreshed,
            }
            return out
        finally:
            self.lock.release()


def _report_md(report: dict) -> str:
    lines = [f"**Rebuilt.** {render.esc_md(report['summary'])}"]
    for s in report["skipped"][:20]:
        lines.append(f"- skipped {render.esc_md(s['file'])}: {render.esc_md(s['reason'])}")
    return "\n".join(lines)


def _filters(
    sources: list[str] | None, date_from: str, date_to: str, names: tuple[str, str] = ("date_from", "date_to")
) -> Filters | None:
    try:
        date_from, date_to = validate.date_range(date_from, date_to, names)
    except validate.BadInput as err:
        raise gr.Error(str(err)) from None
    filters = Filters(tuple(sources or ()), date_from, date_to)
    return filters or None


def _checked(check, *args):
    """validate.<check>(*args), its BadInput shown to the user as a gr.Error."""
    try:
        return check(*args)
    except validate.BadInput as err:
        raise gr.Error(str(err)) from None


def _table(articles: list[dict], query: str = "") -> list[list[Any]]:
    words = (query or "").lower().split()
    rows = []
    for a in articles:
        haystack = " ".join(str(a.get(k) or "") for k in ("title", "source", "published", "path", "url", "author")).lower()
        if all(w in haystack for w in words):
            rows.append([a["title"] or "", a["source"] or "", render.day(a["published"]), a["chunks"], a["path"]])
    return rows


def _api_article(article: dict) -> dict:
    """An article as /articles returns it: its `path` is called `file`, because
    gradio_client (with its default download_files=True) takes any dict with a
    `path` key for a file to download, and fails."""
    return {("file" if key == "path" else key): value for key, value in article.items()}


def _article_choices(articles: list[dict]) -> list[tuple[str, str]]:
    return [(f"{a['title'] or a['path']} — {a['path']}", a["id"]) for a in articles]


def build_app(settings: Settings, pipeline: Pipeline | None = None, allow_changes: bool = True) -> gr.Blocks:
    """The whole UI. `allow_changes=False` turns uploads, removals and rebuilds off
    (serve() does that on a public address without a password)."""
    pipeline = pipeline or Pipeline(settings)
    control = IndexControl(settings, pipeline, allow_changes)

    def articles_table(query: str = ""):
        return _table(control.articles(), query)

    def stats_block() -> str:
        s = control.stats()
        return render.stats_html(s, s["index_bytes"], s["last_build"], s["model"], s["outlets"])

    # ------------------------------------------------------------------ chat

    def ask(
        question: str, chat: list, turns: list, sources: list[str], date_from: str, date_to: str, k: float, use_llm: bool = False
    ):
        chat = list(chat or [])
        turns = list(turns or [])
        if not any(c.isalnum() for c in question or ""):
            yield chat, turns, gr.skip(), gr.skip()  # nothing asked: keep what was typed
            return
        question = _checked(validate.question, question)
        k = _checked(validate.k, k, min(settings.max_k, 30))
        filters = _filters(sources, date_from, date_to, ("From date", "To date"))
        pipeline.refresh()  # picks up a build made from the command line meanwhile
        history = [Turn(q, a) for q, a in turns]
        chat.append({"role": "user", "content": render.user_html(question)})
        chat.append({"role": "assistant", "content": '<div class="answer"><span class="typing">▍</span></div>'})
        yield chat, turns, gr.skip(), ""
        if use_llm:
            text = ""
            for piece in pipeline.stream(question, history=history, k=k, filters=filters):
                if isinstance(piece, str):
                    text += piece
                    chat[-1] = {"role": "assistant", "content": render.streaming_html(text)}
                    yield chat, turns, gr.skip(), ""
                else:
                    answer = piece
        else:
            answer = pipeline.ask(question, history=history, k=k, filters=filters)
        panel = render.sources_html(answer, control.article_text)
        turns.append([question, answer.text])
        steps = range(1, len(answer.citations) + 1) if not answer.abstained and answer.mode != "llm" else [None]
        for upto in steps:
            chat[-1] = {"role": "assistant", "content": render.answer_html(answer, upto)}
            yield chat, turns, panel, ""
            if upto is not None and upto < len(answer.citations):
                time.sleep(STREAM_DELAY)
        chat[-1] = {"role": "assistant", "content": render.answer_html(answer)}
        yield chat, turns, panel, ""

    def clear():
        return [], [], render.sources_html(None, control.article_text), ""

    # ------------------------------------------------------------------ articles

    def refresh_all(query: str):
        pipeline.refresh(force=True)
        articles = control.articles()
        return (
            _table(articles, query),
            stats_block(),
            gr.update(choices=_article_choices(articles), value=None),
            gr.update(choices=list(pipeline.retriever.sources)),
        )

    def upload(paths: list[str] | None):
        control.check_allowed()
        if not paths:
            return gr.skip(), None
        lines = []
        for path in paths:
            original = Path(path).name
            try:
                saved = files.save_upload(path, original, settings.corpus_dir, settings.max_file_mb)
            except files.UploadRefused as err:
                lines.append(f"- ✗ {render.esc_md(original)}: {render.esc_md(err)}")
                continue
            except OSError as err:  # a full disk, a corpus folder that cannot be written
                lines.append(f"- ✗ {render.esc_md(original)}: could not be saved ({render.esc_md(err.strerror or err)})")
                continue
            finally:
                Path(path).unlink(missing_ok=True)  # Gradio's temporary copy: not kept in its cache
            lines.append(f"- ✓ {render.esc_md(saved.describe())} ({saved.size / 1000:.1f} kB)")
        lines.append("\nClick **Rebuild index** to make the new articles answerable.")
        return "\n".join(lines), None

    def rebuild(query: str, progress=gr.Progress()):
        report = control.rebuild(progress)
        return (_report_md(report), *refresh_all(query))

    def describe_removal(article_id: str | None):
        if not article_id:
            return "", gr.update(visible=False, value=False)
        row = control.store_call("article", article_id)
        if not row:
            return "That article is no longer in the index.", gr.update(visible=False, value=False)
        path = row["path"]
        if files.is_list_file(path):
            n = sum(1 for a in control.articles() if a["path"] == path)
            msg = (
                f"⚠ **{render.esc_md(path)}** is a list file holding {n} article{'s' * (n != 1)}. "
                "Removing this article deletes the whole file, and all of them leave the index."
            )
            return msg, gr.update(visible=True, value=False)
        return f"Removing deletes **{render.esc_md(path)}** from the corpus folder and rebuilds the index.", gr.update(
            visible=False, value=False
        )

    def remove(article_id: str | None, confirm_whole_file: bool, query: str, progress=gr.Progress()):
        control.check_allowed()
        if not article_id:
            raise gr.Error("Pick an article to remove first.")
        row = control.store_call("article", article_id)
        if not row:
            raise gr.Error("That article is no longer in the index.")
        path = row["path"]
        if files.is_list_file(path) and not confirm_whole_file:
            raise gr.Error(f"{path} holds a list of articles: tick 'delete the whole file' to remove it.")
        try:
            files.remove_file(settings.corpus_dir, path)
        except files.UploadRefused as err:
            raise gr.Error(str(err)) from None
        report = control.rebuild(progress)
        status = f"Deleted **{render.esc_md(path)}**.\n\n" + _report_md(report)
        return (status, *refresh_all(query), gr.update(visible=False, value=False))

    # ------------------------------------------------------------------ API

    def api_ask(
        question: str,
        k: int = 10,
        sources: list[str] | None = None,
        date_from: str = "",
        date_to: str = "",
        history: list[list[str]] | None = None,
        llm: bool = False,
    ) -> dict:
        """Answer a question. Returns the `rag ask --json` object: question, answer,
        abstained, citations, passages. `history` is [[question, answer], ...] of
        earlier turns, for follow-up questions. `llm=True` asks the LLM server set by
        RAG_LLM_BASE_URL (citations verified; extractive answer if it fails)."""
        question = _checked(validate.question, question)
        k = _checked(validate.k, k, settings.max_k)
        filters = _filters(sources, date_from, date_to)
        pipeline.refresh()
        turns = [Turn(q, a) for q, a in _checked(validate.history, history)]
        return pipeline.ask(question, history=turns, k=k, filters=filters, llm=bool(llm)).to_dict()

    def api_stats() -> dict:
        """Index statistics: articles, chunks, sentences, outlets, model, size, last build."""
        pipeline.refresh(force=True)
        return control.stats()

    def api_articles(query: str = "") -> list[dict]:
        """Indexed articles (id, path, title, source, published, url, author, category,
        chunks), filtered by words in title, outlet, date, path or url."""
        pipeline.refresh(force=True)
        words = (query or "").lower().split()
        return [
            _api_article(a)
            for a in control.articles()
            if all(w in " ".join(str(v or "") for v in a.values()).lower() for w in words)
        ]

    def api_rebuild() -> dict:
        """Incremental build of the corpus folder, then reload: the build report."""
        return control.rebuild()

    # ------------------------------------------------------------------ layout

    articles0 = control.articles()
    # Gradio's copies of uploads are deleted after upload_cache_s (checked every 10 minutes at most).
    cache = (min(600, settings.upload_cache_s), settings.upload_cache_s)
    with NewsApp(title=TITLE, fill_width=False, delete_cache=cache) as demo:
        demo.settings = settings
        demo.allow_changes = allow_changes
        gr.HTML(
            f'<div id="app-header"><h1>{ICON}{TITLE}</h1><p>Ask about the articles in your corpus. '
            "Every answer is made of sentences quoted from them, each cited and highlighted in its source.</p></div>"
        )
        turns = gr.State([])
        with gr.Tabs():
            with gr.Tab("Chat", id="chat-tab"):
                with gr.Row(equal_height=False):
                    with gr.Column(scale=6, min_width=380):
                        chatbot = gr.Chatbot(
                            elem_id="chat",
                            height=480,
                            show_label=False,
                            layout="bubble",
                            feedback_options=None,
                            buttons=[],
                            placeholder=(
                                "<div style='text-align:center;opacity:.75'><b>Ask a question about your news articles</b>"
                                "<br>Answers quote the articles verbatim; numbers link to the sources.</div>"
                            ),
                        )
                        with gr.Row():
                            question = gr.Textbox(
                                placeholder="Ask a question, e.g. Why did Russia-Turkey ties sour?",
                                show_label=False,
                                container=False,
                                scale=8,
                                elem_id="question",
                                autofocus=True,
                                max_lines=4,
                            )
                            ask_btn = gr.Button("Ask", variant="primary", scale=0, min_width=90, elem_id="ask")
                            clear_btn = gr.Button("New chat", variant="secondary", scale=0, min_width=110, elem_id="clear")
                        with gr.Row(elem_id="examples-row"):
                            gr.Examples([*EXAMPLES, FOLLOW_UP_EXAMPLE], inputs=[question], label="Try")
                        with gr.Accordion("Search settings", open=False, elem_id="settings"):
                            with gr.Row():
                                outlets = gr.Dropdown(
                                    choices=list(pipeline.retriever.sources),
                                    multiselect=True,
                                    label="Outlets",
                                    info="only these outlets (empty: all)",
                                    scale=3,
                                )
                                k = gr.Slider(1, 30, value=10, step=1, label="Passages (k)", scale=2)
                            with gr.Row():
                                date_from = gr.Textbox(label="From date", placeholder="YYYY-MM-DD", max_lines=1)
                                date_to = gr.Textbox(label="To date", placeholder="YYYY-MM-DD", max_lines=1)
                            use_llm = gr.Checkbox(
                                value=False,
                                label="Fluent answer from an LLM",
                                info=(
                                    f"{settings.llm_base_url} · every citation verified; extractive answer if it fails"
                                    if settings.llm_base_url
                                    else "set RAG_LLM_BASE_URL (an OpenAI-compatible server) to enable"
                                ),
                                interactive=bool(settings.llm_base_url),
                                elem_id="use-llm",
                            )
                    with gr.Column(scale=5, min_width=320, elem_id="sources-col"):
                        sources = gr.HTML(render.sources_html(None, control.article_text), elem_id="sources", js_on_load=None)

            with gr.Tab("Articles", id="articles-tab"):
                stats = gr.HTML(stats_block(), elem_id="stats", js_on_load=None)
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3):
                        search = gr.Textbox(
                            placeholder="Filter by title, outlet, date or file", show_label=False, container=False, elem_id="article-search"
                        )
                        table = gr.Dataframe(
                            value=_table(articles0),
                            headers=TABLE_HEADERS,
                            datatype=["str", "str", "str", "number", "str"],
                            interactive=False,
                            wrap=True,
                            max_height=480,
                            elem_id="articles",
                            column_widths=["44%", "16%", "12%", "8%", "20%"],
                        )
                    with gr.Column(scale=2):
                        with gr.Group():
                            upload_files = gr.File(
                                label=f"Add articles ({' '.join(sorted(SUPPORTED))}, up to {settings.max_file_mb:g} MB)",
                                file_count="multiple",
                                file_types=sorted(SUPPORTED),
                                type="filepath",
                                elem_id="upload",
                                interactive=allow_changes,
                            )
                            rebuild_btn = gr.Button(
                                "Rebuild index", variant="primary", elem_id="rebuild", interactive=allow_changes
                            )
                        status = gr.Markdown(
                            "" if allow_changes else "Index changes are disabled on this server (no password set).",
                            elem_id="status-line",
                        )
                        with gr.Accordion("Remove an article", open=False, elem_id="remove-box"):
                            remove_pick = gr.Dropdown(
                                choices=_article_choices(articles0), label="Article", value=None, elem_id="remove-pick"
                            )
                            remove_info = gr.Markdown("")
                            remove_confirm = gr.Checkbox(label="Delete the whole file", visible=False, value=False)
                            remove_btn = gr.Button("Delete file and rebuild", variant="stop", interactive=allow_changes)

        # -------------------------------------------------------------- events
        chat_io = dict(
            fn=ask,
            inputs=[question, chatbot, turns, outlets, date_from, date_to, k, use_llm],
            outputs=[chatbot, turns, sources, question],
            api_visibility="private",
            concurrency_limit=ASK_CONCURRENCY,
            concurrency_id="ask",
        )
        question.submit(**chat_io, api_name="ui_submit")
        ask_btn.click(**chat_io, api_name="ui_ask")
        clear_btn.click(clear, None, [chatbot, turns, sources, question], api_name="ui_clear", api_visibility="private")
        chatbot.clear(clear, None, [chatbot, turns, sources, question], api_name="ui_clear_chat", api_visibility="private")

        search.change(articles_table, [search], [table], api_name="ui_search", api_visibility="private", show_progress="hidden")
        index_outputs = [table, stats, remove_pick, outlets]
        upload_files.upload(upload, [upload_files], [status, upload_files], api_name="ui_upload", api_visibility="private", concurrency_id="index")
        rebuild_btn.click(
            rebuild, [search], [status, *index_outputs], api_name="ui_rebuild", api_visibility="private", concurrency_id="index",
            show_progress_on=[status],
        )
        remove_pick.change(
            describe_removal, [remove_pick], [remove_info, remove_confirm], api_name="ui_describe", api_visibility="private"
        )
        remove_btn.click(
            remove,
            [remove_pick, remove_confirm, search],
            [status, *index_outputs, remove_confirm],
            api_name="ui_remove",
            api_visibility="private",
            concurrency_id="index",
        )
        demo.load(refresh_all, [search], index_outputs, api_name="ui_load", api_visibility="private", show_progress="hidden")

        gr.api(api_ask, api_name="ask", concurrency_limit=ASK_CONCURRENCY, concurrency_id="ask")
        gr.api(api_stats, api_name="stats")
        gr.api(api_articles, api_name="articles")
        gr.api(api_rebuild, api_name="rebuild", concurrency_id="index")
    return demo


# ---------------------------------------------------------------------- serve


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def login_of(settings: Settings) -> tuple[str, str] | None:
    """(user, password) from `settings.auth_file` (its first line), else `settings.auth`;
    None when neither is set. Raises ValueError with a message when unusable."""
    if settings.auth_file is None:
        return parse_auth(settings.auth)
    path = Path(settings.auth_file)
    try:
        lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read the auth file {path}: {err}") from None
    if not lines:
        raise ValueError(f"the auth file {path} is empty; write user:password on its first line")
    if path.stat().st_mode & 0o077:
        print(f"rag serve: note: {path} can be read by other users; `chmod 600 {path}`", file=sys.stderr)
    return parse_auth(lines[0])


def parse_auth(auth: str | None) -> tuple[str, str] | None:
    if not auth:
        return None
    user, sep, password = auth.partition(":")
    if not sep or not user or not password:
        raise ValueError("auth must be written user:password")
    return user, password


def serve(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 7860,
    auth: str | None = None,
    insecure: bool = False,
) -> int:
    """Run the UI until interrupted; the exit code. On a non-loopback address a
    password (RAG_AUTH, --auth-file, or `auth`) is required, unless `insecure` (then
    uploads, removals and rebuilds are turned off)."""
    try:
        credentials = parse_auth(auth) if auth else login_of(settings)
    except ValueError as err:
        print(f"rag serve: {err}", file=sys.stderr)
        return 2
    loopback = is_loopback(host)
    if not loopback and credentials is None and not insecure:
        print(
            f"rag serve: refusing to listen on {host} without a password: anyone who can reach it could read "
            "your articles and change the index. Set RAG_AUTH=user:password or use --auth-file FILE, "
            "bind 127.0.0.1, or pass --insecure to serve read-only without one.",
            file=sys.stderr,
        )
        return 2
    try:
        pipeline = Pipeline(settings)
    except (StoreError, OSError, sqlite3.Error) as err:
        known = explain(err, settings.index_dir)
        if known is None:
            raise
        print(f"rag serve: {known}", file=sys.stderr)
        return 2
    for problem in pipeline.store.problems:
        print(f"rag serve: note: {problem}", file=sys.stderr)
    demo = build_app(settings, pipeline, allow_changes=loopback or credentials is not None)
    shown = "localhost" if host in ("127.0.0.1", "::1") else host
    print(f"rag serve: chat UI on http://{shown}:{port}" + (" (login required)" if credentials else ""), flush=True)
    try:
        demo.launch(
            server_name=host,
            server_port=port,
            auth=credentials,
            auth_message="Log in to ask questions and manage the article index.",
            quiet=True,
        )
    except OSError as err:
        print(f"rag serve: cannot listen on {host}:{port}: {err}", file=sys.stderr)
        return 2
    return 0
