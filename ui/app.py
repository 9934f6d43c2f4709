"""The chat UI (Gradio 6): ask, read the cited sentences in place, manage the corpus.

`build_app(settings, pipeline=None)` returns the `gr.Blocks`; `serve(settings, ...)`
is what `rag serve` runs. This module lays the page out and wires its events to
the handlers, which can be used without a browser: `ChatHandlers` (ui/chat.py),
`ArticleHandlers` (ui/articles.py) and `ApiHandlers` (ui/api.py), all reading and
changing the index through one `IndexControl` (ui/control.py). Every answer comes
from `Pipeline.ask`, the same code path as `rag ask`.

API endpoints (gradio_client; see docs/ui.md): /ask, /stats, /articles, /rebuild.
On the same port: the OpenAI-compatible /v1 API (ui/openai_api.py, docs/api.md) and
/export, the chat as Markdown (ui/export.py).
"""

from __future__ import annotations

import ipaddress
import sys
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr
from starlette.middleware import Middleware

from rag.errors import StoreError, explained
from rag.ingest import SUPPORTED
from rag.pipeline import Pipeline
from rag.settings import Settings
from rag.watch import Watcher
from ui import export, guard, inputs, openai_api
from ui.api import ApiHandlers
from ui.articles import (
    TABLE_HEADERS,
    ArticleHandlers,
    keep_upload_names,
    removal_choices,
    table_rows,
)
from ui.chat import MAX_K, ChatHandlers
from ui.control import IndexControl
from ui.login import login_of, parse_auth
from ui.style import CSS, HEAD, THEME

TITLE = "News Q&A"
EXAMPLES = ["Why did Russia-Turkey ties sour?", "What did Putin tell Erdogan on the phone?"]
FOLLOW_UP_EXAMPLE = "And how were relations mended?"
ICON = (
    '<svg viewBox="0 0 24 24" fill="none" stroke="currentColor" stroke-width="2" stroke-linecap="round" '
    'stroke-linejoin="round" aria-hidden="true"><path d="M4 22h16a2 2 0 0 0 2-2V4a2 2 0 0 0-2-2H8a2 2 0 0 0-2 2v16'
    'a2 2 0 0 1-2 2Zm0 0a2 2 0 0 1-2-2v-9c0-1.1.9-2 2-2h2"/><path d="M18 14h-8M15 18h-5M10 6h8v4h-8z"/></svg>'
)
ASK_CONCURRENCY = 8
"""Questions answered at once (UI and /ask together). Answers hold no lock, so
several keep both cores busy while others wait on the network; bench/load.py."""


class NewsApp(gr.Blocks):
    """gr.Blocks whose launch() defaults to this app's theme, CSS, head script and
    upload size limit (Gradio 6 takes those in launch(), not in Blocks()), and adds
    the login throttle and, when `allow_changes` is off, the upload gate."""

    def __init__(
        self, settings: Settings, allow_changes: bool = True, pipeline: Pipeline | None = None,
        conversations: export.Conversations | None = None, **blocks_kwargs: Any,
    ):
        super().__init__(**blocks_kwargs)
        self.settings = settings
        self.allow_changes = allow_changes
        self.pipeline = pipeline
        self.conversations = conversations or export.Conversations()

    def launch(self, *args, **kwargs):  # type: ignore[override]
        s = self.settings
        # Refused before Gradio sees them: repeated failed logins, uploads when changes are off.
        app_kwargs = dict(kwargs.get("app_kwargs") or {})
        app_kwargs["middleware"] = [
            *app_kwargs.get("middleware", []),
            Middleware(
                guard.LoginThrottle, free=s.login_free_attempts, delay=s.login_delay, trusted_proxies=s.trusted_proxies
            ),
            Middleware(guard.UploadGate, allowed=self.allow_changes),
        ]
        # The /v1 API and /export, on Gradio's own FastAPI app: its key is RAG_API_KEY or the login's password.
        throttle = guard.LoginThrottle(
            None, free=s.login_free_attempts, delay=s.login_delay, trusted_proxies=s.trusted_proxies
        )
        access = openai_api.Access(openai_api.keys_of(s, kwargs.get("auth")), throttle)
        app_kwargs["routes"] = [
            *app_kwargs.get("routes", []),
            *openai_api.router(openai_api.ChatApi(s, self.pipeline, access, ASK_CONCURRENCY)).routes,
            *export.router(self.conversations, access).routes,
        ]
        kwargs["app_kwargs"] = app_kwargs
        kwargs.setdefault("theme", THEME)
        kwargs.setdefault("css", CSS)
        kwargs.setdefault("head", HEAD)
        kwargs.setdefault("max_file_size", s.max_file_bytes)
        kwargs.setdefault("footer_links", ["api", "gradio"])
        # uvicorn, which Gradio starts, takes the client's address from X-Forwarded-For
        # when the connection comes from FORWARDED_ALLOW_IPS (127.0.0.1 unless set): any
        # local program, or a local proxy passing the header on, could pick its address
        # and escape the login throttle. It is read when the server starts: trust exactly
        # the configured proxies, none by default.
        with guard.environ(FORWARDED_ALLOW_IPS=guard.forwarded_allow_ips(s.trusted_proxies)):
            return super().launch(*args, **kwargs)

    def validate_inputs(self, block_fn, inputs_given):  # type: ignore[override]
        inputs.enough_values(block_fn, inputs_given)  # a message the API client sees, not {"error": null}
        super().validate_inputs(block_fn, inputs_given)


