"""Property tests: records survive the store unchanged; conversion never breaks a batch."""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterator
from dataclasses import fields, replace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator

from keel.core import tracing as attr
from keel.core.tracing import SpanRecord, TraceRecord
from keel.store import Store
from keel.telemetry import to_records

# Text the store can hold on every backend: no NUL (Postgres) and no lone surrogates (UTF-8).
text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=40)
optional_text = st.none() | text
int64 = st.integers(-(2**63), 2**63 - 1)
nanoseconds = st.integers(0, 2**63 - 1)
cost = st.decimals(
    min_value="-999999999.999999999",
    max_value="999999999.999999999",
    places=9,
    allow_nan=False,
    allow_infinity=False,
)
json_value = st.recursive(
    st.none() | st.booleans() | int64 | st.floats(allow_nan=False, allow_infinity=False) | text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(text, inner, max_size=4),
    max_leaves=12,
)
status = st.sampled_from(["ok", "error"])

span_records = st.builds(
    SpanRecord,
    trace_id=st.just(""),
    span_id=st.just(""),
    parent_span_id=st.none() | st.text("0123456789abcdef", min_size=16, max_size=16),
    name=text,
    start_ns=nanoseconds,
    end_ns=nanoseconds,
    status=status,
    status_message=optional_text,
    layer=optional_text,
    input=optional_text,
    output=optional_text,
    input_tokens=int64,
    output_tokens=int64,
    cost_usd=cost,
    model=optional_text,
    model_version=optional_text,
    attributes=st.dictionaries(text, json_value, max_size=6),
)
trace_records = st.builds(
    TraceRecord,
    trace_id=st.just(""),
    correlation_id=text,
    name=text,
    start_ns=nanoseconds,
    end_ns=nanoseconds,
    status=status,
    error_code=optional_text,
    pipeline=optional_text,
    pipeline_version=optional_text,
    label=optional_text,
    caller=optional_text,
    input_tokens=int64,
    output_tokens=int64,
    cost_usd=cost,
    decision=optional_text,
)


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path_factory.mktemp('roundtrip') / 'keel.db'}")
    yield opened
    opened.close()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spans=st.lists(span_records, min_size=1, max_size=4), trace=trace_records)
def test_records_survive_the_store(
    shared_store: Store, spans: list[SpanRecord], trace: TraceRecord
) -> None:
    trace_id = secrets.token_hex(16)  # fresh ids: the store keeps the first write of an id
    spans = [replace(s, trace_id=trace_id, span_id=secrets.token_hex(8)) for s in spans]
    trace = replace(trace, trace_id=trace_id)
    shared_store.traces.write(spans, [trace])
    got, got_spans = shared_store.traces.get(trace_id)
    assert got == trace
    assert sorted(got_spans, key=_key) == sorted(spans, key=_key)


def _key(span: SpanRecord) -> tuple[int, str]:
    return span.start_ns, span.span_id


# Includes what the store cannot hold as is: NUL, lone surrogates, NaN, integers past 64 bits.
awkward_text = st.text(
    st.characters(categories=["Ll", "Zs", "Cc", "Cs"], include_characters="\x00\ud800")
)
attribute_value = (
    st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | awkward_text
    | st.lists(st.integers(-(2**80), 2**80), max_size=3).map(tuple)
    | st.lists(st.floats(), max_size=3).map(tuple)
)
keel_keys = st.sampled_from(
    [
        attr.ROOT,
        attr.LAYER,
        attr.INPUT,
        attr.COST_USD,
        attr.CORRELATION_ID,
        attr.DECISION,
        attr.GEN_AI_USAGE_INPUT_TOKENS,
        attr.GEN_AI_RESPONSE_MODEL,
        attr.GEN_AI_RESPONSE_SYSTEM_FINGERPRINT,
    ]
)


class _SecretIds(IdGenerator):
    """Hypothesis seeds ``random``, which the SDK's default ids come from; these do not repeat."""

    def generate_span_id(self) -> int:
        return secrets.randbits(64) or 1

    def generate_trace_id(self) -> int:
        return secrets.randbits(128) or 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    attributes=st.dictionaries(
        keel_keys | st.text(min_size=1) | awkward_text.filter(bool), attribute_value, max_size=8
    ),
    name=awkward_text,
)
def test_any_attributes_convert_to_storable_records(
    shared_store: Store, attributes: dict[str, Any], name: str
) -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False, id_generator=_SecretIds())
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("t").start_as_current_span(name, attributes=attributes):
        pass
    provider.shutdown()
    spans, traces = to_records(exporter.get_finished_spans())
    for record in [*spans, *traces]:
        _assert_storable({f.name: getattr(record, f.name) for f in fields(record)})
    shared_store.traces.write(spans, traces)  # must not raise
    _, stored = shared_store.traces.get(spans[0].trace_id)
    assert stored[0].attributes == spans[0].attributes


def _assert_storable(value: Any) -> None:
    """What Postgres needs too: no NUL, valid UTF-8, finite JSON numbers, 64-bit integers."""
    if isinstance(value, str):
        assert "\x00" not in value
        value.encode()
    elif isinstance(value, dict):
        for key, item in value.items():
            _assert_storable(key)
            _assert_storable(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _assert_storable(item)
    elif isinstance(value, float):
        assert math.isfinite(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        assert -(2**63) <= value < 2**63
