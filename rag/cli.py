"""The `rag` command: build, compact, ask, eval, serve, stats, export-replica."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import re
import sys
from pathlib import Path

from rag.settings import DEFAULT_K, Settings

EXIT_SKIPPED = 1  # --strict and some input was skipped; `rag ask` and a stdin line it could not read
EXIT_ERROR = 2  # the command could not run (missing or mismatched index, bad arguments)
EXIT_BUSY = 3  # another build holds the index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rag", description="Local Q&A over a folder of news articles.")
    commands = parser.add_subparsers(dest="command", required=True)

    build = commands.add_parser("build", help="build or update the index from the corpus folder")
    build.add_argument("--corpus", type=Path, help="folder of articles (default: corpus/)")
    _index_arg(build)
    build.add_argument("--full", action="store_true", help="rebuild from scratch instead of incrementally")
    build.add_argument("--strict", action="store_true", help="exit non-zero when any input was skipped")
    build.add_argument("--model", help="sentence-transformers model name or path (default: bundled all-MiniLM-L6-v2)")
    _backend_arg(build)
    build.add_argument(
        "--ray", dest="ray_address", nargs="?", const="auto", metavar="ADDRESS",
        help="chunk and embed on a Ray cluster: auto (default: the one this machine joined), host:6379, ray://host:10001, or local (docs/scale.md)",
    )
    build.add_argument("--quiet", action="store_true", help="no progress bars")
    build.set_defaults(run=cmd_build)

    compact = commands.add_parser("compact", help="merge the index's segments into one, dropping removed chunks")
    _index_arg(compact)
    compact.set_defaults(run=cmd_compact)

    replica = commands.add_parser(
        "export-replica", help="copy the index, complete, to a new folder (another machine, read-only media)"
    )
    _index_arg(replica)
    replica.add_argument("target", type=Path, help="the new folder (must not exist, or be empty)")
    replica.set_defaults(run=cmd_export_replica)

    stats = commands.add_parser("stats", help="show what the index holds")
    _index_arg(stats)
    stats.add_argument("--json", action="store_true", help="print one JSON object")
    stats.add_argument(
        "--check", action="store_true",
        help="read every byte: SQLite's check of the whole database and the checksums of all segment files"
        " (minutes for millions of chunks; without it, a large index is checked where builds read it)",
    )  # fmt: skip
    stats.set_defaults(run=cmd_stats)

    ask = commands.add_parser("ask", help="answer a question with cited sentences")
    _index_arg(ask)
    ask.add_argument("question", nargs="?", help="the question; without it, one question per line is read from stdin (UTF-8)")
    ask.add_argument("--k", type=int, default=DEFAULT_K, help=f"passages to retrieve and list, 1 to 100 (default {DEFAULT_K})")
    ask.add_argument("--json", action="store_true", help="print JSON (JSON Lines when reading stdin)")
    ask.add_argument("--llm-url", dest="llm_base_url", help="OpenAI-compatible server, e.g. http://127.0.0.1:8080/v1 (or RAG_LLM_BASE_URL)")
    ask.add_argument("--llm-model", dest="llm_model", help="model name to ask the server for (or RAG_LLM_MODEL)")
    ask.add_argument("--source", action="append", default=[], help="only articles from this outlet (repeatable)")
    ask.add_argument("--from", dest="date_from", default="", help="only articles published on or after (YYYY-MM-DD)")
    ask.add_argument("--to", dest="date_to", default="", help="only articles published on or before (YYYY-MM-DD)")
    ask.add_argument("--llm", action="store_true", help="answer with the LLM server set by RAG_LLM_BASE_URL, citations verified")
    ask.set_defaults(run=cmd_ask)

    evaluate = commands.add_parser("eval", help="score retrieval and answers on MultiHop-RAG or SQuAD data")
    evaluate.add_argument("dataset", type=Path, help="MultiHop-RAG queries .json or SQuAD v1.1 .json")
    evaluate.add_argument("--corpus", type=Path, help="MultiHop-RAG corpus.json (default: next to the queries)")
    evaluate.add_argument("--index", type=Path, help="index to build/use (default: index-eval/<dataset kind>)")
    evaluate.add_argument("--limit", type=int, help="only the first N questions")
    evaluate.add_argument("--k", type=int, default=DEFAULT_K)
    evaluate.add_argument("--json", action="store_true", help="print one JSON object")
    _backend_arg(evaluate)
    evaluate.add_argument("--llm", action="store_true", help="MultiHop-RAG: answer with the LLM server too, report answer accuracy")
    evaluate.add_argument("--llm-url", dest="llm_base_url", help="OpenAI-compatible server (or RAG_LLM_BASE_URL)")
    evaluate.add_argument("--llm-model", dest="llm_model", help="model name (or RAG_LLM_MODEL)")
    evaluate.set_defaults(run=cmd_eval)

    serve = commands.add_parser("serve", help="open the chat UI in the browser")
    _index_arg(serve)
    serve.add_argument("--corpus", type=Path, help="folder uploads go to and rebuilds read (default: corpus/)")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=7860)
    serve.add_argument("--auth-file", type=Path, help="file whose first line is user:password, required to log in (or RAG_AUTH_FILE)")
    serve.add_argument("--auth", help="user:password on the command line: visible to every user in the process list, prefer RAG_AUTH or --auth-file")
    serve.add_argument("--insecure", action="store_true", help="allow a non-loopback host without --auth")
    _watch_args(serve, flag=True)
    serve.set_defaults(run=cmd_serve)

    feed = commands.add_parser("feed", help="RSS/Atom feeds whose articles are saved into the corpus (docs/feeds.md)")
    feed_commands = feed.add_subparsers(dest="feed_command", required=True)
    for name, help_text in (
        ("add", "follow a feed"), ("list", "the feeds followed"), ("remove", "stop following a feed (its articles stay)"),
        ("pull", "save the feeds' new articles into the corpus, then update the index"),
    ):  # fmt: skip
        sub = feed_commands.add_parser(name, help=help_text)
        sub.add_argument("--corpus", type=Path, help="folder of articles (default: corpus/)")
        if name in ("add", "remove"):
            sub.add_argument("url")
        if name == "pull":
            sub.add_argument("url", nargs="?", help="only this feed")
            _index_arg(sub)
            sub.add_argument("--no-build", action="store_true", help="save the articles, do not update the index")
        sub.set_defaults(run=cmd_feed)

    watch = commands.add_parser("watch", help="keep the index current: index corpus changes within seconds, pull feeds")
    _index_arg(watch)
    watch.add_argument("--corpus", type=Path, help="folder of articles (default: corpus/)")
    _watch_args(watch, flag=False)
    watch.set_defaults(run=cmd_watch)

    args = parser.parse_args(argv)
    _configure_logging(Settings.from_env().log_level)
    from rag.embed import set_torch_threads
    from rag.errors import StoreError, explained

    # Process-wide, so here, once at start: every command (and `rag serve`) runs after it.
    start = Settings.from_env(backend=getattr(args, "backend", None))
    set_torch_threads(start.backend, start.embed_workers, start.device)

    try:
        with explained(getattr(args, "index", None) or Settings.from_env().index_dir):
            return args.run(args)
    except StoreError as err:
        # A damaged, foreign or unwritable index, a full disk: said plainly, no traceback.
        print(f"rag: {printable(str(err))}", file=sys.stderr)
        return EXIT_ERROR


def _configure_logging(level: str) -> None:
    """Warnings (and with RAG_LOG_LEVEL=INFO or DEBUG more) go to stderr. The level is
    set on the handler too: bm25s sets its own logger to DEBUG when imported, which
    the root logger's level alone does not hold back (it printed "DEBUG bm25s:
    Building index from IDs objects" on every build)."""
    handler = logging.StreamHandler()
    handler.setLevel(level.upper())
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler])


