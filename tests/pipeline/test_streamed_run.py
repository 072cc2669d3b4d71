"""A streamed run reads its model as a stream, parses the whole answer as usual, and
records when the first token came (``RunResult.ttft_ms``, root attribute ``keel.ttft_ms``)."""

from __future__ import annotations

import asyncio

import pytest

from keel.core.errors import ProviderHTTPError, ProviderTimeout
from keel.core.messages import ChatChunk
from keel.core.usage import Usage
from keel.pipeline.steps import RunContext

from .helpers import Harness, compile_spec, triage_spec

TICKET = {"subject": "Refund", "body": "I was charged twice"}
ANSWER = ['{"label": ', '"billing", ', '"confidence": 0.9}']


def chunks() -> list[ChatChunk]:
    return [ChatChunk(p) for p in ANSWER] + [
        ChatChunk(finish_reason="stop", usage=Usage(11, 7), model="m-2024", response_id="r1")
    ]


def run(harness: Harness, spec: dict, stream: bool):  # type: ignore[no-untyped-def]
    compiled = compile_spec(spec)
    return asyncio.run(harness.runner.run(compiled, TICKET, RunContext(stream=stream)))


def root(harness: Harness):  # type: ignore[no-untyped-def]
    return next(s for s in harness.spans() if s.attributes.get("keel.root"))


def test_a_streamed_run_parses_the_whole_answer_and_times_its_first_token() -> None:
    harness = Harness()
    harness.provider.scripted("m", [chunks()])
    result = run(harness, triage_spec(model={"id": "testing:m"}), stream=True)
    assert result.text == "".join(ANSWER)
    assert result.decision is not None and result.decision.label == "billing"
    assert result.usage == Usage(11, 7)
    assert result.model_version == "m-2024"
    assert result.ttft_ms is not None and 0 < result.ttft_ms <= result.latency_ms
    assert root(harness).attributes["keel.ttft_ms"] == pytest.approx(result.ttft_ms, abs=1e-3)
    assert harness.by_layer()["model"].attributes["gen_ai.response.id"] == "r1"


def test_the_first_token_is_the_first_chunk_with_text() -> None:
    """A model that waits before its first word: ttft covers the wait, not the whole run."""
    harness = Harness()

    async def answer(messages: object, params: object) -> str:
        return "unused"

    model = harness.provider.function("slow_start", answer)

    async def stream(request: object):  # type: ignore[no-untyped-def]
        yield ChatChunk("")  # a role-only chunk carries no token
        await asyncio.sleep(0.05)
        yield ChatChunk('{"label": "billing", "confidence": 0.9}')
        await asyncio.sleep(0.05)
        yield ChatChunk(finish_reason="stop")

    model.stream = stream  # type: ignore[method-assign]
    result = run(harness, triage_spec(model={"id": "testing:slow_start"}), stream=True)
    assert result.ttft_ms is not None
    assert 50 <= result.ttft_ms < result.latency_ms - 40


def test_an_answered_run_has_no_first_token_time() -> None:
    harness = Harness()
    harness.provider.scripted("m", ['{"label": "billing", "confidence": 0.9}'])
    result = run(harness, triage_spec(model={"id": "testing:m"}), stream=False)
    assert result.ttft_ms is None
    assert "keel.ttft_ms" not in root(harness).attributes


def test_a_streamed_run_falls_back_and_times_out_like_an_answered_one() -> None:
    harness = Harness()
    harness.provider.scripted("down", [ProviderHTTPError("down", upstream_status=503)])
    harness.provider.scripted("backup", [chunks()])
    spec = triage_spec(model={"id": "testing:down", "fallbacks": ["testing:backup"]})
    result = run(harness, spec, stream=True)
    assert result.model == "testing:backup" and result.ttft_ms is not None

    slow = Harness()

    async def never(messages: object, params: object) -> str:
        await asyncio.sleep(5)
        return "late"

    slow.provider.function("slow", never)
    with pytest.raises(ProviderTimeout):
        run(slow, triage_spec(model={"id": "testing:slow", "timeout_s": 0.05}), stream=True)
