"""The `user:password` that `rag serve` requires: from RAG_AUTH or an auth file.

The password is used exactly as written, apart from the file's line ending and a
UTF-8 byte-order mark (which Windows editors put at the start of a file): spaces
at its ends are kept, and the server warns about them, because a password that
silently lost or kept an invisible character is one nobody can log in with. The
user name is stripped, as Gradio's login form strips what is typed.
"""

from __future__ import annotations

import sys
import unicodedata
from pathlib import Path

from rag.settings import Settings


def login_of(settings: Settings) -> tuple[str, str] | None:
    """(user, password) from `settings.auth_file` (its first line that is not blank),
    else `settings.auth`; None when neither is set. Raises ValueError with a message
    when unusable; prints a warning for what is suspicious."""
    if settings.auth_file is None:
        return parse_auth(settings.auth, "RAG_AUTH")
    path = Path(settings.auth_file)
    try:
        # utf-8-sig: a byte-order mark is dropped, not taken for part of the user name.
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read the auth file {path}: {err}") from None
    # Only "\n" (and a "\r" before it) ends a line: splitlines() would also cut at
    # form feeds or U+2028, which belong to the password if they are in it.
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    first = next((line for line in lines if line.strip()), None)
    if first is None:
        raise ValueError(f"the auth file {path} is empty; write user:password on its first line")
    if path.stat().st_mode & 0o077:
        print(f"rag serve: note: {path} can be read by other users; `chmod 600 {path}`", file=sys.stderr)
    return parse_auth(first, f"the auth file {path}")


def parse_auth(auth: str | None, origin: str = "auth") -> tuple[str, str] | None:
    """`user:password` split at the first colon; None when `auth` is empty. Warns
    (stderr) about a password with spaces or invisible characters at its ends."""
    if not auth:
        return None
    user, sep, password = auth.partition(":")
    user = user.strip()
    if not sep or not user or not password:
        raise ValueError("auth must be written user:password")
    for problem in suspicious(password):
        print(f"rag serve: warning: the password in {origin} {problem}; it is used exactly so", file=sys.stderr)
    hidden = _hidden(user)
    if hidden:
        print(f"rag serve: warning: the user name in {origin} holds invisible characters ({hidden})", file=sys.stderr)
    return user, password


def _invisible(c: str) -> bool:
    return c.isspace() or unicodedata.category(c) in ("Cc", "Cf")


def suspicious(password: str) -> list[str]:
    """What about `password` is probably a mistake (an editor's or a copy's), in words."""
    problems = []
    for end, chars in (("starts", password[: len(password) - len(password.lstrip())]),
                       ("ends", password[len(password.rstrip()):])):
        if chars:
            problems.append(f"{end} with {_describe(chars)}")
    hidden = _hidden(password.strip())
    if hidden:
        problems.append(f"holds invisible characters ({hidden})")
    return problems


def _hidden(text: str) -> str:
    """The code points of the invisible characters in `text` other than plain spaces, or ''."""
    return ", ".join(sorted({f"U+{ord(c):04X}" for c in text if _invisible(c) and c != " "}))


def _describe(chars: str) -> str:
    if set(chars) == {" "}:
        return f"{len(chars)} space{'s' * (len(chars) != 1)}"
    return f"{len(chars)} whitespace character{'s' * (len(chars) != 1)} ({', '.join(f'U+{ord(c):04X}' for c in chars)})"
