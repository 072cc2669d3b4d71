"""SDK spans become Keel records: gen_ai.* and keel.* attributes fill their columns."""

from __future__ import annotations

from decimal import Decimal

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from keel.core import tracing as attr
from keel.telemetry import to_records

Recorder = tuple[TracerProvider, InMemorySpanExporter]


def _run(recorder: Recorder) -> list[ReadableSpan]:
    provider, exporter = recorder
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("pipeline triage") as root:
        root.set_attributes(
            {
                attr.ROOT: True,
                attr.CORRELATION_ID: "req-42",
                attr.PIPELINE: "triage",
                attr.PIPELINE_VERSION: "ab12cd34",
                attr.PIPELINE_LABEL: "production",
                attr.CALLER: "key:support",
                attr.DECISION: "escalate",
                attr.GEN_AI_USAGE_INPUT_TOKENS: 120,
                attr.GEN_AI_USAGE_OUTPUT_TOKENS: 30,
                attr.COST_USD: "0.000450000",
            }
        )
        with tracer.start_as_current_span("chat gpt-4o-mini") as model:
            model.set_attributes(
                {
                    attr.LAYER: "model",
                    attr.INPUT: '{"messages": [{"role": "user", "content": "hi"}]}',
                    attr.OUTPUT: '{"text": "hello"}',
                    attr.GEN_AI_REQUEST_MODEL: "openai:gpt-4o-mini",
                    attr.GEN_AI_RESPONSE_MODEL: "gpt-4o-mini-2024-07-18",
                    attr.GEN_AI_RESPONSE_SYSTEM_FINGERPRINT: "fp_44709d6fcb",
                    attr.GEN_AI_USAGE_INPUT_TOKENS: 120,
                    attr.GEN_AI_USAGE_OUTPUT_TOKENS: 30,
                    attr.COST_USD: "0.00045",
                    attr.GEN_AI_REQUEST_TEMPERATURE: 0.2,
                    attr.GEN_AI_RESPONSE_FINISH_REASONS: ("stop",),
                    attr.ATTEMPTS: 2,
                }
            )
    return list(exporter.get_finished_spans())


def test_model_span_columns(recorder: Recorder) -> None:
    spans, _ = to_records(_run(recorder))
    model = next(s for s in spans if s.layer == "model")
    root = next(s for s in spans if s.parent_span_id is None)
    assert model.parent_span_id == root.span_id
    assert model.trace_id == root.trace_id
    assert len(model.trace_id) == 32
    assert len(model.span_id) == 16
    assert model.input == '{"messages": [{"role": "user", "content": "hi"}]}'
    assert model.output == '{"text": "hello"}'
    assert (model.input_tokens, model.output_tokens) == (120, 30)
    assert model.cost_usd == Decimal("0.00045")
    assert model.model == "openai:gpt-4o-mini"
    assert model.model_version == "gpt-4o-mini-2024-07-18 / fp=fp_44709d6fcb"
    assert model.status == "ok"
    assert model.start_ns <= model.end_ns
    # Promoted attributes leave the attribute bag; the rest stay, sequences as lists.
    assert model.attributes == {
        attr.GEN_AI_REQUEST_TEMPERATURE: 0.2,
        attr.GEN_AI_RESPONSE_FINISH_REASONS: ["stop"],
        attr.ATTEMPTS: 2,
    }


def test_root_span_yields_the_trace(recorder: Recorder) -> None:
    spans, traces = to_records(_run(recorder))
    assert len(spans) == 2
    [trace] = traces
    root = next(s for s in spans if s.parent_span_id is None)
    assert trace.trace_id == root.trace_id
    assert trace.correlation_id == "req-42"
    assert trace.name == "pipeline triage"
    assert (trace.pipeline, trace.pipeline_version, trace.label) == (
        "triage",
        "ab12cd34",
        "production",
    )
    assert trace.caller == "key:support"
    assert trace.decision == "escalate"
    assert (trace.input_tokens, trace.output_tokens) == (120, 30)
    assert trace.cost_usd == Decimal("0.000450000")
    assert (trace.start_ns, trace.end_ns) == (root.start_ns, root.end_ns)
    assert trace.status == "ok"
    assert root.attributes[attr.PIPELINE] == "triage"


