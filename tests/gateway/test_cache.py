"""The response cache: exact match on the normalized request, bypass header, Redis backend."""

from __future__ import annotations

import json
import secrets
import time
import tracemalloc
from decimal import Decimal
from typing import Any

import httpx
import pytest

from keel.gateway.cache import MemoryCache, RedisCache, cache_key, encode_entry

from ..providers.mock_upstream import (
    MockUpstream,
    json_reply,
    openai_chunks,
    openai_completion,
    openai_sse,
    sse_reply,
)
from ..server.conftest import ADMIN_KEY, LiveServer

pytestmark = pytest.mark.integration

PRIMARY = "/v1/chat/completions"
ASK = {"model": "openai:gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def gateway_settings_extra() -> dict[str, Any]:
    return {"cache": {"enabled": True, "ttl_seconds": 60}}


def post(live: LiveServer, body: Any, **headers: str) -> httpx.Response:
    headers = {"authorization": f"Bearer {ADMIN_KEY}", **headers}
    return httpx.post(live.url + "/v1/chat/completions", json=body, headers=headers, timeout=10)


def test_identical_requests_hit_the_cache(live: LiveServer, upstream: MockUpstream) -> None:
    upstream.script(PRIMARY, json_reply(openai_completion("cached answer")))
    first = post(live, ASK)
    reordered = post(live, {"messages": ASK["messages"], "model": ASK["model"]})
    assert len(upstream.requests) == 1
    assert "x-keel-cache" not in first.headers
    assert reordered.headers["x-keel-cache"] == "hit"
    assert reordered.json()["choices"] == first.json()["choices"]
    assert reordered.json()["id"] != first.json()["id"]
    post(live, {**ASK, "temperature": 0.5})  # a different request is a miss
    post(live, ASK, **{"cache-control": "no-cache"})  # bypass
    assert len(upstream.requests) == 3


def test_key_ignores_streaming_fields_and_includes_the_version() -> None:
    assert cache_key({"a": 1, "stream": True}) == cache_key({"a": 1})
    assert cache_key({"a": 1}, "v1") != cache_key({"a": 1}, "v2")


@pytest.mark.anyio
async def test_a_full_memory_cache_holds_about_what_its_entries_weigh() -> None:
    cache = MemoryCache(ttl=60, max_entries=2000)
    answer = {"choices": [{"message": {"content": "x" * 300}}]}
    tracemalloc.start()
    try:
        for n in range(3000):  # the oldest 1,000 are evicted
            entry = encode_entry(answer | {"id": n}, "openai:gpt-4o-mini", Decimal("0.1"))
            await cache.set(cache_key({"n": n}), entry)
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(entry) < 450 and await cache.get(cache_key({"n": 2999})) == entry
    assert await cache.get(cache_key({"n": 0})) is None
    assert held < 2000 * 1024  # key, entry and bookkeeping: well under 1 KiB each


@pytest.mark.anyio
async def test_redis_backend_shares_entries() -> None:
    import redis.asyncio as redis

    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    prefix = f"keel-test:{secrets.token_hex(4)}:"
    try:
        one, two = RedisCache(client, 60, prefix), RedisCache(client, 60, prefix)
        await one.set("k", b"answer")
        assert await two.get("k") == b"answer"
        assert await two.get("other") is None
    finally:
        await client.delete(prefix + "k")
        await client.aclose()


def test_pipeline_answers_are_cached_per_version(live: LiveServer) -> None:
    body = {
        "model": "pipeline/summarize",
        "messages": [{"role": "user", "content": '{"text": "Keel wraps models."}'}],
    }
    first = post(live, body)
    again = post(live, body)
    assert first.status_code == 200 and again.headers["x-keel-cache"] == "hit"
    assert again.json()["keel"]["version"] == first.json()["keel"]["version"]


STREAM_ASK = {**ASK, "stream": True, "stream_options": {"include_usage": True}}


def sse_data(response: httpx.Response) -> list[Any]:
    """The JSON of each ``data:`` event, and the literal ``[DONE]`` at the end."""
    events = []
    for line in response.text.splitlines():
        if line.startswith("data: "):
            payload = line[len("data: ") :]
            events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


def streamed_text(events: list[Any]) -> str:
    return "".join(
        e["choices"][0]["delta"].get("content") or ""
        for e in events
        if isinstance(e, dict) and e.get("choices")
    )


def metric(live: LiveServer, name: str) -> float:
    text = httpx.get(
        live.url + "/metrics", headers={"authorization": f"Bearer {ADMIN_KEY}"}, timeout=10
    ).text
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name))


