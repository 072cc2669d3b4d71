"""The runner: four layer spans under one trace, correlation ids, fallbacks, failures."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import pytest
from opentelemetry.trace import StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from keel.core.errors import (
    InvalidInputError,
    OutputParseError,
    ProviderHTTPError,
    ProviderTimeout,
    TemplateError,
)
from keel.core.messages import ChatResponse
from keel.core.usage import Price, Usage
from keel.pipeline.steps import RunContext

from .helpers import Harness, compile_spec, triage_spec

TICKET = {"subject": "Refund", "body": "I was charged twice"}
LAYERS = ["preprocess", "prompt", "model", "postprocess"]


def run(harness: Harness, spec: dict, data: object, context: RunContext | None = None):
    return asyncio.run(harness.runner.run(compile_spec(spec), data, context))


def test_a_run_leaves_one_span_per_layer_under_one_trace() -> None:
    harness = Harness()
    harness.provider.scripted("m", ['{"label": "billing", "confidence": 0.9}'])
    spec = triage_spec(model={"id": "testing:m", "params": {"temperature": 0}})
    result = run(harness, spec, TICKET)

    assert result.decision is not None
    assert result.decision.decision == "queue:billing"
    spans = harness.spans()
    assert {s.context.trace_id for s in spans} == {int(result.trace_id, 16)}
    root = next(s for s in spans if s.attributes.get("keel.root"))
    children = [s for s in spans if s is not root]
    assert [s.attributes["keel.layer"] for s in sorted(children, key=lambda s: s.start_time)] == [
        *LAYERS
    ]
    assert all(s.parent.span_id == root.context.span_id for s in children)
    layers = harness.by_layer()
    assert json.loads(layers["preprocess"].attributes["keel.input"]) == TICKET
    assert json.loads(layers["preprocess"].attributes["keel.output"])["title"] == "Refund"
    messages = json.loads(layers["prompt"].attributes["keel.output"])
    assert messages[-1] == {"role": "user", "content": "Refund: I was charged twice"}
    assert "billing, technical" in messages[0]["content"]
    model = layers["model"]
    assert model.name == "chat testing:m"
    assert model.attributes["gen_ai.request.model"] == "testing:m"
    assert model.attributes["gen_ai.request.temperature"] == 0
    assert json.loads(model.attributes["keel.output"]).startswith('{"label"')
    assert json.loads(layers["postprocess"].attributes["keel.output"])["decision"] == (
        "queue:billing"
    )
    assert root.attributes["keel.decision"] == "queue:billing"


def test_low_confidence_falls_back_to_the_default_decision() -> None:
    harness = Harness()
    harness.provider.scripted("m", ['{"label": "billing", "confidence": 0.3}'])
    result = run(harness, triage_spec(model={"id": "testing:m"}), TICKET)
    assert result.decision is not None
    assert (result.decision.decision, result.decision.reason) == ("queue:human", "below_threshold")


def test_usage_and_cost_are_recorded_from_the_profile_price() -> None:
    harness = Harness()
    harness.provider.price = Price.of(2, 8)
    harness.provider.scripted(
        "m", [ChatResponse('{"label":"technical","confidence":1}', "stop", Usage(1000, 500), "v7")]
    )
    result = run(harness, triage_spec(model={"id": "testing:m"}), TICKET)
    assert result.usage == Usage(1000, 500)
    assert result.cost_usd == Decimal("0.006")
    assert result.model_version == "v7"
    model = harness.by_layer()["model"]
    assert model.attributes["gen_ai.usage.input_tokens"] == 1000
    assert model.attributes["keel.cost_usd"] == "0.006"
    assert model.attributes["gen_ai.response.model"] == "v7"


def test_request_id_becomes_the_correlation_id() -> None:
    harness = Harness()
    result = run(harness, triage_spec(), TICKET, RunContext(correlation_id="req-42"))
    assert result.correlation_id == "req-42"
    again = run(harness, triage_spec(), TICKET, RunContext(correlation_id="req-42"))
    assert again.trace_id == result.trace_id  # the same request id lands in the same trace
    root = next(s for s in harness.spans() if s.attributes.get("keel.root"))
    assert root.attributes["keel.correlation_id"] == "req-42"


def test_traceparent_joins_the_callers_trace() -> None:
    harness = Harness()
    trace_hex = "4bf92f3577b34da6a3ce929d0e0e4736"
    parent = TraceContextTextMapPropagator().extract(
        {"traceparent": f"00-{trace_hex}-00f067aa0ba902b7-01"}
    )
    result = run(harness, triage_spec(), TICKET, RunContext(parent=parent))
    assert result.trace_id == trace_hex
    assert result.correlation_id == trace_hex
    root = next(s for s in harness.spans() if s.attributes.get("keel.root"))
    assert root.parent is not None
    assert root.parent.span_id == 0x00F067AA0BA902B7


def test_fallback_model_answers_when_the_first_fails() -> None:
    harness = Harness()
    harness.provider.scripted("primary", [ProviderHTTPError("down", upstream_status=503)])
    harness.provider.scripted("backup", ['{"label": "technical", "confidence": 0.99}'])
    spec = triage_spec(model={"id": "testing:primary", "fallbacks": ["testing:backup"]})
    result = run(harness, spec, TICKET)
    assert result.model == "testing:backup"
    model = harness.by_layer()["model"]
    assert model.attributes["keel.model.attempts"] == 2
    assert [e.name for e in model.events] == ["model_attempt_failed"]
    assert model.events[0].attributes["code"] == "provider_server_error"


def test_when_every_model_fails_the_error_names_each_attempt() -> None:
    harness = Harness()
    harness.provider.scripted("a", [ProviderTimeout("slow")])
    harness.provider.scripted("b", [ProviderHTTPError("bad key", upstream_status=401)])
    spec = triage_spec(model={"id": "testing:a", "fallbacks": ["testing:b"]})
    with pytest.raises(ProviderHTTPError) as info:
        run(harness, spec, TICKET)
    assert info.value.code == "provider_auth_failed"
    assert info.value.details["attempts"] == [
        {"model": "testing:a", "code": "provider_timeout"},
        {"model": "testing:b", "code": "provider_auth_failed"},
    ]
    root = next(s for s in harness.spans() if s.attributes.get("keel.root"))
    assert root.status.status_code is StatusCode.ERROR
    assert root.attributes["keel.error.code"] == "provider_auth_failed"
    assert info.value.details["trace_id"] == format(root.context.trace_id, "032x")


def test_pipeline_timeout_cuts_a_slow_model() -> None:
    harness = Harness()

    async def slow(messages: object, params: object) -> str:
        await asyncio.sleep(5)
        return "late"

    harness.provider.function("slow", slow)
    spec = triage_spec(model={"id": "testing:slow", "timeout_s": 0.05})
    with pytest.raises(ProviderTimeout) as info:
        run(harness, spec, TICKET)
    assert "0.05 s" in info.value.message


def test_input_schema_violation_fails_in_preprocess_without_a_model_call() -> None:
    harness = Harness()
    model = harness.provider.scripted("m", ["unused"])
    with pytest.raises(InvalidInputError) as info:
        run(harness, triage_spec(model={"id": "testing:m"}), {"subject": 3})
    assert info.value.code == "input_schema_violation"
    assert any("body" in p for p in info.value.details["problems"])
    assert model.requests == []
    layers = harness.by_layer()
    assert layers["preprocess"].status.status_code is StatusCode.ERROR
    assert "model" not in layers


def test_prompt_over_the_context_window_is_refused_before_the_call() -> None:
    harness = Harness()
    harness.provider.add("tiny", harness.provider.scripted("tiny", ["x"]))
    harness.provider._models["tiny"]._profile = type(harness.provider.profile("tiny"))(
        name="tiny", context_window=40
    )
    with pytest.raises(InvalidInputError) as info:
        run(harness, triage_spec(model={"id": "testing:tiny"}), {**TICKET, "body": "word " * 200})
    assert info.value.code == "context_window_exceeded"


def test_template_render_failure_is_a_template_error() -> None:
    harness = Harness()
    spec = triage_spec(prompt={"user": "{{ missing_variable }}"})
    with pytest.raises(TemplateError) as info:
        run(harness, spec, TICKET)
    assert info.value.code == "template_render_failed"
    assert "missing_variable" in info.value.message


def test_json_output_is_validated_against_its_schema() -> None:
    harness = Harness()
    harness.provider.scripted("m", ['```json\n{"summary": 3}\n```'])
    spec = triage_spec(
        model={"id": "testing:m"},
        output={
            "type": "json",
            "schema": {"type": "object", "properties": {"summary": {"type": "string"}}},
        },
    )
    with pytest.raises(OutputParseError) as info:
        run(harness, spec, TICKET)
    assert info.value.code == "output_schema_violation"


def test_content_capture_can_be_switched_off() -> None:
    harness = Harness(capture=False)
    run(harness, triage_spec(), TICKET)
    assert not any("keel.input" in (s.attributes or {}) for s in harness.spans())


def test_a_spec_without_a_model_uses_the_default_model() -> None:
    harness = Harness(default_model="testing:fallback-default")
    harness.provider.scripted("fallback-default", ['{"label": "billing", "confidence": 1}'])
    spec = triage_spec(model={"params": {"max_tokens": 8}})
    result = run(harness, spec, TICKET)
    assert result.model == "testing:fallback-default"