def test_correlation_id_defaults_to_trace_id(recorder: Recorder) -> None:
    provider, exporter = recorder
    with provider.get_tracer("t").start_as_current_span("run") as span:
        span.set_attribute(attr.ROOT, True)
    _, [trace] = to_records(exporter.get_finished_spans())
    assert trace.correlation_id == trace.trace_id
    assert (trace.input_tokens, trace.cost_usd, trace.pipeline) == (0, Decimal(0), None)


def test_only_root_spans_make_traces(recorder: Recorder) -> None:
    provider, exporter = recorder
    with provider.get_tracer("t").start_as_current_span("loose") as span:
        span.set_attribute(attr.ROOT, "yes")  # not the boolean True
    spans, traces = to_records(exporter.get_finished_spans())
    assert len(spans) == 1
    assert traces == []


def test_error_status_and_exception_message(recorder: Recorder) -> None:
    provider, exporter = recorder
    tracer = provider.get_tracer("t")

    def fail() -> None:
        with tracer.start_as_current_span("root") as span:
            span.set_attributes({attr.ROOT: True, attr.ERROR_CODE: "provider_timeout"})
            raise TimeoutError("upstream took 30s")

    with pytest.raises(TimeoutError):
        fail()
    [record], [trace] = to_records(exporter.get_finished_spans())
    assert record.status == "error"
    assert record.status_message is not None
    assert "TimeoutError" in record.status_message
    assert "upstream took 30s" in record.status_message
    assert (trace.status, trace.error_code) == ("error", "provider_timeout")


def test_explicit_status_description_wins(recorder: Recorder) -> None:
    provider, exporter = recorder
    with provider.get_tracer("t").start_as_current_span("s") as span:
        span.set_status(StatusCode.ERROR, "guardrail blocked the output")
    [record], _ = to_records(exporter.get_finished_spans())
    assert record.status_message == "guardrail blocked the output"


def test_fingerprint_without_response_model(recorder: Recorder) -> None:
    provider, exporter = recorder
    with provider.get_tracer("t").start_as_current_span("s") as span:
        span.set_attribute(attr.GEN_AI_RESPONSE_SYSTEM_FINGERPRINT, "fp_1")
    [record], _ = to_records(exporter.get_finished_spans())
    assert record.model_version == "fp=fp_1"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        (attr.COST_USD, "about a cent"),
        (attr.COST_USD, "1e12"),
        (attr.COST_USD, "NaN"),
        (attr.GEN_AI_USAGE_INPUT_TOKENS, "many"),
        (attr.GEN_AI_USAGE_INPUT_TOKENS, 1.5),
    ],
)
def test_unusable_values_stay_attributes(recorder: Recorder, key: str, value: object) -> None:
    provider, exporter = recorder
    with provider.get_tracer("t").start_as_current_span("s") as span:
        span.set_attribute(key, value)  # type: ignore[arg-type]
    [record], _ = to_records(exporter.get_finished_spans())
    assert record.attributes == {key: value}
    assert record.cost_usd == Decimal(0)
    assert record.input_tokens == 0


def test_values_are_made_storable(recorder: Recorder) -> None:
    provider, exporter = recorder
    with provider.get_tracer("t").start_as_current_span("s") as span:
        span.set_attributes(
            {
                attr.INPUT: "nul\x00byte",
                "score": float("nan"),
                "huge": 2**70,
                "seq": (1, 2),
                "text": "a\x00b",
                "escaped": "caf\udce9?",  # a lone surrogate, as surrogateescape leaves it
                attr.GEN_AI_USAGE_OUTPUT_TOKENS: "17",
            }
        )
    [record], _ = to_records(exporter.get_finished_spans())
    assert record.input == "nul\ufffdbyte"
    assert record.output_tokens == 17
    assert record.attributes == {
        "score": "nan",
        "huge": str(2**70),
        "seq": [1, 2],
        "text": "a\ufffdb",
        "escaped": "caf\ufffd?",
    }