def _index_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", type=Path, help="index folder (default: index/)")


def _backend_arg(parser: argparse.ArgumentParser) -> None:
    from rag.embed import BACKENDS

    parser.add_argument(
        "--backend", choices=BACKENDS, help="how the model runs (default auto: by CPU, or the index's own; or RAG_BACKEND); a change needs --full"
    )


def _watch_args(parser: argparse.ArgumentParser, flag: bool) -> None:
    if flag:
        parser.add_argument("--watch", action="store_true", help="index corpus changes within seconds and pull feeds (see rag watch)")
    parser.add_argument(
        "--feeds-every", type=_duration, metavar="DURATION", help="pull the feeds this often, e.g. 30m, 2h, 90s (default: never)"
    )


def _duration(text: str) -> float:
    """'30m', '2h', '90s', '45' (seconds) -> seconds."""
    import re

    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text.lower())
    if not match or float(match[1]) <= 0:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 30m, 2h, 90s)")
    return float(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]


def settings_from(args: argparse.Namespace) -> Settings:
    names = ("index_dir", "corpus_dir", "model", "backend", "llm_base_url", "llm_model", "auth", "auth_file", "ray_address", "feeds_every")
    flags = {"index_dir": "index", "corpus_dir": "corpus"}
    return Settings.from_env(**{name: getattr(args, flags.get(name, name), None) for name in names})


