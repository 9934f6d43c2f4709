"""What the chat and the API are asked with, checked by `rag.validate`; a refusal
becomes a gr.Error, which Gradio shows to the user (or gives the API client)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar

import gradio as gr

from rag import validate
from rag.retrieve import Filters

T = TypeVar("T")


def checked(check: Callable[..., T], *args: object) -> T:
    """check(*args), its BadInput shown to the user as a gr.Error."""
    try:
        return check(*args)
    except validate.BadInput as err:
        raise gr.Error(str(err), print_exception=False) from None  # the client's mistake: no traceback


def filters(
    sources: list[str] | None, date_from: str, date_to: str, names: tuple[str, str] = ("date_from", "date_to")
) -> Filters | None:
    """The outlets and date range as retrieval filters; None when nothing limits the
    search. `names` are the date fields as the user knows them, for the message."""
    outlets = checked(validate.sources, sources)
    date_from, date_to = checked(validate.date_range, date_from, date_to, names)
    return Filters(outlets, date_from, date_to) or None


def enough_values(block_fn: Any, values: list[Any]) -> None:
    """Refuses (gr.Error) a call with fewer values than the endpoint takes, naming
    them in order. Gradio's own refusal is a plain ValueError, which reaches an API
    client as `{"error": null}`."""
    wanted = len(block_fn.inputs)
    if len(values) >= wanted:
        return
    try:
        names = list(inspect.signature(block_fn.fn).parameters)[:wanted]
    except (TypeError, ValueError):  # no Python signature (a JS-only event)
        names = []
    order = f", in this order: {', '.join(names)}" if len(names) == wanted else ""
    endpoint = f"/{block_fn.api_name}" if block_fn.api_name else "this event"
    raise gr.Error(
        f"{endpoint} takes {wanted} values{order} (got {len(values)}); send all of them "
        "(gradio_client fills in the defaults)",
        print_exception=False,
    )
