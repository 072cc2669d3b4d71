"""Faults injected by a real upstream: retries, fallbacks, circuit breaker, timeouts, cache.

The primary (`openai`) misbehaves as scripted; the alias `resilient` falls back to a
healthy second endpoint (`backup`) of the same mock. With that fallback the client never
sees a 5xx.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from aiohttp import web

from ..providers.mock_upstream import (
    MockUpstream,
    Reply,
    json_reply,
    openai_chunks,
    openai_completion,
    openai_sse,
    raw_reply,
    slow_reply,
    sse_reply,
    truncated_reply,
)
from ..server.conftest import ADMIN_KEY, LiveServer

pytestmark = pytest.mark.integration

PRIMARY = "/v1/chat/completions"
BACKUP = "/v1/backup/chat/completions"
ASK = {"model": "resilient", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def gateway_settings_extra() -> dict[str, Any]:
    return {
        "models": {"openai:gpt-4o-mini": {"first_token_timeout": 0.5, "total_timeout": 1.5}},
        "retry": {"max_attempts": 2, "base_delay": 0.01, "max_retry_after": 2},
        # long enough that a busy machine does not let a probe through mid-test
        "breaker": {"failure_threshold": 4, "window_seconds": 30, "open_seconds": 2.0},
    }


def post(live: LiveServer, body: Any = ASK, **headers: str) -> httpx.Response:
    return httpx.post(
        live.url + "/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {ADMIN_KEY}", **headers},
        timeout=20,
    )


def hits(upstream: MockUpstream, path: str) -> int:
    return sum(1 for r in upstream.requests if r.path == path)


def cut_connection() -> Reply:
    async def reply(request: web.Request, closing: asyncio.Event) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.close()
        return web.Response()

    return reply


FAULTS = {
    "500": json_reply({"error": {"message": "boom"}}, 500),
    "503": json_reply({"error": {"message": "overloaded"}}, 503, {"Retry-After": "0"}),
    "429": json_reply({"error": {"message": "slow down"}}, 429, {"Retry-After": "0"}),
    "malformed_json": raw_reply(b'{"choices": [tru'),
    "truncated_body": truncated_reply(b'{"choices": [', 500),
    "connection_reset": cut_connection(),
    "read_timeout": slow_reply(5, json_reply(openai_completion("late"))),
}


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_healthy_fallback_hides_every_fault(
    live: LiveServer, upstream: MockUpstream, fault: str
) -> None:
    upstream.script(PRIMARY, FAULTS[fault])
    upstream.script(BACKUP, json_reply(openai_completion("from backup")))
    response = post(live)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "from backup"
    assert response.headers["x-keel-model"] == "backup:gpt-4o-mini"
    # Retryable faults are tried twice (max_attempts 2); a malformed answer is not retried.
    assert hits(upstream, PRIMARY) == (1 if fault == "malformed_json" else 2)


def test_an_unreachable_primary_falls_back(live: LiveServer, upstream: MockUpstream) -> None:
    upstream.script(BACKUP, json_reply(openai_completion("from backup")))
    response = post(live, {**ASK, "model": "via-dead"})  # `dead` points at a closed port
    assert response.json()["choices"][0]["message"]["content"] == "from backup"


def test_a_connect_timeout_falls_back(live: LiveServer, upstream: MockUpstream) -> None:
    upstream.script(BACKUP, json_reply(openai_completion("from backup")))
    response = post(live, {**ASK, "model": "via-stalled"})  # `stalled` never accepts
    assert response.status_code == 200
    assert response.headers["x-keel-model"] == "backup:gpt-4o-mini"


def test_without_a_fallback_a_connect_timeout_is_a_clear_504(live: LiveServer) -> None:
    response = post(live, {**ASK, "model": "stalled:gpt-4o-mini"})
    assert response.status_code == 504
    error = response.json()["error"]
    assert error["code"] == "provider_timeout"
    assert error["details"]["timeout"] == "connect"


@pytest.mark.parametrize(
    "fault",
    [
        sse_reply([b": waiting\n\n"], end="hang"),  # no first token within 0.5 s
        sse_reply([openai_sse(openai_chunks(["x"]))[:60]], end="cut"),  # cut before a token
        json_reply({"error": {"message": "down"}}, 502),
    ],
    ids=["first_token_timeout", "truncated_stream", "502"],
)
def test_streams_fall_back_before_the_first_token(
    live: LiveServer, upstream: MockUpstream, fault: Reply
) -> None:
    upstream.script(PRIMARY, fault)
    upstream.script(BACKUP, sse_reply([openai_sse(openai_chunks(["fine"]))]))
    with httpx.stream(
        "POST",
        live.url + "/v1/chat/completions",
        timeout=20,
        json={**ASK, "stream": True},
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
    ) as response:
        assert response.status_code == 200
        body = response.read().decode()
    assert '"content":"fine"' in body and body.endswith("data: [DONE]\n\n")


def test_retry_after_is_honoured_then_the_primary_answers(
    live: LiveServer, upstream: MockUpstream
) -> None:
    upstream.script(
        PRIMARY,
        json_reply({"error": {"message": "wait"}}, 429, {"Retry-After": "1"}),
        json_reply(openai_completion("second try")),
    )
    started = time.monotonic()
    response = post(live)
    assert response.json()["choices"][0]["message"]["content"] == "second try"
    assert time.monotonic() - started >= 1.0
    assert hits(upstream, PRIMARY) == 2 and hits(upstream, BACKUP) == 0


def test_a_long_retry_after_skips_to_the_fallback(live: LiveServer, upstream: MockUpstream) -> None:
    upstream.script(PRIMARY, json_reply({"error": {"message": "x"}}, 429, {"Retry-After": "60"}))
    upstream.script(BACKUP, json_reply(openai_completion("from backup")))
    assert post(live).status_code == 200
    assert hits(upstream, PRIMARY) == 1


def test_client_errors_are_neither_retried_nor_hidden(
    live: LiveServer, upstream: MockUpstream
) -> None:
    upstream.script(PRIMARY, json_reply({"error": {"message": "bad tool schema"}}, 400))
    response = post(live)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "provider_bad_request"
    assert hits(upstream, PRIMARY) == 1 and hits(upstream, BACKUP) == 0


def test_the_circuit_opens_then_a_probe_closes_it(live: LiveServer, upstream: MockUpstream) -> None:
    upstream.script(PRIMARY, json_reply({"error": {"message": "down"}}, 500))
    upstream.script(BACKUP, json_reply(openai_completion("from backup")))
    statuses = [post(live).status_code for _ in range(4)]
    assert statuses == [200] * 4
    assert hits(upstream, PRIMARY) == 4  # 2 requests x 2 attempts opened the circuit
    assert post(live).status_code == 200
    assert hits(upstream, PRIMARY) == 4  # open: the primary is not called
    time.sleep(2.1)  # open_seconds passed: one half-open probe
    upstream.script(PRIMARY, json_reply(openai_completion("primary again")))
    assert post(live).json()["choices"][0]["message"]["content"] == "primary again"


EMBEDDINGS = "/v1/embeddings"
BACKUP_EMBEDDINGS = "/v1/backup/embeddings"
VECTORS = {
    "object": "list",
    "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -0.25]}],
    "model": "text-embedding-3-small",
    "usage": {"prompt_tokens": 2, "total_tokens": 2},
}


def embed(live: LiveServer, model: str) -> httpx.Response:
    return httpx.post(
        live.url + "/v1/embeddings",
        json={"model": model, "input": "hello there"},
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
        timeout=20,
    )


def test_embeddings_are_retried_after_a_429(live: LiveServer, upstream: MockUpstream) -> None:
    limited = {"error": {"message": "slow down"}}
    upstream.script(EMBEDDINGS, json_reply(limited, 429, {"Retry-After": "0"}), json_reply(VECTORS))
    answer = embed(live, "openai:text-embedding-3-small")
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"][0]["embedding"] == [0.5, -0.25]
    assert hits(upstream, EMBEDDINGS) == 2


def test_embeddings_fall_back_and_open_the_breaker(
    live: LiveServer, upstream: MockUpstream
) -> None:
    upstream.script(EMBEDDINGS, json_reply({"error": {"message": "down"}}, 503))
    upstream.script(BACKUP_EMBEDDINGS, json_reply(VECTORS))
    for _ in range(2):  # two attempts each: four failures open the primary's circuit
        assert embed(live, "resilient-embedder").status_code == 200
    assert hits(upstream, EMBEDDINGS) == 4
    assert embed(live, "resilient-embedder").status_code == 200
    assert hits(upstream, EMBEDDINGS) == 4  # the open circuit is not called
    assert hits(upstream, BACKUP_EMBEDDINGS) == 3
    text = httpx.get(
        live.url + "/metrics", headers={"authorization": f"Bearer {ADMIN_KEY}"}, timeout=10
    ).text
    assert 'keel_fallbacks_total{code="circuit_open",model="openai:text-embedding-3-small"}' in text


def test_embeddings_are_traced_like_chat(live: LiveServer, upstream: MockUpstream) -> None:
    limited = {"error": {"message": "slow down"}}
    upstream.script(EMBEDDINGS, json_reply(limited, 429, {"Retry-After": "0"}), json_reply(VECTORS))
    answer = embed(live, "openai:text-embedding-3-small")
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-keel-model"] == "openai:text-embedding-3-small"
    live.runtime.flush()
    trace, spans = live.runtime.store.traces.get(answer.headers["x-keel-trace-id"])
    assert trace is not None and trace.status == "ok"
    assert trace.caller == "key:settings:admin"
    assert trace.input_tokens > 0 and trace.cost_usd > 0  # counted by the model's tokenizer
    (span,) = spans
    assert (span.layer, span.model, span.input) == (
        "gateway",
        "openai:text-embedding-3-small",
        '["hello there"]',
    )
    assert span.attributes["gen_ai.operation.name"] == "embeddings"
    assert span.attributes["keel.model.served"] == "openai:text-embedding-3-small"
    assert (
        span.attributes["keel.embeddings.count"],
        span.attributes["keel.embeddings.dimensions"],
    ) == (1, 2)

    upstream.script(EMBEDDINGS, json_reply({"error": {"message": "no such input"}}, 400))
    refused = embed(live, "openai:text-embedding-3-small")
    assert refused.status_code == 400
    trace_id = refused.json()["error"]["details"]["trace_id"]
    live.runtime.flush()
    failed, (failed_span,) = live.runtime.store.traces.get(trace_id)
    assert failed is not None and failed.status == "error"
    assert failed.error_code == "provider_bad_request"
    assert "no such input" in (failed_span.status_message or "")
