"""Checks on what a user asks with (question, k, dates), shared by the CLI, the UI and
the API, so that each refuses bad input with the same plain message instead of
answering something else or failing with a traceback."""

from __future__ import annotations

import re
from datetime import date

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _shown(value: object) -> str:
    """A value as a message quotes it: text in double quotes (no backslashes), cut short."""
    return f'"{value[:80]}"' if isinstance(value, str) else repr(value)


class BadInput(ValueError):
    """The request cannot be answered as given; the message says what is allowed."""


def question(text: object) -> str:
    """The question with its whitespace tidied; refused when it holds no word (blank,
    whitespace, punctuation only): retrieval would return arbitrary sentences."""
    if not isinstance(text, str):
        raise BadInput(f"the question must be text (got {_shown(text)})")
    if any(0xD800 <= ord(c) <= 0xDFFF for c in text):  # bytes that were not UTF-8 (argv, surrogateescape)
        raise BadInput("the question is not valid UTF-8 text")
    if any((ord(c) < 32 and c not in "\t\r\n") or c == "\x7f" for c in text):
        raise BadInput("binary data, not a question (control characters)")
    tidy = " ".join(text.split())
    if not any(c.isalnum() for c in tidy):
        raise BadInput("the question is empty: write a question with at least one word")
    return tidy


def history(turns: object) -> list[tuple[str, str]]:
    """Earlier turns as [[question, answer], ...]; None or [] for none."""
    if turns is None:
        return []
    allowed = "history must be a list of [question, answer] pairs of text"
    if not isinstance(turns, (list, tuple)):
        raise BadInput(allowed)
    pairs = []
    for turn in turns:
        if not isinstance(turn, (list, tuple)) or len(turn) != 2 or not all(isinstance(x, str) for x in turn):
            raise BadInput(f"{allowed} (got {_shown(str(turn))})")
        pairs.append((turn[0], turn[1]))
    return pairs


def sources(value: object) -> tuple[str, ...]:
    """Outlet names, as a list of text; None or [] for every outlet. One text is
    refused rather than taken for its characters (or guessed to be one outlet)."""
    allowed = 'sources must be a list of outlet names, such as ["Reuters"], or null for all outlets'
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, (list, tuple)):
        raise BadInput(f"{allowed} (got {_shown(value)})")
    for name in value:
        if not isinstance(name, str):
            raise BadInput(f"{allowed} (got {_shown(name)} in the list)")
    return tuple(value)


def flag(value: object, name: str) -> bool:
    """A yes/no option: true or false (None: false). Text such as "no" is refused,
    not taken for true."""
    if value is None:
        return False
    if not isinstance(value, bool):
        raise BadInput(f"{name} must be true or false (got {_shown(value)})")
    return value


def k(value: object, maximum: int) -> int:
    """A passage count from 1 to `maximum`."""
    allowed = f"k must be a whole number from 1 to {maximum}"
    if isinstance(value, bool):
        raise BadInput(f"{allowed} (got {_shown(value)})")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        value = int(value)
    if not isinstance(value, int) or not 1 <= value <= maximum:
        raise BadInput(f"{allowed} (got {_shown(value)})")
    return value


def day(value: object, name: str) -> str:
    """'' (no limit) or a real calendar date written YYYY-MM-DD."""
    text = "" if value is None else str(value).strip()
    if not text:
        return ""
    if _DATE.fullmatch(text):
        try:
            date.fromisoformat(text)
            return text
        except ValueError:
            pass
    raise BadInput(f"{name} must be a date written YYYY-MM-DD, such as 2017-02-09 (got {_shown(text)})")


def date_range(date_from: object, date_to: object, names: tuple[str, str] = ("from", "to")) -> tuple[str, str]:
    """Both dates checked, and the first not after the second."""
    first, last = day(date_from, names[0]), day(date_to, names[1])
    if first and last and first > last:
        raise BadInput(f"{names[0]} ({first}) is after {names[1]} ({last}): no article can match")
    return first, last
