"""A gateway request's trace is the same whichever way its root span is made.

With the store as the only span processor the gateway builds span records directly
(``RecordSpan``); with any other processor it uses SDK spans. The same requests (plain,
streamed, failed, served from cache, under a caller's ``traceparent``) are sent once each way
and the stored spans and traces must match field for field, ids and times aside.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict
from typing import Any

import httpx
import pytest
from aiohttp import web
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from keel.core.errors import NotFoundError
from keel.telemetry import KeelTracerProvider

from ..providers.mock_upstream import (
    MockUpstream,
    Reply,
    json_reply,
    openai_chunks,
    openai_completion,
    openai_sse,
    sse_reply,
)
from ..server.conftest import ADMIN_KEY, LiveServer

pytestmark = pytest.mark.integration


@pytest.fixture
def gateway_settings_extra() -> dict[str, Any]:
    return {"cache": {"enabled": True}}


def plain_or_stream() -> Reply:
    plain = json_reply(openai_completion("Hello!"))
    stream = sse_reply([openai_sse(openai_chunks(["Hel", "lo!"]))])

    async def reply(request: web.Request, closing: asyncio.Event) -> web.StreamResponse:
        asked = await request.json()
        return await (stream if asked.get("stream") else plain)(request, closing)

    return reply


def send(live: LiveServer, phase: str) -> dict[str, str]:
    """The phase's requests; returns the request id of each case (traces are found by it)."""
    client = httpx.Client(
        base_url=live.url, headers={"authorization": f"Bearer {ADMIN_KEY}"}, timeout=20
    )
    number = {"uno": 1, "dos": 2}[phase]
    sampled, unsampled = f"{number:032x}", f"{number + 10:032x}"

    def ask(
        case: str,
        model: str = "openai:gpt-4o-mini",
        content: str = "",
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> httpx.Response:
        text = f"phase {phase}: {content or case}"
        body = {"model": model, "messages": [{"role": "user", "content": text}], **extra}
        sent = {"x-request-id": f"{case}-{phase}", **(headers or {})}
        return client.post("/v1/chat/completions", json=body, headers=sent)

    asked = ask("unsampled", headers={"traceparent": f"00-{unsampled}-00000000000000aa-00"})
    assert asked.status_code == 200
    assert ask("plain").status_code == 200
    assert ask("cache-fill").status_code == 200
    hit = ask("cached", content="cache-fill")
    assert hit.headers["x-keel-cache"] == "hit"
    streamed = ask("stream", stream=True, stream_options={"include_usage": True})
    assert streamed.status_code == 200 and "[DONE]" in streamed.text
    assert streamed.headers["x-keel-trace-id"] == stored(live, f"stream-{phase}", 1)[1]["trace_id"]
    failed = ask("failed", model="backup:gpt-4o-mini")
    assert failed.status_code == 400, failed.text
    parented = ask("parented", headers={"traceparent": f"00-{sampled}-00000000000000bb-01"})
    assert parented.status_code == 200
    ids = {case: f"{case}-{phase}" for case in ("plain", "cached", "stream", "failed")}
    return ids | {"parented": sampled, "unsampled": unsampled}


def stored(live: LiveServer, request_id: str, count: int) -> list[dict[str, Any]]:
    """The spans of a request (at least ``count``), oldest first, as plain dicts."""
    deadline = time.monotonic() + 10
    while True:
        live.runtime.flush()
        try:
            trace, spans = live.runtime.store.traces.get(request_id)
        except NotFoundError:
            trace, spans = None, []
        if (trace is not None and len(spans) >= count) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert trace is not None, f"no trace for {request_id}"
    return [{"trace": asdict(trace)}, *(asdict(span) for span in spans)]


def comparable(rows: list[dict[str, Any]], phase: str) -> list[dict[str, Any]]:
    """Rows with ids, times and the phase's own words taken out."""
    out = []
    for row in rows:
        kind, values = next(iter(row.items())) if "trace" in row else ("span", row)
        values = {
            key: value
            for key, value in values.items()
            if key not in ("trace_id", "span_id", "start_ns", "end_ns", "correlation_id")
        }
        values["parent_span_id"] = values.get("parent_span_id") is not None
        out.append({kind: _unphased(values, phase)})
    return out


def _unphased(value: Any, phase: str) -> Any:
    if isinstance(value, str):
        return value.replace(f"phase {phase}", "phase N").replace(f"-{phase}", "-N")
    if isinstance(value, dict):
        return {key: _unphased(item, phase) for key, item in value.items()}
    return value


def test_record_spans_store_what_sdk_spans_store(live: LiveServer, upstream: MockUpstream) -> None:
    upstream.script("/v1/chat/completions", plain_or_stream())
    refusal = {"error": {"message": "bad request", "type": "invalid_request_error"}}
    upstream.script("/v1/backup/chat/completions", json_reply(refusal, status=400))
    provider = live.runtime.tracer_provider
    assert isinstance(provider, KeelTracerProvider)
    assert provider.sole_store_processor is not None  # phase 1: records made directly

    direct = send(live, "uno")
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    assert provider.sole_store_processor is None  # phase 2: SDK spans
    through_sdk = send(live, "dos")

    exported = {span.name for span in exporter.get_finished_spans()}
    assert "gateway openai:gpt-4o-mini" in exported  # phase 2 went through the SDK
    for case in ("plain", "cached", "stream", "failed", "parented"):
        first = stored(live, direct[case], 1)
        second = stored(live, through_sdk[case], 1)
        assert comparable(first, "uno") == comparable(second, "dos"), case
    failed = stored(live, direct["failed"], 1)
    assert failed[0]["trace"]["status"] == "error"
    assert failed[0]["trace"]["error_code"] == "provider_bad_request"
    assert "bad request" in failed[1]["status_message"]
    for phase, ids in (("uno", direct), ("dos", through_sdk)):
        parented = stored(live, ids["parented"], 1)
        assert parented[1]["trace_id"] == ids["parented"]  # the caller's trace
        assert parented[1]["parent_span_id"] == "00000000000000bb", phase
        with pytest.raises(NotFoundError):  # the caller did not sample it: nothing stored
            live.runtime.store.traces.get(ids["unsampled"])
