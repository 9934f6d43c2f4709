"""`rag serve` exposure: the password never on the command line, failed logins
throttled per client, no anonymous uploads with --insecure, Gradio's upload cache
cleaned."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from conftest import free_port, sample_index, wait_for

from rag.pipeline import Pipeline
from rag.settings import Settings

PASSWORD = "correct-horse-battery"
QUESTION = "Why did Russia-Turkey ties sour?"


@pytest.fixture(scope="module")
def built(tmp_path_factory, embedder) -> Settings:
    return sample_index(tmp_path_factory.mktemp("serve"), embedder)


def login(url: str, password: str) -> httpx.Response:
    return httpx.post(url + "login", data={"username": "ann", "password": password}, timeout=30)


def test_password_from_a_file_stays_off_the_command_line_and_guessing_is_throttled(built, tmp_path):
    auth = tmp_path / "auth"
    # Saved by a Windows editor: a byte-order mark and CRLF, neither part of the login.
    auth.write_bytes(b"\xef\xbb\xbf" + f"ann:{PASSWORD}\r\n".encode())
    auth.chmod(0o600)
    port = free_port()
    env = {**os.environ, "RAG_LOGIN_FREE_ATTEMPTS": "5", "RAG_LOGIN_DELAY": "0.5"}
    env.pop("RAG_AUTH", None)
    args = ["serve", "--index", str(built.index_dir), "--corpus", str(built.corpus_dir), "--port", str(port)]
    process = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", *args, "--auth-file", str(auth)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for(url, process)
        cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes().decode()
        assert PASSWORD not in cmdline and str(auth) in cmdline
        # The login is required, and the file's password is the one.
        assert httpx.get(url + "gradio_api/info", timeout=30).status_code in (401, 403)
        codes = [login(url, f"guess-{i}").status_code for i in range(200)]
        assert codes[:5] == [400] * 5  # the free attempts: wrong password
        # Then each failure doubles the wait (0.5 s, 1 s, 2 s, ...): a handful more get through, not 195.
        assert codes.count(400) <= 15 and codes.count(429) >= 185, codes
        assert set(codes) == {400, 429}
        refused = login(url, PASSWORD)
        assert refused.status_code == 429  # even the right password waits its turn
        assert "Too many failed logins" in refused.json()["detail"]
        time.sleep(float(refused.headers["retry-after"]) + 0.2)
        assert login(url, PASSWORD).status_code == 200
        from gradio_client import Client

        answer = Client(url, auth=("ann", PASSWORD), verbose=False).predict(QUESTION, api_name="/ask")
        assert answer["citations"]
    finally:
        process.terminate()
        process.wait(timeout=60)


def test_auth_comes_from_settings_never_from_the_command_line(tmp_path, monkeypatch, capsys):
    from ui.app import login_of, serve

    monkeypatch.setenv("RAG_AUTH", f"ann:{PASSWORD}")
    settings = Settings.from_env()
    assert login_of(settings) == ("ann", PASSWORD)
    assert PASSWORD not in repr(settings)
    monkeypatch.delenv("RAG_AUTH")
    auth = tmp_path / "auth"
    auth.write_text(f"\nbob:{PASSWORD}\nignored\n")
    auth.chmod(0o644)
    monkeypatch.setenv("RAG_AUTH_FILE", str(auth))
    assert login_of(Settings.from_env()) == ("bob", PASSWORD)
    assert "can be read by other users" in capsys.readouterr().err
    for text in ("", "no-colon\n"):
        auth.write_text(text)
        assert serve(Settings.from_env(), host="0.0.0.0", port=free_port()) == 2
        assert "user:password" in capsys.readouterr().err
    monkeypatch.setenv("RAG_AUTH_FILE", str(tmp_path / "missing"))
    assert serve(Settings.from_env(), host="0.0.0.0", port=free_port()) == 2
    assert "cannot read the auth file" in capsys.readouterr().err
    monkeypatch.delenv("RAG_AUTH_FILE")
    monkeypatch.setenv("RAG_TRUSTED_PROXIES", "127.0.0.1, proxy.example.org")
    assert Settings.from_env().trusted_proxies == "127.0.0.1, proxy.example.org"
    assert serve(Settings.from_env(), port=free_port()) == 2
    assert "trusted_proxies: 'proxy.example.org' is not an IP address or network" in capsys.readouterr().err


def test_auth_file_password_is_kept_exactly_and_what_looks_wrong_is_warned_about(tmp_path, capsys):
    from ui.app import login_of

    auth = tmp_path / "auth"
    settings = Settings(auth_file=auth)

    def read(data: bytes) -> tuple[tuple[str, str] | None, str]:
        auth.write_bytes(data)
        auth.chmod(0o600)
        return login_of(settings), capsys.readouterr().err

    # A byte-order mark (Notepad's "UTF-8 with BOM") and Windows line endings are not part of the login.
    assert read(b"\xef\xbb\xbfann:" + PASSWORD.encode() + b"\r\nignored\r\n") == (("ann", PASSWORD), "")
    # Spaces at the end are part of the password (never stripped silently), and the server says so.
    login, err = read(f"ann:{PASSWORD}  \n".encode())
    assert login == ("ann", PASSWORD + "  ")
    assert "warning: the password in the auth file" in err and "ends with 2 spaces" in err and str(auth) in err
    login, err = read(f"\n\n ann :\t{PASSWORD}\n".encode())
    assert login == ("ann", "\t" + PASSWORD)  # the user name is stripped, as Gradio strips what is typed
    assert "starts with 1 whitespace character (U+0009)" in err
    login, err = read(f"ann:{PASSWORD[:4]}\u200b{PASSWORD[4:]}\n".encode())
    assert login == ("ann", f"{PASSWORD[:4]}\u200b{PASSWORD[4:]}") and "invisible characters (U+200B)" in err
    # A password that is only spaces is still one, with the warning; a user name of only a BOM is none.
    assert read(b"ann:   \n")[0] == ("ann", "   ")
    with pytest.raises(ValueError, match="user:password"):
        read(b"\xef\xbb\xbf:secret\n")


@pytest.fixture(scope="module")
def pipeline(built, embedder) -> Pipeline:
    return Pipeline(built, embedder=embedder)


def launch(built, pipeline, allow_changes: bool):
    from ui.app import build_app

    demo = build_app(built, pipeline, allow_changes=allow_changes)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    return demo, f"http://127.0.0.1:{port}/"


def cached(demo) -> set[Path]:
    folder = Path(demo.app.uploaded_file_dir)
    return {p for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


def test_uploads_are_refused_when_changes_are_off(built, pipeline):
    demo, url = launch(built, pipeline, allow_changes=False)
    try:
        before = cached(demo)
        for i in range(40):
            files = {"files": (f"junk-{i}.txt", os.urandom(20_000), "text/plain")}
            reply = httpx.post(url + "gradio_api/upload", files=files, timeout=30)
            assert reply.status_code == 403 and "Uploads are disabled" in reply.text
        assert cached(demo) == before
        # Questions are still answered.
        from gradio_client import Client

        assert Client(url, verbose=False).predict(QUESTION, api_name="/ask")["citations"]
    finally:
        demo.close()


def test_gradio_upload_cache_is_cleaned(built, pipeline):
    demo, url = launch(built, pipeline, allow_changes=True)
    try:
        reply = httpx.post(url + "gradio_api/upload", files={"files": ("a.txt", b"some text", "text/plain")}, timeout=30)
        assert reply.status_code == 200, reply.text
        stored = Path(reply.json()[0])
        assert stored.is_file()
    finally:
        demo.close()
    assert not stored.exists()  # Gradio's delete_cache removes what this app stored when it stops


def launch_with_login(built, pipeline, **settings):
    """The app with a login, in this process, throttling as `settings` say; (demo, url)."""
    from ui.app import build_app

    demo = build_app(replace(built, login_free_attempts=5, login_delay=30.0, **settings), pipeline)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, auth=("ann", PASSWORD))
    return demo, f"http://127.0.0.1:{port}/"


def test_simultaneous_wrong_logins_are_counted_before_any_is_checked(built, pipeline):
    demo, url = launch_with_login(built, pipeline)
    try:
        with ThreadPoolExecutor(max_workers=50) as pool:
            codes = list(pool.map(lambda i: login(url, f"guess-{i}").status_code, range(100)))
        assert codes.count(400) <= 5 and codes.count(429) >= 95 and set(codes) <= {400, 429}, codes
        assert login(url, PASSWORD).status_code == 429  # the right password afterwards still waits
    finally:
        demo.close()


def login_as(url: str, user: str, forwarded_for: str) -> int:
    data = {"username": user, "password": "guess"}
    return httpx.post(url + "login", data=data, headers={"X-Forwarded-For": forwarded_for}, timeout=30).status_code


def test_x_forwarded_for_is_believed_only_from_a_configured_proxy(built, pipeline):
    # Nothing configured: this loopback client names another address each time, and is still one client.
    # (uvicorn, which Gradio runs, believed X-Forwarded-For from any program on 127.0.0.1.)
    demo, url = launch_with_login(built, pipeline)
    try:
        codes = [login_as(url, f"user{i}", f"192.0.2.{i}") for i in range(8)]
        assert codes == [400] * 5 + [429] * 3
    finally:
        demo.close()
    # 127.0.0.1 is the configured proxy: the client it names is the one counted.
    demo, url = launch_with_login(built, pipeline, trusted_proxies="127.0.0.1")
    try:
        codes = [login_as(url, f"user{i}", "192.0.2.1") for i in range(7)]
        assert codes == [400] * 5 + [429] * 2
        assert login_as(url, "other", "192.0.2.2") == 400  # another client behind the proxy
        # A proxy that appends: the client's own claim comes first and is not believed.
        assert login_as(url, "third", "203.0.113.9, 192.0.2.1") == 429
    finally:
        demo.close()