def cmd_build(args: argparse.Namespace) -> int:
    from rag.build import BuildBusy, Builder

    settings = settings_from(args)
    bars = _ProgressBars(disable=args.quiet)
    try:
        report = Builder(settings, progress=bars)(full=args.full)
    except BuildBusy as err:
        print(f"rag: {printable(str(err))}", file=sys.stderr)
        return EXIT_BUSY
    except FileNotFoundError as err:
        print(f"rag: {printable(str(err))}", file=sys.stderr)
        return EXIT_ERROR
    finally:
        bars.close()
    for skipped in report.skipped:
        print(f"skipped {printable(str(skipped))}", file=sys.stderr)
    for note in report.notes:
        print(f"note: {printable(note)}", file=sys.stderr)
    print(printable(report.summary()))
    return EXIT_SKIPPED if args.strict and report.skipped else 0


class _ProgressBars:
    """A tqdm bar for each stage of a build (`rag.build.STAGES`)."""

    def __init__(self, disable: bool):
        self.disable = disable
        self.bars: dict = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.disable or total == 0:
            return
        from tqdm import tqdm

        from rag.build import STAGES

        if stage not in self.bars:
            label, unit = STAGES[stage]
            self.bars[stage] = tqdm(total=total, desc=label, unit=f" {unit}", file=sys.stderr, dynamic_ncols=True)
        bar = self.bars[stage]
        bar.total = total
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def cmd_ask(args: argparse.Namespace) -> int:
    from rag import validate

    settings = settings_from(args)
    # Every argument is checked before the model and index are loaded: a typo
    # fails at once with what is allowed, never with a traceback or a wrong answer.
    try:
        k = validate.k(args.k, settings.max_k)
        date_from, date_to = validate.date_range(args.date_from, args.date_to, ("--from", "--to"))
        question = None if args.question is None else validate.question(args.question)
    except validate.BadInput as err:
        print(f"rag ask: {printable(str(err))}", file=sys.stderr)
        return EXIT_ERROR
    from rag.pipeline import Pipeline
    from rag.retrieve import Filters

    pipeline = Pipeline(settings)
    for problem in pipeline.store.problems:
        print(f"rag: note: {printable(problem)}", file=sys.stderr)
    filters = Filters(tuple(args.source), date_from, date_to) or None

    def answer(text: str) -> None:
        result = pipeline.ask(text, k=k, filters=filters, llm=args.llm)
        print(json.dumps(result.to_dict(), ensure_ascii=False) if args.json else format_answer(result), flush=True)

    if question is not None:
        answer(question)
        return 0
    refused = 0
    for number, line in enumerate(sys.stdin.buffer, start=1):
        # One bad line is reported (by number) and skipped; the questions after it are answered.
        try:
            text = _stdin_question(line)
            if text is None:
                continue
            answer(text)
        except (validate.BadInput, UnicodeDecodeError) as err:
            refused += 1
            reason = str(err) if isinstance(err, validate.BadInput) else f"not UTF-8 text ({err.reason} at byte {err.start})"
            if args.json:
                print(json.dumps({"line": number, "error": f"skipped: {reason}"}), flush=True)
            print(f"rag ask: line {number} skipped: {printable(reason)}", file=sys.stderr, flush=True)
    return EXIT_SKIPPED if refused else 0


