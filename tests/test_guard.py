"""The login throttle (ui/guard.py) driven directly, as an ASGI app in front of a
stand-in for Gradio's login route: concurrent attempts, per-user counts, which
forwarded headers are believed. The live server is tested in test_serve.py."""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs

import httpx
import pytest

from ui import guard

PASSWORD = "correct-horse-battery"


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class LoginRoute:
    """Gradio's POST /login as the throttle sees it: 200 for ann's password, else 400,
    after a pause during which other attempts arrive. Counts the attempts it checked."""

    def __init__(self):
        self.checked = 0

    async def __call__(self, scope, receive, send):
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        self.checked += 1
        await asyncio.sleep(0.05)
        ok = form.get("username", "").strip() == "ann" and form.get("password") == PASSWORD
        await send({"type": "http.response.start", "status": 200 if ok else 400, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


def throttle(**options) -> tuple[guard.LoginThrottle, LoginRoute, Clock]:
    route, clock = LoginRoute(), Clock()
    return guard.LoginThrottle(route, free=5, delay=2.0, clock=clock, **options), route, clock


async def attempt(app, password: str, user: str = "ann", peer: str = "198.51.100.7", headers=None) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://rag") as client:
        return await client.post("/login", data={"username": user, "password": password}, headers=headers or {})


def codes(replies) -> list[int]:
    return [r.status_code for r in replies]


def test_simultaneous_wrong_attempts_get_only_the_free_ones_checked():
    app, route, clock = throttle()

    async def storm():
        return await asyncio.gather(*(attempt(app, f"guess-{i}") for i in range(100)))

    replies = asyncio.run(storm())
    assert route.checked == 5, "every attempt was let through before the first was counted"
    assert codes(replies).count(400) == 5 and codes(replies).count(429) == 95
    # The right password afterwards still waits its turn...
    refused = asyncio.run(attempt(app, PASSWORD))
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) == 2
    assert route.checked == 5
    # ...and gets in once the wait is over; a success clears the count.
    clock.now += 2.1
    assert asyncio.run(attempt(app, PASSWORD)).status_code == 200
    assert asyncio.run(attempt(app, "wrong")).status_code == 400


def test_a_success_is_not_counted_as_a_failure():
    app = throttle()[0]
    for _ in range(20):
        assert asyncio.run(attempt(app, PASSWORD)).status_code == 200


def test_one_user_name_is_throttled_from_any_address():
    app = throttle()[0]
    replies = [asyncio.run(attempt(app, f"guess-{i}", peer=f"203.0.113.{i}")) for i in range(12)]
    assert codes(replies) == [400] * 5 + [429] * 7
    # Another user name from a fresh address is not held up by ann's failures.
    assert asyncio.run(attempt(app, "x", user="bob", peer="203.0.113.99")).status_code == 400
    # Gradio strips the user name: " ann " is ann.
    assert asyncio.run(attempt(app, PASSWORD, user=" ann ", peer="203.0.113.98")).status_code == 429


def test_one_address_is_throttled_whatever_user_name_it_tries():
    app = throttle()[0]
    replies = [asyncio.run(attempt(app, "guess", user=f"user{i}")) for i in range(8)]
    assert codes(replies) == [400] * 5 + [429] * 3


def test_an_ipv6_client_is_counted_by_its_64_network():
    app = throttle()[0]
    replies = [asyncio.run(attempt(app, "guess", user=f"user{i}", peer=f"2001:db8:1:2::{i:x}")) for i in range(8)]
    assert codes(replies) == [400] * 5 + [429] * 3
    assert asyncio.run(attempt(app, "guess", user="z", peer="2001:db8:1:3::1")).status_code == 400
    assert guard.client_key("::ffff:192.0.2.1") == "192.0.2.1"


@pytest.mark.parametrize("header", ["forwarded", "x-forwarded-for"])
def test_forwarded_headers_from_an_untrusted_peer_do_not_reset_the_count(header):
    app = throttle()[0]
    replies = []
    for i in range(10):
        value = f"for=192.0.2.{i}" if header == "forwarded" else f"192.0.2.{i}"
        replies.append(asyncio.run(attempt(app, "guess", user=f"user{i}", headers={header: value})))
    assert codes(replies) == [400] * 5 + [429] * 5


def test_from_a_trusted_proxy_the_forwarded_client_is_counted():
    app = throttle(trusted_proxies="10.0.0.0/8, ::1")[0]
    proxy = "10.1.2.3"

    def via_proxy(client: str, user: str) -> int:
        headers = {"forwarded": f'for=192.0.2.250, for="{client}";proto=https'}
        return asyncio.run(attempt(app, "guess", user=user, peer=proxy, headers=headers)).status_code

    assert [via_proxy("198.51.100.1", f"u{i}") for i in range(7)] == [400] * 5 + [429] * 2
    # Another client behind the same proxy is not held up by the first one's failures.
    assert via_proxy("198.51.100.2", "v") == 400
    # The last hop before the trusted proxies counts: a client cannot pick it by adding its own.
    headers = {"forwarded": "for=203.0.113.1, for=198.51.100.1"}
    assert asyncio.run(attempt(app, "x", user="w", peer=proxy, headers=headers)).status_code == 429


def test_trusted_proxies_are_checked():
    assert guard.forwarded_allow_ips("") == ""
    assert guard.forwarded_allow_ips(" 127.0.0.1, 10.0.0.0/8 ,::1") == "127.0.0.1/32,10.0.0.0/8,::1/128"
    with pytest.raises(ValueError, match=r"trusted_proxies: 'proxy\.example\.org' is not an IP address"):
        guard.trusted_networks("127.0.0.1, proxy.example.org")


def test_a_huge_login_form_is_refused_unread():
    app, route, _ = throttle()
    reply = asyncio.run(attempt(app, "x" * 100_000))
    assert reply.status_code == 413 and route.checked == 0