def build_app(
    settings: Settings, pipeline: Pipeline | None = None, allow_changes: bool = True, watcher: Watcher | None = None
) -> gr.Blocks:
    """The whole UI: its layout, and its events wired to the handlers of each tab and
    of the API. `allow_changes=False` turns uploads, removals and rebuilds off
    (serve() does that on a public address without a password)."""
    pipeline = pipeline or Pipeline(settings)
    control = IndexControl(settings, pipeline, allow_changes)
    chat = ChatHandlers(settings, pipeline, control)
    articles = ArticleHandlers(settings, pipeline, control)
    api = ApiHandlers(settings, pipeline, control)
    if watcher is not None:  # its builds reload this pipeline and wait for the UI's rebuilds
        watcher.pipeline, watcher.lock = pipeline, control.lock

    # ------------------------------------------------------------------ layout

    indexed = control.articles()
    # Gradio's copies of uploads are deleted after upload_cache_s (checked every 10 minutes at most).
    cache = (min(600, settings.upload_cache_s), settings.upload_cache_s)
    conversations = export.Conversations()
    exports = tempfile.TemporaryDirectory(prefix="rag-news-exports-")  # removed with the app (or at exit)
    exporter = export.ExportHandlers(conversations, Path(exports.name))
    with NewsApp(settings, allow_changes, pipeline, conversations, title=TITLE, fill_width=False, delete_cache=cache) as demo:
        demo.exports = exports
        gr.HTML(
            f'<div id="app-header"><h1>{ICON}{TITLE}</h1><p>Ask about the articles in your corpus. '
            "Every answer is made of sentences quoted from them, each cited and highlighted in its source.</p></div>"
        )
        if watcher is not None:  # `rag serve --watch`: when the index last changed and what came in
            watch_line = gr.Markdown(watcher.status(), elem_id="watch-line")
            gr.Timer(2).tick(watcher.status, None, watch_line, api_visibility="private", show_progress="hidden")
        turns = gr.State([])
        conversation = gr.State(export.Conversations.new_id)  # a new id for each page load
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
                            export_btn = gr.DownloadButton(
                                "Export", variant="secondary", scale=0, min_width=90, elem_id="export", interactive=False
                            )
                        with gr.Row(elem_id="examples-row"):
                            gr.Examples([*EXAMPLES, FOLLOW_UP_EXAMPLE], inputs=[question], label="Try")
                        with gr.Accordion("Search settings", open=False, elem_id="settings"):
                            with gr.Row():
                                outlets = gr.Dropdown(
                                    choices=control.outlets(),
                                    multiselect=True,
                                    label="Outlets",
                                    info="only these outlets (empty: all)",
                                    scale=3,
                                )
                                k = gr.Slider(1, MAX_K, value=10, step=1, label="Passages (k)", scale=2)
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
                            export_link = gr.Markdown("", elem_id="export-link")
                    with gr.Column(scale=5, min_width=320, elem_id="sources-col"):
                        sources = gr.HTML(chat.empty_sources(), elem_id="sources", js_on_load=None)

            with gr.Tab("Articles", id="articles-tab"):
                stats = gr.HTML(articles.stats(), elem_id="stats", js_on_load=None)
                with gr.Row(equal_height=False):
                    with gr.Column(scale=3):
                        search = gr.Textbox(
                            placeholder="Filter by title, outlet, date, file, author or category", show_label=False, container=False, elem_id="article-search"
                        )
                        table = gr.Dataframe(
                            value=table_rows(indexed),
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
                            keep_upload_names(upload_files)  # the names as sent, not as Gradio stored them
                            rebuild_btn = gr.Button(
                                "Rebuild index", variant="primary", elem_id="rebuild", interactive=allow_changes
                            )
                        status = gr.Markdown(
                            "" if allow_changes else "Index changes are disabled on this server (no password set).",
                            elem_id="status-line",
                        )
                        with gr.Accordion("Remove an article", open=False, elem_id="remove-box"):
                            remove_pick = gr.Dropdown(
                                choices=removal_choices(indexed), label="Article", value=None, elem_id="remove-pick"
                            )
                            remove_info = gr.Markdown("")
                            remove_confirm = gr.Checkbox(label="Delete the whole file", visible=False, value=False)
                            remove_btn = gr.Button("Delete file and rebuild", variant="stop", interactive=allow_changes)

        # -------------------------------------------------------------- events
        chat_io = dict(
            fn=chat.ask,
            inputs=[question, chatbot, turns, outlets, date_from, date_to, k, use_llm],
            outputs=[chatbot, turns, sources, question],
            api_visibility="private",
            concurrency_limit=ASK_CONCURRENCY,
            concurrency_id="ask",
        )
        # After each answer or clear, the Export button gets the conversation as a Markdown file.
        export_io = dict(fn=exporter.update, inputs=[turns, conversation], outputs=[export_btn, export_link], api_visibility="private", show_progress="hidden")
        question.submit(**chat_io, api_name="ui_submit").then(**export_io)
        ask_btn.click(**chat_io, api_name="ui_ask").then(**export_io)
        # One bound method for both: the two events share one queue (its id is the fn's).
        clear_io = dict(fn=chat.clear, inputs=None, outputs=[chatbot, turns, sources, question], api_visibility="private")
        clear_btn.click(**clear_io, api_name="ui_clear").then(**export_io)
        chatbot.clear(**clear_io, api_name="ui_clear_chat").then(**export_io)

        search.change(articles.table, [search], [table], api_name="ui_search", api_visibility="private", show_progress="hidden")
        index_outputs = [table, stats, remove_pick, outlets]
        upload_files.upload(articles.upload, [upload_files], [status, upload_files], api_name="ui_upload", api_visibility="private", concurrency_id="index")
        rebuild_btn.click(
            articles.rebuild, [search], [status, *index_outputs], api_name="ui_rebuild", api_visibility="private", concurrency_id="index",
            show_progress_on=[status],
        )
        remove_pick.change(
            articles.describe_removal, [remove_pick], [remove_info, remove_confirm], api_name="ui_describe", api_visibility="private"
        )
        remove_btn.click(
            articles.remove,
            [remove_pick, remove_confirm, search],
            [status, *index_outputs, remove_confirm],
            api_name="ui_remove",
            api_visibility="private",
            concurrency_id="index",
        )
        demo.load(articles.refresh, [search], index_outputs, api_name="ui_load", api_visibility="private", show_progress="hidden")

        gr.api(api.ask, api_name="ask", concurrency_limit=ASK_CONCURRENCY, concurrency_id="ask")
        gr.api(api.stats, api_name="stats")
        gr.api(api.articles, api_name="articles")
        gr.api(api.rebuild, api_name="rebuild", concurrency_id="index")
    return demo


# ---------------------------------------------------------------------- serve


def is_loopback(host: str) -> bool:
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def serve(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 7860,
    auth: str | None = None,
    insecure: bool = False,
    watch: bool = False,
) -> int:
    """Run the UI until interrupted; the exit code. On a non-loopback address a
    password (RAG_AUTH, --auth-file, or `auth`) is required, unless `insecure` (then
    uploads, removals and rebuilds are turned off)."""
    try:
        credentials = parse_auth(auth, "--auth") if auth else login_of(settings)
        guard.trusted_networks(settings.trusted_proxies)
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
    watcher = Watcher(settings) if watch else None
    try:
        with explained(settings.index_dir):
            if watcher is not None:  # the corpus as it is now, indexed before the first question
                watcher.build(watcher.snapshot())
            pipeline = Pipeline(settings, embedder=watcher.embedder if watcher else None)
    except StoreError as err:
        print(f"rag serve: {err}", file=sys.stderr)
        return 2
    for problem in pipeline.store.problems:
        print(f"rag serve: note: {problem}", file=sys.stderr)
    demo = build_app(settings, pipeline, allow_changes=loopback or credentials is not None, watcher=watcher)
    shown = "localhost" if host in ("127.0.0.1", "::1") else host
    keyed = bool(openai_api.keys_of(settings, credentials))
    if not loopback and not keyed:  # --insecure: the API, like the UI, answers anyone (it changes nothing)
        print("rag serve: note: the API on /v1 needs no key; set RAG_API_KEY to require one", file=sys.stderr)
    print(f"rag serve: chat UI on http://{shown}:{port}" + (" (login required)" if credentials else ""), flush=True)
    print(f"rag serve: OpenAI-compatible API on http://{shown}:{port}/v1" + (" (key required)" if keyed else ""), flush=True)
    if watcher is not None:
        watcher.start()
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
    finally:
        if watcher is not None:
            watcher.stop()
    return 0
