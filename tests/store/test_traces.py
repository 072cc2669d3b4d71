"""Spans and trace summaries: idempotent batched writes, lookups and listing."""

from __future__ import annotations

import secrets
from dataclasses import replace
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa

from keel.core.errors import InvalidInputError, NotFoundError
from keel.core.tracing import SpanRecord, TraceRecord
from keel.store import Store
from keel.store.bulk import SPAN_COLUMNS, TRACE_COLUMNS
from keel.store.schema import spans as spans_table
from keel.store.schema import traces as traces_table

T0 = 1_700_000_000_000_000_000


def _trace(start_ns: int = T0, **fields: Any) -> tuple[TraceRecord, list[SpanRecord]]:
    trace_id = secrets.token_hex(16)
    root_id, child_id = secrets.token_hex(8), secrets.token_hex(8)
    trace = TraceRecord(
        trace_id=trace_id,
        correlation_id=f"req-{trace_id[:8]}",
        name="pipeline triage",
        start_ns=start_ns,
        end_ns=start_ns + 900,
        pipeline="triage",
        input_tokens=12,
        output_tokens=3,
        cost_usd=Decimal("0.000123450"),
    )
    trace = replace(trace, **fields)
    spans = [
        SpanRecord(
            trace_id=trace_id,
            span_id=child_id,
            parent_span_id=root_id,
            name="chat local:smollm2",
            start_ns=start_ns + 100,
            end_ns=start_ns + 800,
            layer="model",
            input='{"messages": []}',
            output='{"text": "hi"}',
            input_tokens=12,
            output_tokens=3,
            cost_usd=Decimal("0.000123450"),
            model="local:smollm2",
            model_version="smollm2-135m / fp=abc",
            attributes={"gen_ai.request.temperature": 0.2, "tags": ["a", "b"], "n": 3},
        ),
        SpanRecord(
            trace_id=trace_id,
            span_id=root_id,
            parent_span_id=None,
            name="pipeline triage",
            start_ns=start_ns,
            end_ns=start_ns + 900,
            attributes={"keel.root": True},
        ),
    ]
    return trace, spans


def test_write_then_get_by_trace_and_correlation_id(store: Store) -> None:
    trace, spans = _trace()
    store.traces.write(spans, [trace])
    for key in (trace.trace_id, trace.correlation_id):
        got, got_spans = store.traces.get(key)
        assert got == trace
        assert got_spans == sorted(spans, key=lambda s: s.start_ns)
    assert store.traces.count_spans() == 2
    assert store.traces.count_traces() == 1


def test_spans_before_their_root_arrive(store: Store) -> None:
    trace, spans = _trace()
    store.traces.write(spans[:1], [])
    got, got_spans = store.traces.get(trace.trace_id)
    assert got is None
    assert got_spans == spans[:1]


@pytest.mark.parametrize("key", ["0" * 32, "f" * 32, "req-unknown", ""])
def test_unknown_trace(store: Store, key: str) -> None:
    with pytest.raises(NotFoundError) as info:
        store.traces.get(key)
    assert info.value.code == "trace_not_found"


def test_rewriting_the_same_spans_is_harmless(store: Store) -> None:
    trace, spans = _trace()
    store.traces.write(spans, [trace])
    store.traces.write(spans, [trace])
    store.traces.write(spans + spans, [trace, trace])  # duplicates inside one batch, too
    assert store.traces.count_spans() == 2
    assert store.traces.count_traces() == 1


def test_empty_write_is_a_no_op(store: Store) -> None:
    store.traces.write([], [])
    assert store.traces.count_spans() == 0


@pytest.mark.parametrize(
    "cost",
    [
        Decimal("123456789.123456789"),
        Decimal("0.000000001"),
        Decimal("-3.5"),
        Decimal(0),
        Decimal("999999999.999999999"),
    ],
)
def test_cost_round_trips_exactly(store: Store, cost: Decimal) -> None:
    trace, spans = _trace(cost_usd=cost)
    spans[0].cost_usd = cost
    store.traces.write(spans, [trace])
    got, got_spans = store.traces.get(trace.trace_id)
    assert got is not None
    assert got.cost_usd == cost
    assert got_spans[1].cost_usd == cost
    assert got.cost_usd.as_tuple().exponent == -9


def test_cost_out_of_range_is_rejected(store: Store) -> None:
    trace, spans = _trace(cost_usd=Decimal("1e12"))  # does not fit NUMERIC(18, 9)
    with pytest.raises(ValueError, match="NUMERIC"):
        store.traces.write(spans, [trace])
    assert store.traces.count_spans() == 0


def test_write_is_one_transaction(store: Store) -> None:
    trace, spans = _trace(name=None)  # the trace row fails NOT NULL after the spans went in
    with pytest.raises(sa.exc.IntegrityError):
        store.traces.write(spans, [trace])
    assert store.traces.count_spans() == 0


def test_bulk_rows_cover_every_column() -> None:
    assert set(SPAN_COLUMNS) == set(spans_table.columns.keys())
    assert set(TRACE_COLUMNS) == set(traces_table.columns.keys())


def test_list_newest_first_with_filters(store: Store) -> None:
    made = []
    for i in range(6):
        trace, spans = _trace(
            T0 + i * 1000,
            pipeline="triage" if i % 2 else "summarize",
            status="error" if i == 5 else "ok",
            error_code="provider_timeout" if i == 5 else None,
        )
        store.traces.write(spans, [trace])
        made.append(trace)
    newest_first = [t.trace_id for t in reversed(made)]
    assert [t.trace_id for t in store.traces.list()] == newest_first
    assert [t.trace_id for t in store.traces.list(limit=2)] == newest_first[:2]
    triage = store.traces.list(pipeline="triage")
    assert [t.trace_id for t in triage] == [made[5].trace_id, made[3].trace_id, made[1].trace_id]
    errors = store.traces.list(status="error")
    assert [(t.trace_id, t.error_code) for t in errors] == [(made[5].trace_id, "provider_timeout")]
    page = store.traces.list(before_ns=made[2].start_ns)
    assert [t.trace_id for t in page] == [made[1].trace_id, made[0].trace_id]
    assert store.traces.list(pipeline="nope") == []


def test_list_limit_must_be_positive(store: Store) -> None:
    with pytest.raises(InvalidInputError) as info:
        store.traces.list(limit=0)
    assert info.value.code == "limit_invalid"


def test_bulk_insert_plan_covers_every_row_with_few_distinct_statements() -> None:
    import sqlalchemy as sa

    from keel.store.bulk import MultiRowInsert
    from keel.store.schema import spans

    engine = sa.create_engine("sqlite://")
    insert = MultiRowInsert(engine.dialect, spans, [c.name for c in spans.columns])
    sizes_seen: set[int] = set()
    for count in range(0, 5000, 7):
        plan = insert.plan(count)
        assert sum(plan) == count
        sizes_seen.update(plan)
    # The driver keeps every distinct statement prepared per connection, and a prepared
    # statement's memory grows with its rows: few sizes, none large.
    assert len(sizes_seen) <= 8
    assert max(sizes_seen) <= 128
