"""What the server refuses before Gradio sees a request (Starlette ASGI middleware).

* `LoginThrottle`: after `free` failed logins from one client address, or for one
  user name from anywhere, each further attempt must wait `delay` seconds, doubling
  with every failure (up to `longest`); until then `POST /login` answers 429 with
  `Retry-After`, whatever the password. A success clears the counts. Guessing
  passwords goes from hundreds per second to a handful per hour.
  An attempt is counted as a failure the moment it is let through, in the same
  locked step as the check (a success then forgives it): 100 attempts sent at once
  cannot all pass the check before the first is counted. The client address is the
  connection's, unless that is one of `trusted_proxies`: then it is the one the proxy
  names in `X-Forwarded-For` (applied by uvicorn, see `forwarded_allow_ips`) or
  `Forwarded`. An IPv6 client is counted by its /64 network, which one host holds.
* `UploadGate`: `POST /gradio_api/upload` is answered 403 when index changes are off
  (`rag serve --insecure`), so an anonymous client cannot store files in Gradio's
  temporary folder.

Both are plain ASGI middleware, handed to Gradio's FastAPI app through
`launch(app_kwargs={"middleware": [...]})`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import math
import os
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

from starlette.requests import Request

LOGIN_PATHS = ("/login", "/login/")
UPLOAD_PATHS = ("/gradio_api/upload", "/gradio_api/upload/", "/upload", "/upload/")
MAX_CLIENTS = 10_000
"""Client addresses and user names remembered (the oldest are forgotten first): bounded memory."""
MAX_LOGIN_BODY = 16_384
"""A login form is a user name and a password: a larger body is refused unread."""

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def trusted_networks(text: str) -> tuple[Network, ...]:
    """`Settings.trusted_proxies` ("127.0.0.1, 10.0.0.0/8") as networks; raises
    ValueError naming an entry that is not an IP address or network."""
    networks = []
    for entry in (e.strip() for e in (text or "").split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(
                f"trusted_proxies: {entry!r} is not an IP address or network (such as 127.0.0.1 or 10.0.0.0/8)"
            ) from None
    return tuple(networks)


def forwarded_allow_ips(text: str) -> str:
    """The value of uvicorn's FORWARDED_ALLOW_IPS that trusts exactly these proxies
    (uvicorn's own default trusts any program connecting from 127.0.0.1)."""
    return ",".join(str(n) for n in trusted_networks(text))


@contextlib.contextmanager
def environ(**values: str):
    """Environment variables set for the block, then restored."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    text = text.strip().strip('"')
    if text.startswith("["):  # [v6]:port
        text = text[1 : text.find("]")] if "]" in text else text
    elif text.count(":") == 1:  # v4:port
        text = text.split(":")[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def client_key(host: str) -> str:
    """What one client is counted by: its IPv4 address, or its IPv6 /64 network
    (a single host is given a whole /64 and could rotate through it)."""
    address = _address(host)
    if address is None:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


_FORWARDED_FOR = re.compile(r'(?:^|[;,\s])for=("[^"]*"|[^;,\s]*)', re.IGNORECASE)


def _path(scope) -> str:
    path = scope.get("path", "")
    root = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def _header(scope, name: bytes) -> str | None:
    values = [v.decode("latin-1") for k, v in scope.get("headers", []) if k == name]
    return ", ".join(values) if values else None


async def _reply(send, status: int, message: str, headers: list[tuple[bytes, bytes]] = ()) -> None:
    body = json.dumps({"detail": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive, limit: int) -> bytes | None:
    """The whole request body, or None when it is larger than `limit` or the client left."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > limit:
            return None
        if not message.get("more_body"):
            return b"".join(chunks)


def _replay(body: bytes, receive):
    """A `receive` that gives `body` once, then whatever the connection sends (disconnect)."""
    given = False

    async def replayed():
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


@dataclass
class _Record:
    failures: int = 0
    wait_until: float = 0.0


class LoginThrottle:
    def __init__(
        self,
        app,
        free: int = 5,
        delay: float = 2.0,
        longest: float = 300.0,
        trusted_proxies: str = "",
        clock=time.monotonic,
    ):
        self.app = app
        self.free = free
        self.delay = delay
        self.longest = longest
        self.proxies = trusted_networks(trusted_proxies)
        self.clock = clock
        self._records: OrderedDict[str, _Record] = OrderedDict()
        self._lock = threading.Lock()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "POST" or _path(scope) not in LOGIN_PATHS:
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive, MAX_LOGIN_BODY)
        if body is None:
            await _reply(send, 413, "A login form is a user name and a password; this request is too large.")
            return
        user = await self._user(scope, body)
        keys = (f"client {client_key(self.client(scope))}", f"user {user}")
        wait = self.admit(keys)
        if wait > 0:
            seconds = math.ceil(wait)
            await _reply(
                send,
                429,
                f"Too many failed logins from this address or for this user: try again in {seconds} s.",
                [(b"retry-after", str(seconds).encode())],
            )
            return
        status = 0

        async def watch(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, _replay(body, receive), watch)
        if 200 <= status < 400:
            self.forgive(keys)

    def trusted(self, host: str) -> bool:
        address = _address(host)
        return address is not None and any(address in network for network in self.proxies)

    def client(self, scope) -> str:
        """The client's address: the connection's, or the one a trusted proxy names in
        `Forwarded` (uvicorn has already applied `X-Forwarded-For` from trusted proxies
        only, NewsApp.launch sees to that): the last hop that is not a trusted proxy."""
        host = (scope.get("client") or ("unknown", 0))[0]
        forwarded = _header(scope, b"forwarded")
        if forwarded is None or not self.trusted(host) or _header(scope, b"x-forwarded-for") is not None:
            return host
        hops = [h.strip('"') for h in _FORWARDED_FOR.findall(forwarded)]
        for hop in reversed(hops):
            if not self.trusted(hop):
                return hop if _address(hop) is not None else host
        return host

    @staticmethod
    async def _user(scope, body: bytes) -> str:
        """The user name the form logs in as, stripped as Gradio strips it; '' if none."""
        try:
            form = await Request(scope, _replay(body, _no_more)).form()
        except Exception:  # an unreadable form: Gradio refuses it too, counted under ''
            return ""
        try:
            user = form.get("username")
            return user.strip() if isinstance(user, str) else ""
        finally:
            await form.close()

    def admit(self, keys: tuple[str, ...]) -> float:
        """0 when an attempt under `keys` may go ahead, and it is then counted as a
        failure of each (until forgiven); otherwise the seconds it must still wait.
        One locked step: concurrent attempts are counted one after another."""
        with self._lock:
            now = self.clock()
            records = [self._records.get(key) for key in keys]
            wait = max((r.wait_until - now for r in records if r), default=0.0)
            if wait > 0:
                return wait
            for key, record in zip(keys, records, strict=True):
                record = record or _Record()
                record.failures += 1
                over = record.failures - self.free
                if over >= 0:
                    record.wait_until = now + min(self.longest, self.delay * 2 ** min(over, 30))
                self._records.pop(key, None)
                self._records[key] = record
            while len(self._records) > MAX_CLIENTS:
                self._records.popitem(last=False)
            return 0.0

    def forgive(self, keys: tuple[str, ...]) -> None:
        """A login succeeded: forget the counts of its client and user."""
        with self._lock:
            for key in keys:
                self._records.pop(key, None)


async def _no_more():
    return {"type": "http.disconnect"}


class UploadGate:
    def __init__(self, app, allowed: bool):
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope, receive, send):
        if not self.allowed and scope["type"] == "http" and _path(scope) in UPLOAD_PATHS:
            await _reply(send, 403, "Uploads are disabled on this server (no password set).")
            return
        await self.app(scope, receive, send)