def test_a_hit_bills_nothing_and_records_what_it_saved(
    live: LiveServer, upstream: MockUpstream
) -> None:
    upstream.script(PRIMARY, json_reply(openai_completion("cached answer")))
    first = post(live, ASK)
    hit = post(live, ASK)
    assert hit.headers["x-keel-cache"] == "hit"
    # gpt-4o-mini list price: 12 tokens in at $0.15/M and 3 out at $0.60/M
    original = 12 * 0.15e-6 + 3 * 0.60e-6
    assert metric(live, "keel_cost_usd_total") == pytest.approx(original)
    assert metric(live, "keel_cache_saved_usd_total") == pytest.approx(original)
    spans = wait_for_spans(live, hit.headers["x-keel-trace-id"])
    assert spans[0]["attributes"]["keel.cache.hit"] is True
    assert spans[0]["attributes"]["keel.cache.saved_usd"] == "0.0000036"
    assert spans[0]["cost_usd"] == "0E-9" or float(spans[0]["cost_usd"]) == 0
    billed = wait_for_spans(live, first.headers["x-keel-trace-id"])
    assert float(billed[0]["cost_usd"]) == pytest.approx(original)


def wait_for_spans(live: LiveServer, trace_id: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 10
    while True:
        found = httpx.get(
            f"{live.url}/api/traces/{trace_id}",
            headers={"authorization": f"Bearer {ADMIN_KEY}"},
            timeout=10,
        ).json()["spans"]
        if found or time.monotonic() > deadline:
            return list(found)
        time.sleep(0.05)


def test_a_completed_stream_is_cached_and_replayed(
    live: LiveServer, upstream: MockUpstream
) -> None:
    call = {
        "index": 0,
        "id": "call_7",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":'},
    }
    rest = {"index": 0, "function": {"arguments": '"Rome"}'}}
    chunks = openai_chunks(["Hel", "lo"], tool_calls=(call, rest))
    upstream.script(PRIMARY, sse_reply([openai_sse(chunks)]))
    first = post(live, STREAM_ASK)
    again = post(live, STREAM_ASK)
    assert len(upstream.requests) == 1
    assert "x-keel-cache" not in first.headers and again.headers["x-keel-cache"] == "hit"
    assert again.headers["content-type"].startswith("text/event-stream")
    replayed = sse_data(again)
    assert streamed_text(replayed) == streamed_text(sse_data(first)) == "Hello"
    calls = [
        c
        for e in replayed
        if isinstance(e, dict) and e.get("choices")
        for c in e["choices"][0]["delta"].get("tool_calls") or ()
    ]
    assert calls == [
        {
            "index": 0,
            "id": "call_7",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'},
        }
    ]
    assert replayed[-2]["usage"]["completion_tokens"] == 2 and replayed[-1] == "[DONE]"
    plain = post(live, ASK)  # the same request without streaming is served from the stream
    assert plain.headers["x-keel-cache"] == "hit" and len(upstream.requests) == 1
    message = plain.json()["choices"][0]["message"]
    assert message["content"] == "Hello"
    assert message["tool_calls"][0]["function"]["arguments"] == '{"city":"Rome"}'


def test_a_plain_answer_is_replayed_to_a_streaming_request(
    live: LiveServer, upstream: MockUpstream
) -> None:
    upstream.script(PRIMARY, json_reply(openai_completion("from cache")))
    post(live, ASK)
    replayed = post(live, STREAM_ASK)
    assert replayed.headers["x-keel-cache"] == "hit" and len(upstream.requests) == 1
    events = sse_data(replayed)
    assert streamed_text(events) == "from cache"
    assert events[-2]["usage"]["total_tokens"] == 15 and events[-1] == "[DONE]"


def test_a_broken_stream_is_not_cached(live: LiveServer, upstream: MockUpstream) -> None:
    upstream.script(PRIMARY, sse_reply([openai_sse(openai_chunks(["par"]), done=False)]))
    broken = post(live, STREAM_ASK)
    assert any(isinstance(e, dict) and "error" in e for e in sse_data(broken))
    post(live, STREAM_ASK)
    assert len(upstream.requests) == 2
