"""The OpenAI-compatible API of `rag serve`, driven by the official `openai` package:
answers streamed and not, follow-ups, filters, the model id choosing the LLM, bad
input refused in OpenAI's error shape, and the key (RAG_API_KEY, or the UI login's
password; wrong keys throttled)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys

import httpx
import openai
import pytest
from conftest import free_port, sample_index, wait_for
from openai import OpenAI

from rag.answer import Turn
from rag.build import Builder
from rag.pipeline import Pipeline
from rag.settings import Settings
from ui.openai_api import EXTRACTIVE_MODEL, LLM_MODEL, SOURCES_HEADING, strip_extras

KEY = "sk-rag-test-key-1234"
PASSWORD = "correct-horse-battery"
QUESTION = "Why did Russia-Turkey ties sour?"
FOLLOW_UP = "And what did he say?"
OTHER_OUTLET = "Harbour Gazette"
OTHER_ARTICLE = {
    "title": "Ankara and Moscow talk trade again",
    "source": OTHER_OUTLET,
    "published_at": "2019-05-01",
    "url": "https://harbour.example/trade",
    "body": (
        "Russia-Turkey ties soured over a dispute about wheat tariffs, officials in Ankara said on Wednesday. "
        "The two governments agreed to meet again in June to settle the tariff dispute."
    ),
}


@pytest.fixture(scope="module")
def built(tmp_path_factory, embedder) -> Settings:
    settings = sample_index(tmp_path_factory.mktemp("openai"), embedder)
    (settings.corpus_dir / "trade.json").write_text(json.dumps(OTHER_ARTICLE), encoding="utf-8")
    Builder(settings, embedder=embedder)()
    return settings


@pytest.fixture(scope="module")
def pipeline(built, embedder) -> Pipeline:
    return Pipeline(built, embedder=embedder)


@contextlib.contextmanager
def rag_serve(built: Settings, **env_vars: str):
    """`rag serve` on a free loopback port with these RAG_* variables (and no login,
    key or LLM from the environment): its base URL and its first two lines."""
    port = free_port()
    env = {**os.environ, **env_vars}
    for name in ("RAG_AUTH", "RAG_AUTH_FILE", "RAG_API_KEY", "RAG_LLM_BASE_URL"):
        if name not in env_vars:
            env.pop(name, None)
    args = ["serve", "--index", str(built.index_dir), "--corpus", str(built.corpus_dir), "--port", str(port)]
    process = subprocess.Popen([sys.executable, "-m", "rag.cli", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for(url, process)
        yield url + "v1", [process.stdout.readline().decode().strip() for _ in range(2)]
    finally:
        process.terminate()
        process.wait(timeout=60)


@pytest.fixture(scope="module")
def served(built):
    """`rag serve` with RAG_API_KEY set: its base URL."""
    with rag_serve(built, RAG_API_KEY=KEY) as (url, banner):
        assert banner[1] == f"rag serve: OpenAI-compatible API on {url.replace('127.0.0.1', 'localhost')} (key required)"
        yield url


@pytest.fixture
def client(served) -> OpenAI:
    return OpenAI(base_url=served, api_key=KEY, max_retries=0, timeout=120)


def ask(client: OpenAI, messages: list[dict], **extra):
    return client.chat.completions.create(model=EXTRACTIVE_MODEL, messages=messages, extra_body=extra or None)


def test_models_are_listed(client):
    assert [m.id for m in client.models.list()] == [EXTRACTIVE_MODEL]  # no LLM server set


def test_answer_carries_marks_sources_and_citations(client, pipeline):
    expected = pipeline.ask(QUESTION)
    reply = ask(client, [{"role": "system", "content": "You are helpful."}, {"role": "user", "content": QUESTION}])
    text = reply.choices[0].message.content
    assert reply.choices[0].finish_reason == "stop" and reply.model == EXTRACTIVE_MODEL
    assert text.startswith(expected.text) and "[1]" in text
    # Numbered sources at the end, for clients that ignore `citations`.
    sources = text.split(f"\n\n{SOURCES_HEADING}\n", 1)[1].splitlines()
    assert len(sources) == len(expected.citations)
    seen = set()
    for line, c in zip(sources, expected.citations):
        if c.article_id in seen:
            assert line.startswith(f"- [{c.n}] same article as above: “{c.sentence[:30]}")
        else:
            assert line == f"- [{c.n}] {c.title} — {c.source}, {c.published} — {c.url or c.path}"
        seen.add(c.article_id)
    assert f"{expected.citations[0].source}, {expected.citations[0].published}" in text
    citations = reply.model_extra["citations"]
    assert citations == expected.to_dict()["citations"]
    first = citations[0]
    assert {"sentence", "title", "source", "published", "url", "article_id", "start", "end"} <= set(first)
    assert first["end"] > first["start"] and first["sentence"] in expected.text


def test_streamed_answer_is_the_same_answer(client):
    whole = ask(client, [{"role": "user", "content": QUESTION}])
    stream = client.chat.completions.create(model=EXTRACTIVE_MODEL, messages=[{"role": "user", "content": QUESTION}], stream=True)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(chunks) > 3  # role, sentences, sources, end
    assert chunks[0].choices[0].delta.role == "assistant"
    assert text == whole.choices[0].message.content
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["citations"] == whole.model_extra["citations"]


def test_raw_stream_ends_with_done(served):
    body = {"model": EXTRACTIVE_MODEL, "messages": [{"role": "user", "content": QUESTION}], "stream": True}
    with httpx.stream("POST", served + "/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"}, timeout=120) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        events = [line for line in r.iter_lines() if line]
    assert all(e.startswith("data: ") for e in events) and events[-1] == "data: [DONE]"
    assert json.loads(events[-2][6:])["choices"][0]["finish_reason"] == "stop"


def test_follow_up_uses_the_earlier_turns(client, pipeline):
    first = ask(client, [{"role": "user", "content": QUESTION}]).choices[0].message.content
    messages = [
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": first},  # as a client sends it back: with the sources list
        {"role": "user", "content": [{"type": "text", "text": FOLLOW_UP}]},
    ]
    reply = ask(client, messages)
    expected = pipeline.ask(FOLLOW_UP, history=[Turn(QUESTION, pipeline.ask(QUESTION).text)])
    assert strip_extras(first) == pipeline.ask(QUESTION).text
    assert not expected.abstained and "expressed condolences" in expected.text
    assert reply.choices[0].message.content.startswith(expected.text)
    # Alone, the same words find nothing to answer.
    alone = ask(client, [{"role": "user", "content": FOLLOW_UP}])
    assert alone.model_extra["citations"] == [] and "could not find" in alone.choices[0].message.content


def test_filters_and_k_as_extra_body_fields(client):
    iran = ask(client, [{"role": "user", "content": QUESTION}], source="Iran Press TV").model_extra["citations"]
    assert iran and {c["source"] for c in iran} == {"Iran Press TV"}
    only = ask(client, [{"role": "user", "content": QUESTION}], source=OTHER_OUTLET).model_extra["citations"]
    assert only and {c["source"] for c in only} == {OTHER_OUTLET}
    dated = ask(client, [{"role": "user", "content": QUESTION}], **{"from": "2018-01-01", "to": "2019-12-31"})
    assert {c["published"] for c in dated.model_extra["citations"]} == {"2019-05-01"}
    none = ask(client, [{"role": "user", "content": QUESTION}], to="2010-01-01")
    assert none.model_extra["citations"] == [] and "could not find" in none.choices[0].message.content
    assert ask(client, [{"role": "user", "content": QUESTION}], k=1).model_extra["citations"]


@pytest.mark.parametrize(
    "messages, extra, param, words",
    [
        ([{"role": "user", "content": QUESTION}], {"k": 0}, "k", "k must be a whole number from 1 to 100"),
        ([{"role": "user", "content": QUESTION}], {"k": "ten"}, "k", "k must be a whole number"),
        ([{"role": "user", "content": QUESTION}], {"from": "2019-02-30"}, "from", "from must be a date written YYYY-MM-DD"),
        ([{"role": "user", "content": QUESTION}], {"from": "2020-01-01", "to": "2019-01-01"}, "to", "is after to"),
        ([{"role": "user", "content": QUESTION}], {"source": 7}, "source", "source must be an outlet name"),
        ([{"role": "user", "content": "?!"}], {}, "messages", "the question is empty"),
        ([{"role": "user", "content": QUESTION}, {"role": "assistant", "content": "x"}], {}, "messages", "last message must be the user's"),
        ([], {}, "messages", "non-empty list"),
        ([{"role": "tool", "content": "x"}, {"role": "user", "content": QUESTION}], {}, "messages[0].role", "not supported"),
        ([{"role": "user", "content": {"text": QUESTION}}], {}, "messages[0].content", "text or a list of text parts"),
    ],
)
def test_bad_input_is_a_400_in_openai_shape(client, messages, extra, param, words):
    with pytest.raises(openai.BadRequestError) as caught:
        ask(client, messages, **extra)
    assert caught.value.status_code == 400
    assert caught.value.param == param and caught.value.type == "invalid_request_error"
    assert words in caught.value.message


def test_unknown_model_and_unset_llm_are_404(client):
    for model, words in (("gpt-4o", "does not exist"), (LLM_MODEL, "RAG_LLM_BASE_URL")):
        with pytest.raises(openai.NotFoundError) as caught:
            client.chat.completions.create(model=model, messages=[{"role": "user", "content": QUESTION}])
        assert caught.value.code == "model_not_found" and words in caught.value.message


def test_body_that_is_not_json_is_a_400(served):
    reply = httpx.post(served + "/chat/completions", content=b"{not json", headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    assert reply.status_code == 400 and "not valid JSON" in reply.json()["error"]["message"]


def test_the_key_is_required(served):
    with pytest.raises(openai.AuthenticationError) as caught:
        OpenAI(base_url=served, api_key="sk-wrong", max_retries=0).models.list()
    assert caught.value.status_code == 401 and caught.value.code == "invalid_api_key"
    body = {"model": EXTRACTIVE_MODEL, "messages": [{"role": "user", "content": QUESTION}]}
    reply = httpx.post(served + "/chat/completions", json=body, timeout=30)  # no key at all
    assert reply.status_code == 401 and set(reply.json()["error"]) == {"message", "type", "param", "code"}
    assert "Authorization: Bearer" in reply.json()["error"]["message"] and reply.headers["www-authenticate"] == "Bearer"


# ------------------------------------------------ in-process: login, LLM, open


def launch(settings: Settings, pipeline: Pipeline, **launch_kwargs):
    from ui.app import build_app

    demo = build_app(settings, pipeline)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, **launch_kwargs)
    return demo, f"http://127.0.0.1:{port}/v1"


def test_login_password_is_a_key_and_wrong_keys_are_throttled(built, pipeline):
    from dataclasses import replace

    settings = replace(built, login_free_attempts=3, login_delay=30.0)
    demo, url = launch(settings, pipeline, auth=("ann", PASSWORD))
    try:
        assert [m.id for m in OpenAI(base_url=url, api_key=PASSWORD, max_retries=0).models.list()] == [EXTRACTIVE_MODEL]
        wrong = OpenAI(base_url=url, api_key="guess", max_retries=0)
        for _ in range(3):
            with pytest.raises(openai.AuthenticationError):
                wrong.models.list()
        # Then every attempt from this address waits, even with the right key.
        with pytest.raises(openai.RateLimitError) as caught:
            OpenAI(base_url=url, api_key=PASSWORD, max_retries=0).models.list()
        assert caught.value.status_code == 429 and caught.value.code == "rate_limit_exceeded"
        assert 25 <= int(caught.value.response.headers["retry-after"]) <= 30
    finally:
        demo.close()


def test_without_a_key_on_loopback_the_api_is_open(built):
    with rag_serve(built) as (url, banner):
        assert banner[1].endswith("/v1")  # no "(key required)"
        client = OpenAI(base_url=url, api_key="anything", max_retries=0)
        reply = client.chat.completions.create(model=EXTRACTIVE_MODEL, messages=[{"role": "user", "content": QUESTION}])
        assert reply.model_extra["citations"]
        chunks = list(client.chat.completions.create(model=EXTRACTIVE_MODEL, messages=[{"role": "user", "content": QUESTION}], stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == reply.choices[0].message.content
        assert httpx.post(url + "/chat/completions", json={"model": EXTRACTIVE_MODEL, "messages": [{"role": "user", "content": QUESTION}]},
                          timeout=120).status_code == 200  # no Authorization header at all


def test_llm_model_id_answers_with_the_llm(built, embedder):
    from test_llm import FakeLLM

    fake = FakeLLM()
    try:
        from dataclasses import replace

        settings = replace(built, llm_base_url=fake.url, llm_model="fake", llm_timeout=5.0)
        demo, url = launch(settings, Pipeline(settings, embedder=embedder))
        try:
            client = OpenAI(base_url=url, api_key="x", max_retries=0)
            assert [m.id for m in client.models.list()] == [EXTRACTIVE_MODEL, LLM_MODEL]
            fake.mode, fake.reply = "stream", "Turkey shot down a Russian jet over Syria in November 2015 [1]."
            chunks = list(client.chat.completions.create(model=LLM_MODEL, messages=[{"role": "user", "content": QUESTION}], stream=True))
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            assert text.startswith(fake.reply + f"\n\n{SOURCES_HEADING}\n- [1] ")
            assert [c["n"] for c in chunks[-1].model_extra["citations"]] == [1]
            assert fake.requests and fake.requests[-1]["body"]["stream"] is True
            whole = client.chat.completions.create(model=LLM_MODEL, messages=[{"role": "user", "content": QUESTION}])
            assert whole.choices[0].message.content == text
            # The extractive model does not call the LLM.
            asked = len(fake.requests)
            client.chat.completions.create(model=EXTRACTIVE_MODEL, messages=[{"role": "user", "content": QUESTION}])
            assert len(fake.requests) == asked
        finally:
            demo.close()
    finally:
        fake.shutdown()


def test_serve_refuses_a_public_host_without_a_key(built, monkeypatch, capsys):
    from ui.app import serve

    for name in ("RAG_AUTH", "RAG_AUTH_FILE", "RAG_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert serve(Settings.from_env(index_dir=built.index_dir), host="0.0.0.0", port=free_port()) == 2
    assert "without a password" in capsys.readouterr().err


def test_a_failure_inside_is_a_500_in_openai_shape(built, pipeline, monkeypatch):
    demo, url = launch(built, pipeline)
    try:
        def broken(*args, **kwargs):
            raise RuntimeError("the disk went away")

        monkeypatch.setattr(pipeline, "ask", broken)
        with pytest.raises(openai.InternalServerError) as caught:
            OpenAI(base_url=url, api_key="x", max_retries=0).chat.completions.create(
                model=EXTRACTIVE_MODEL, messages=[{"role": "user", "content": QUESTION}]
            )
        assert caught.value.status_code == 500 and caught.value.type == "server_error"
        assert "the disk went away" in caught.value.message
        stream = OpenAI(base_url=url, api_key="x", max_retries=0).chat.completions.create(
            model=EXTRACTIVE_MODEL, messages=[{"role": "user", "content": QUESTION}], stream=True
        )
        with pytest.raises(openai.APIError, match="the disk went away"):
            list(stream)
    finally:
        demo.close()
