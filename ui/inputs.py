"""What the chat and the API are asked with, checked by `rag.validate`; a refusal
becomes a gr.Error, which Gradio shows to the user (or gives the API client)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import gradio as gr

from rag import validate
from rag.retrieve import Filters

T = TypeVar("T")


def checked(check: Callable[..., T], *args: object) -> T:
    """check(*args), its BadInput shown to the user as a gr.Error."""
    try:
        return check(*args)
    except validate.BadInput as err:
        raise gr.Error(str(err)) from None


def filters(
    sources: list[str] | None, date_from: str, date_to: str, names: tuple[str, str] = ("date_from", "date_to")
) -> Filters | None:
    """The outlets and date range as retrieval filters; None when nothing limits the
    search. `names` are the date fields as the user knows them, for the message."""
    date_from, date_to = checked(validate.date_range, date_from, date_to, names)
    return Filters(tuple(sources or ()), date_from, date_to) or None
