"""Spans and trace summaries: the write path of the span exporter and the reads behind the UI.

Writes are driver-level ``executemany`` inserts of pre-encoded rows (see :mod:`keel.store.bulk`)
with ``ON CONFLICT DO NOTHING``, so an exporter retrying a batch never fails on rows it already
stored.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, Row

from keel.core.errors import InvalidInputError, NotFoundError
from keel.core.tracing import SpanRecord, TraceRecord, is_trace_id
from keel.store.bulk import BulkWriter
from keel.store.schema import spans as spans_table
from keel.store.schema import traces as traces_table


def _to_span(row: Row[Any]) -> SpanRecord:
    return SpanRecord(
        trace_id=row.trace_id,
        span_id=row.span_id,
        parent_span_id=row.parent_span_id,
        name=row.name,
        start_ns=row.start_ns,
        end_ns=row.end_ns,
        status=row.status,
        status_message=row.status_message,
        layer=row.layer,
        input=row.input,
        output=row.output,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        cost_usd=row.cost_usd,
        model=row.model,
        model_version=row.model_version,
        attributes=row.attributes,
    )


def _to_trace(row: Row[Any]) -> TraceRecord:
    return TraceRecord(
        trace_id=row.trace_id,
        correlation_id=row.correlation_id,
        name=row.name,
        start_ns=row.start_ns,
        end_ns=row.end_ns,
        status=row.status,
        error_code=row.error_code,
        pipeline=row.pipeline,
        pipeline_version=row.pipeline_version,
        label=row.label,
        caller=row.caller,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        cost_usd=row.cost_usd,
        decision=row.decision,
    )


class TraceRepository:
    """Stores finished spans and the trace summaries written from root spans."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._bulk = BulkWriter(engine.dialect)

    def write(self, spans: Sequence[SpanRecord], traces: Sequence[TraceRecord]) -> None:
        """Store spans and traces in one transaction; rows already stored are skipped."""
        if not spans and not traces:
            return
        bulk = self._bulk
        span_rows = bulk.span_rows(spans)
        trace_rows = bulk.trace_rows(traces)
        with self._engine.begin() as conn:
            bulk.spans.execute(conn, span_rows)
            bulk.traces.execute(conn, trace_rows)

    def get(self, trace_id: str) -> tuple[TraceRecord | None, list[SpanRecord]]:
        """A trace and its spans (ordered by start) by trace id or correlation id.

        The summary is None while the root span has not arrived yet.
        """
        t = traces_table
        with self._engine.connect() as conn:
            row = None
            if is_trace_id(trace_id):
                row = conn.execute(sa.select(t).where(t.c.trace_id == trace_id)).first()
            if row is None:
                row = conn.execute(
                    sa.select(t)
                    .where(t.c.correlation_id == trace_id)
                    .order_by(t.c.start_ns.desc())
                    .limit(1)
                ).first()
            resolved = row.trace_id if row is not None else trace_id
            span_rows = conn.execute(
                sa.select(spans_table)
                .where(spans_table.c.trace_id == resolved)
                .order_by(spans_table.c.start_ns, spans_table.c.span_id)
            ).all()
        if row is None and not span_rows:
            msg = (
                f"No trace with id or correlation id {trace_id!r}; it may not be exported yet "
                "or may have been removed by retention"
            )
            raise NotFoundError(msg, code="trace_not_found", trace_id=trace_id)
        return (_to_trace(row) if row is not None else None), [_to_span(r) for r in span_rows]

    def list(
        self,
        *,
        limit: int = 50,
        pipeline: str | None = None,
        status: str | None = None,
        before_ns: int | None = None,
    ) -> builtins.list[TraceRecord]:
        """Trace summaries, newest first; ``before_ns`` pages back from a start time."""
        if limit < 1:
            msg = f"limit must be at least 1, got {limit}"
            raise InvalidInputError(msg, code="limit_invalid", limit=limit)
        t = traces_table
        query = sa.select(t).order_by(t.c.start_ns.desc(), t.c.trace_id.desc()).limit(limit)
        if pipeline is not None:
            query = query.where(t.c.pipeline == pipeline)
        if status is not None:
            query = query.where(t.c.status == status)
        if before_ns is not None:
            query = query.where(t.c.start_ns < before_ns)
        with self._engine.connect() as conn:
            return [_to_trace(row) for row in conn.execute(query)]

    def count_spans(self) -> int:
        """How many spans are stored."""
        with self._engine.connect() as conn:
            return int(conn.scalar(sa.select(sa.func.count()).select_from(spans_table)) or 0)

    def count_traces(self) -> int:
        """How many trace summaries are stored."""
        with self._engine.connect() as conn:
            return int(conn.scalar(sa.select(sa.func.count()).select_from(traces_table)) or 0)
