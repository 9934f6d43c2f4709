"""What the Chat tab does: answer a question into the chat and the sources panel."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import gradio as gr

from rag import validate
from rag.answer import Turn
from rag.pipeline import Pipeline
from rag.settings import Settings
from ui import export, inputs, render
from ui.control import IndexControl

SENTENCE_DELAY = 0.06
"""Seconds between the sentences of an answer as it is shown."""
MAX_K = 30
"""The largest k the chat's slider offers."""

ChatUpdate = tuple[list[dict], list[list], Any, Any]
"""(chat messages, turns, sources panel, question box), in the order the chat's event outputs them."""


class ChatHandlers:
    """The Chat tab's events. Every answer comes from `Pipeline.ask` (or `stream`
    with the LLM switch on), as `rag ask`'s do."""

    def __init__(
        self, settings: Settings, pipeline: Pipeline, control: IndexControl, sentence_delay: float = SENTENCE_DELAY
    ):
        self.settings = settings
        self.pipeline = pipeline
        self.control = control
        self.sentence_delay = sentence_delay

    def ask(
        self,
        question: str,
        chat: list[dict] | None,
        turns: list[list[str]] | None,
        sources: list[str] | None,
        date_from: str,
        date_to: str,
        k: float,
        use_llm: bool = False,
    ) -> Iterator[ChatUpdate]:
        """Answer `question` after the earlier `turns`, showing it sentence by sentence."""
        chat = list(chat or [])
        turns = list(turns or [])
        if not any(c.isalnum() for c in question or ""):
            yield chat, turns, gr.skip(), gr.skip()  # nothing asked: keep what was typed
            return
        question = inputs.checked(validate.question, question)
        k = inputs.checked(validate.k, k, min(self.settings.max_k, MAX_K))
        filters = inputs.filters(sources, date_from, date_to, ("From date", "To date"))
        self.pipeline.refresh()  # picks up a build made from the command line meanwhile
        history = [Turn(turn[0], turn[1]) for turn in turns]
        chat.append({"role": "user", "content": render.user_html(question)})
        chat.append({"role": "assistant", "content": '<div class="answer"><span class="typing">▍</span></div>'})
        yield chat, turns, gr.skip(), ""
        if use_llm:
            text = ""
            for piece in self.pipeline.stream(question, history=history, k=k, filters=filters):
                if isinstance(piece, str):
                    text += piece
                    chat[-1] = {"role": "assistant", "content": render.streaming_html(text)}
                    yield chat, turns, gr.skip(), ""
                else:
                    answer = piece
        else:
            answer = self.pipeline.ask(question, history=history, k=k, filters=filters)
        panel = render.sources_html(answer, self.control.article_text)
        turns.append([question, answer.text, export.exchange(answer)])  # the third for the Export button
        steps = range(1, len(answer.citations) + 1) if not answer.abstained and answer.mode != "llm" else [None]
        for upto in steps:
            chat[-1] = {"role": "assistant", "content": render.answer_html(answer, upto)}
            yield chat, turns, panel, ""
            if upto is not None and upto < len(answer.citations):
                time.sleep(self.sentence_delay)
        chat[-1] = {"role": "assistant", "content": render.answer_html(answer)}
        yield chat, turns, panel, ""

    def clear(self) -> ChatUpdate:
        """A new conversation: no messages, no turns, an empty sources panel and question."""
        return [], [], self.empty_sources(), ""

    def empty_sources(self) -> str:
        """The sources panel before any question."""
        return render.sources_html(None, self.control.article_text)
