"""`/metrics` after real traffic: requests by route/model/pipeline/status, tokens, cost per
key, retries, fallbacks, circuit state, rate-limit rejections and the span queue."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from ..providers.mock_upstream import MockUpstream, json_reply, openai_completion
from ..server.conftest import ADMIN_KEY, LiveServer

pytestmark = pytest.mark.integration


@pytest.fixture
def gateway_settings_extra() -> dict[str, Any]:
    # One dollar per input token makes costs easy to check.
    price = {"input_per_mtok": "1000000", "output_per_mtok": "0"}
    return {"retry": {"max_attempts": 2, "base_delay": 0.01}, "prices": {"testing:echo": price}}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: dict[Any, float], name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in found.items() if n == name and wanted <= ls)


def test_metrics_reflect_traffic(live: LiveServer, upstream: MockUpstream) -> None:
    admin = httpx.Client(base_url=live.url, headers={"authorization": f"Bearer {ADMIN_KEY}"})
    chat = {"model": "testing:echo", "messages": [{"role": "user", "content": "hi there"}]}
    answers = [admin.post("/v1/chat/completions", json=chat) for _ in range(3)]
    assert all(a.status_code == 200 for a in answers)
    prompt_tokens = sum(a.json()["usage"]["prompt_tokens"] for a in answers)
    invoked = admin.post("/v1/pipelines/summarize/invoke", json={"input": {"text": "abc"}})
    assert invoked.status_code == 200
    upstream.script("/v1/chat/completions", json_reply({"error": {"message": "x"}}, 500))
    upstream.script("/v1/backup/chat/completions", json_reply(openai_completion("ok")))
    assert (
        admin.post("/v1/chat/completions", json={**chat, "model": "resilient"}).status_code == 200
    )
    limited = admin.post("/api/keys", json={"name": "tiny", "limits": {"rpm": 1}}).json()["key"]
    for _ in range(2):
        httpx.post(
            live.url + "/v1/chat/completions",
            json=chat,
            headers={"authorization": f"Bearer {limited}"},
        )
    live.runtime.flush()

    scraped = admin.get("/metrics")
    assert scraped.status_code == 200
    found = samples(scraped.text)
    route = "/v1/chat/completions"
    assert value(found, "keel_requests_total", route=route, model="testing:echo", status="200") == 4
    assert value(found, "keel_request_seconds_count", route=route, status="200") >= 5
    assert value(found, "keel_requests_total", pipeline="summarize", status="200") == 1
    assert value(found, "keel_tokens_total", direction="in", model="testing:echo") > 0
    assert value(found, "keel_retries_total", model="openai:gpt-4o-mini") == 1
    assert value(found, "keel_fallbacks_total", model="openai:gpt-4o-mini") == 1
    assert value(found, "keel_rate_limit_rejections_total", code="rate_limited") == 1
    assert value(found, "keel_circuit_state", provider="openai") == 0
    assert (
        value(
            found,
            "keel_cost_usd_total",
            key="key:settings:admin",
            model="testing:echo",
            pipeline="",
        )
        == prompt_tokens
    )
    trace, _ = live.runtime.store.traces.get(answers[0].headers["x-keel-trace-id"])
    assert trace is not None and trace.cost_usd == answers[0].json()["usage"]["prompt_tokens"]
    assert ("keel_span_queue_depth", frozenset()) in found
    assert ("keel_spans_dropped", frozenset()) in found


def test_service_keys_cannot_scrape(live: LiveServer) -> None:
    admin = httpx.Client(base_url=live.url, headers={"authorization": f"Bearer {ADMIN_KEY}"})
    key = admin.post("/api/keys", json={"name": "svc"}).json()["key"]
    refused = httpx.get(live.url + "/metrics", headers={"authorization": f"Bearer {key}"})
    assert refused.status_code == 403
