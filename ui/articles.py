"""What the Articles tab does: list and filter the indexed articles, add files to
the corpus, remove one, rebuild the index."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr
from gradio.data_classes import ListFiles

from rag.pipeline import Pipeline
from rag.settings import Settings
from ui import files, render
from ui.control import IndexControl, ProgressCallback, matching

TABLE_HEADERS = ["Title", "Outlet", "Date", "Chunks", "File"]
MAX_SKIPPED_SHOWN = 20

IndexUpdate = tuple[list[list[Any]], str, dict, dict]
"""(table rows, stats, removal choices, outlet choices): what changes when the index does."""


def report_md(report: dict) -> str:
    """A rebuild's report for the status line."""
    lines = [f"**Rebuilt.** {render.esc_md(report['summary'])}"]
    for s in report["skipped"][:MAX_SKIPPED_SHOWN]:
        lines.append(f"- skipped {render.esc_md(s['file'])}: {render.esc_md(s['reason'])}")
    return "\n".join(lines)


def table_rows(articles: list[dict]) -> list[list[Any]]:
    """One row per article, in TABLE_HEADERS' order."""
    return [[a["title"] or "", a["source"] or "", render.day(a["published"]), a["chunks"], a["path"]] for a in articles]


def removal_choices(articles: list[dict]) -> list[tuple[str, str]]:
    """(label, article id) for the removal picker; the file tells same-titled articles apart."""
    return [(f"{a['title'] or a['path']} — {a['path']}", a["id"]) for a in articles]


def keep_upload_names(box: gr.File) -> gr.File:
    """Makes the values of `box` (type="filepath") `files.Uploaded` paths, which keep
    the names their files were uploaded as (FileData.orig_name): gr.File's own value,
    the path of Gradio's copy, carries a rewritten name. The instance's preprocess is
    wrapped, rather than gr.File subclassed, because Gradio writes a .pyi stub of the
    whole module next to any module that defines a component class."""
    plain = box.preprocess

    def preprocess(payload):
        paths = plain(payload)
        if paths is None:
            return None
        sent = list(payload.root) if isinstance(payload, ListFiles) else [payload]
        if isinstance(paths, str):
            return files.Uploaded(paths, sent[0].orig_name)
        return [files.Uploaded(path, data.orig_name) for path, data in zip(paths, sent, strict=True)]

    box.preprocess = preprocess
    return box


def _hidden_checkbox() -> dict:
    return gr.update(visible=False, value=False)


class ArticleHandlers:
    """The Articles tab's events. Changes go through `IndexControl`, which refuses
    them when the server runs without a password on a public address."""

    def __init__(self, settings: Settings, pipeline: Pipeline, control: IndexControl):
        self.settings = settings
        self.pipeline = pipeline
        self.control = control

    def table(self, query: str = "") -> list[list[Any]]:
        """The table rows of the articles matching `query` (see `control.matching`)."""
        return table_rows(matching(self.control.articles(), query))

    def stats(self) -> str:
        """The index statistics above the table, as HTML."""
        s = self.control.stats()
        return render.stats_html(s, s["index_bytes"], s["last_build"], s["model"], s["outlets"])

    def refresh(self, query: str) -> IndexUpdate:
        """Load a newer index if there is one; the table, stats and pickers of the one loaded."""
        self.pipeline.refresh(force=True)
        articles = self.control.articles()
        return (
            table_rows(matching(articles, query)),
            self.stats(),
            gr.update(choices=removal_choices(articles), value=None),
            gr.update(choices=self.control.outlets()),
        )

    def upload(self, paths: list[files.Uploaded] | list[str] | None) -> tuple[Any, None]:
        """Save uploaded files into the corpus folder; (status, cleared upload box)."""
        self.control.check_allowed()
        if not paths:
            return gr.skip(), None
        lines = []
        for path in paths:
            original = path.original_name if isinstance(path, files.Uploaded) else Path(path).name
            try:
                saved = files.save_upload(path, original, self.settings.corpus_dir, self.settings.max_file_bytes)
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

    def rebuild(self, query: str, progress: ProgressCallback | None = gr.Progress()) -> tuple[Any, ...]:
        """Rebuild the index and load it; (status, *refresh(query))."""
        report = self.control.rebuild(progress)
        return (report_md(report), *self.refresh(query))

    def describe_removal(self, article_id: str | None) -> tuple[str, dict]:
        """What removing the picked article deletes; (message, 'whole file' checkbox)."""
        if not article_id:
            return "", _hidden_checkbox()
        row = self.control.article(article_id)
        if not row:
            return "That article is no longer in the index.", _hidden_checkbox()
        path = row["path"]
        if files.is_list_file(path):
            n = sum(1 for a in self.control.articles() if a["path"] == path)
            msg = (
                f"⚠ **{render.esc_md(path)}** is a list file holding {n} article{'s' * (n != 1)}. "
                "Removing this article deletes the whole file, and all of them leave the index."
            )
            return msg, gr.update(visible=True, value=False)
        return f"Removing deletes **{render.esc_md(path)}** from the corpus folder and rebuilds the index.", _hidden_checkbox()

    def remove(
        self, article_id: str | None, confirm_whole_file: bool, query: str, progress: ProgressCallback | None = gr.Progress()
    ) -> tuple[Any, ...]:
        """Delete the picked article's file and rebuild; (status, *refresh(query), checkbox)."""
        self.control.check_allowed()
        if not article_id:
            raise gr.Error("Pick an article to remove first.")
        row = self.control.article(article_id)
        if not row:
            raise gr.Error("That article is no longer in the index.")
        path = row["path"]
        if files.is_list_file(path) and not confirm_whole_file:
            raise gr.Error(f"{path} holds a list of articles: tick 'delete the whole file' to remove it.")
        try:
            files.remove_file(self.settings.corpus_dir, path)
        except files.UploadRefused as err:
            raise gr.Error(str(err)) from None
        report = self.control.rebuild(progress)
        status = f"Deleted **{render.esc_md(path)}**.\n\n" + report_md(report)
        return (status, *self.refresh(query), _hidden_checkbox())