def _stdin_question(line: bytes) -> str | None:
    """The question on one line of stdin; None for a blank line. Raises BadInput or
    UnicodeDecodeError for a line that is not a question written in UTF-8 text."""
    from rag import validate

    text = line.decode("utf-8")  # strict: a wrong byte is reported, not guessed at
    if not text.strip():
        return None
    return validate.question(text)


TERMINAL_UNSAFE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""Control characters (a newline that forges an output line, escape sequences that
clear the screen or retitle the window) and bidirectional overrides (which reorder
what is shown)."""


def printable(text: object, keep: str = "") -> str:
    """`text` safe for a terminal: each unsafe character but those in `keep` shown
    as its Python escape (`\\n`, `\\x1b`, `\\u202e`). File names and articles'
    text reach the terminal through here."""
    return TERMINAL_UNSAFE.sub(
        lambda m: m.group() if m.group() in keep else m.group().encode("unicode_escape").decode("ascii"), str(text)
    )


def format_answer(answer) -> str:
    """The answer, then one line per citation: title — outlet, date."""
    lines = [f"note: {printable(answer.notice)}", ""] if answer.notice else []
    lines += [f"({printable(answer.searched)})", ""] if answer.searched else []
    lines += [printable(answer.text, keep="\n"), ""]
    if answer.abstained:
        lines.append("Closest passages:")
        for hit in answer.passages[:3]:
            snippet = printable(" ".join(hit.text.split())[:160])
            lines.append(f"- {_reference(hit.title, hit.source, hit.published)}: {snippet}…")
        return "\n".join(lines)
    previous = None
    for c in answer.citations:
        same = c.article_id == previous
        lines.append(f"[{c.n}] " + ("(same article)" if same else _reference(c.title, c.source, c.published)))
        previous = c.article_id
    for claim in answer.claims:
        if not claim.supported:
            lines.append(f"! not supported by the sources it cites: {printable(claim.text)}")
    return "\n".join(lines)


def _reference(title: str, source: str, published: str) -> str:
    title, source, published = printable(title), printable(source), printable(published)
    where = ", ".join(x for x in (source, published[:10]) if x)
    return f"{title} — {where}" if where else title


def cmd_eval(args: argparse.Namespace) -> int:
    from rag import evaluate
    from rag.build import Builder
    from rag.pipeline import Pipeline

    data = json.loads(args.dataset.read_text())
    kind = evaluate.kind_of(data)
    index = args.index or Path("index-eval") / kind
    corpus = index.parent / f"{index.name}-corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    if kind == "multihop":
        source = (args.corpus or args.dataset.parent / "corpus.json").resolve()
        link = corpus / "corpus.json"
        if not link.exists():
            link.symlink_to(source)
    else:
        paragraphs = json.dumps(evaluate.squad_corpus(data))
        target = corpus / "paragraphs.json"
        if not target.exists() or target.read_text() != paragraphs:
            target.write_text(paragraphs)
    settings = Settings.from_env(
        index_dir=index,
        corpus_dir=corpus,
        allow_outside_links=True,  # corpus.json is our own link to the dataset
        backend=args.backend,
        llm_base_url=args.llm_base_url,
        llm_model=args.llm_model,
    )
    builder = Builder(settings, progress=_ProgressBars(disable=False))
    print(printable(builder().summary()), file=sys.stderr)
    pipeline = Pipeline(settings, embedder=builder._embedder)
    if kind == "multihop":
        result = evaluate.evaluate_multihop(pipeline, data[: args.limit], k=args.k, llm=args.llm)
    else:
        result = evaluate.evaluate_squad(pipeline, evaluate.squad_questions(data)[: args.limit], k=args.k)
    if args.json:
        print(json.dumps({"dataset": str(args.dataset), "kind": kind, **result}))
    else:
        width = max(len(key) for key in result)
        print(f"{args.dataset} ({kind})")
        for key, value in result.items():
            print(f"  {key:<{width}}  {value}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from ui.app import serve

    if args.auth:
        print(
            "rag serve: note: a password given with --auth can be read by every user of this machine "
            "(process list); set RAG_AUTH or use --auth-file instead",
            file=sys.stderr,
        )
    return serve(settings_from(args), host=args.host, port=args.port, insecure=args.insecure, watch=args.watch)


def cmd_feed(args: argparse.Namespace) -> int:
    from rag import feeds

    settings = settings_from(args)
    feed_list = feeds.FeedList.of(settings)
    try:
        if args.feed_command == "add":
            added = feed_list.add(args.url)
            print(f"{'following' if added else 'already following'} {args.url.strip()}")
        elif args.feed_command == "remove":
            feed_list.remove(args.url)
            print(f"no longer following {args.url} (its articles stay in {settings.corpus_dir}/)")
        elif args.feed_command == "list":
            for url, state in feed_list.load().items():
                print(f"{url}  ({len(state.get('seen', []))} items seen; last pull: {state.get('last_pull') or 'never'}"
                      + (f", {state['last_result']}" if state.get("last_result") else "") + ")")  # fmt: skip
        else:
            report = feeds.pull(settings, only=args.url)
            for feed in report.feeds:
                for problem in feed.problems:
                    print(f"rag feed: {feed.url}: {problem}", file=sys.stderr)
                print(feed.summary())
            if report.saved and not args.no_build:
                from rag.build import BuildBusy, Builder

                try:
                    print(Builder(settings)().summary())
                except BuildBusy as err:
                    print(f"rag feed: articles saved, index not updated: {err}", file=sys.stderr)
                    return EXIT_BUSY
    except feeds.FeedError as err:
        print(f"rag feed: {err}", file=sys.stderr)
        return EXIT_ERROR
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    from rag.watch import Watcher

    watcher = Watcher(settings_from(args))
    print(f"watching {watcher.settings.corpus_dir}/ (Ctrl+C stops)", file=sys.stderr)
    with contextlib.suppress(KeyboardInterrupt):
        watcher.run(on_build=lambda event: print(event.summary(), flush=True))
    return 0


def cmd_compact(args: argparse.Namespace) -> int:
    from rag.build import BuildBusy, compact

    settings = settings_from(args)
    try:
        before, dropped = compact(settings.index_dir)
    except BuildBusy as err:
        print(f"rag: {err}", file=sys.stderr)
        return EXIT_BUSY
    print(f"merged {before} segment(s) into {min(before, 1)}; dropped {dropped} removed chunk(s)")
    return 0


def cmd_export_replica(args: argparse.Namespace) -> int:
    from rag.replica import export_replica

    print(export_replica(settings_from(args).index_dir, args.target).summary())
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from rag.errors import damaged
    from rag.store import IndexStore

    settings = settings_from(args)
    store = IndexStore(settings.index_dir)
    try:
        # The database's own check first: counting rows of a damaged one may fail or mislead.
        damage = store.quick_check(whole=args.check)
        if damage is not None:
            raise damaged(settings.index_dir, damage)
        problems = store.segment_register.derived_problems(quick=not args.check)
        stats = store.stats()
    finally:
        store.close()
    if args.json:
        print(json.dumps({**stats, "problems": problems}))
        return 0
    for problem in problems:
        print(f"rag: {printable(problem)}", file=sys.stderr)
    print(f"index:      {settings.index_dir}/")
    print(f"articles:   {stats['articles']}")
    print(f"chunks:     {stats['chunks']}")
    print(f"sentences:  {stats['sentences']}")
    print(f"segments:   {stats['segments']} ({stats['tombstones']} removed chunks not yet merged away; `rag compact` drops them)")
    print(f"model:      {stats['model']} ({stats['dimension']}-d)")
    print(f"chunking:   {stats['chunking']}")
    print(f"size:       {stats['index_bytes'] / 1e6:.1f} MB on disk")
    print(f"last build: {stats['last_build']} ({printable(str(stats['last_report']))})")
    print(f"health:     {'ok' if not problems else f'{len(problems)} problem(s), see above'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
