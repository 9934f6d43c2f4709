"""What the server refuses before Gradio sees a request (Starlette ASGI middleware).

* `LoginThrottle`: after `free` failed logins from one client address, each further
  attempt from it must wait `delay` seconds, doubling with every failure (up to
  `longest`); until then `POST /login` answers 429 with `Retry-After`, whatever the
  password. A success clears the count. Guessing passwords goes from hundreds per
  second to a handful per hour.
* `UploadGate`: `POST /gradio_api/upload` is answered 403 when index changes are off
  (`rag serve --insecure`), so an anonymous client cannot store files in Gradio's
  temporary folder.

Both are plain ASGI middleware, handed to Gradio's FastAPI app through
`launch(app_kwargs={"middleware": [...]})`.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass

LOGIN_PATHS = ("/login", "/login/")
UPLOAD_PATHS = ("/gradio_api/upload", "/gradio_api/upload/", "/upload", "/upload/")
MAX_CLIENTS = 10_000
"""Client addresses remembered (the oldest are forgotten first): bounded memory."""


def _path(scope) -> str:
    path = scope.get("path", "")
    root = scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


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


@dataclass
class _Record:
    failures: int = 0
    wait_until: float = 0.0


class LoginThrottle:
    def __init__(self, app, free: int = 5, delay: float = 2.0, longest: float = 300.0, clock=time.monotonic):
        self.app = app
        self.free = free
        self.delay = delay
        self.longest = longest
        self.clock = clock
        self._clients: OrderedDict[str, _Record] = OrderedDict()
        self._lock = threading.Lock()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") != "POST" or _path(scope) not in LOGIN_PATHS:
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown", 0))[0]
        wait = self.wait(client)
        if wait > 0:
            seconds = math.ceil(wait)
            await _reply(
                send,
                429,
                f"Too many failed logins from this address: try again in {seconds} s.",
                [(b"retry-after", str(seconds).encode())],
            )
            return
        status = 0

        async def watch(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        await self.app(scope, receive, watch)
        self.record(client, ok=200 <= status < 400)

    def wait(self, client: str) -> float:
        """Seconds `client` must still wait before its next login attempt."""
        with self._lock:
            record = self._clients.get(client)
            return max(0.0, record.wait_until - self.clock()) if record else 0.0

    def record(self, client: str, ok: bool) -> None:
        with self._lock:
            if ok:
                self._clients.pop(client, None)
                return
            record = self._clients.pop(client, None) or _Record()
            record.failures += 1
            over = record.failures - self.free
            if over >= 0:
                record.wait_until = self.clock() + min(self.longest, self.delay * 2 ** min(over, 30))
            self._clients[client] = record
            while len(self._clients) > MAX_CLIENTS:
                self._clients.popitem(last=False)


class UploadGate:
    def __init__(self, app, allowed: bool):
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope, receive, send):
        if not self.allowed and scope["type"] == "http" and _path(scope) in UPLOAD_PATHS:
            await _reply(send, 403, "Uploads are disabled on this server (no password set).")
            return
        await self.app(scope, receive, send)
