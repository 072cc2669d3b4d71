"""Span exporters: Keel's store, the console, and any OTLP/HTTP collector.

Every exporter here follows the SDK's contract: ``export`` reports failure through its return
value and never raises into the batch processor, so a broken database or collector costs
spans, never the request that produced them.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from typing import IO, Protocol

import orjson
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter, SpanExportResult

from keel.core.tracing import SpanRecord, TraceRecord
from keel.telemetry.convert import to_records

logger = logging.getLogger(__name__)


class SpanWriter(Protocol):
    """Where span records go: ``keel.store.TraceRepository`` is the real one."""

    def write(self, spans: Sequence[SpanRecord], traces: Sequence[TraceRecord]) -> None: ...


class TraceStore(Protocol):
    """What the store exporter needs of ``keel.store.Store``."""

    @property
    def traces(self) -> SpanWriter: ...


class StoreSpanExporter(SpanExporter):
    """Writes each batch of finished spans to Keel's store in one transaction.

    For any SDK span processor. ``build_tracer_provider`` uses the faster
    :class:`~keel.telemetry.store_processor.StoreSpanProcessor` for the store instead.

    ``exported`` and ``failed`` count spans handed over; a failed batch is logged and
    reported as ``FAILURE`` (the batch processor does not retry it). Rewriting spans the store
    already holds is harmless.
    """

    def __init__(self, store: TraceStore) -> None:
        self._store = store
        self._stopped = False
        self.exported = 0
        self.failed = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._stopped:
            self.failed += len(spans)
            return SpanExportResult.FAILURE
        try:
            records, traces = to_records(spans)
            self._store.traces.write(records, traces)
        except Exception:  # the SDK's worker thread must survive anything the store raises
            self.failed += len(spans)
            logger.exception("could not write %d spans to the store; they are lost", len(spans))
            return SpanExportResult.FAILURE
        self.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        # The store belongs to the caller, who closes it after the tracer provider.
        self._stopped = True

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _one_line(span: ReadableSpan) -> str:
    records, _ = to_records([span])
    if not records:
        return ""
    record = records[0]
    line = {
        "trace_id": record.trace_id,
        "span_id": record.span_id,
        "parent_span_id": record.parent_span_id,
        "name": record.name,
        "layer": record.layer,
        "status": record.status,
        "duration_ms": round(record.duration_ms, 3),
        "model": record.model,
        "tokens": [record.input_tokens, record.output_tokens],
        "cost_usd": str(record.cost_usd),
    }
    return orjson.dumps(line).decode() + "\n"


def console_exporter(out: IO[str] | None = None) -> SpanExporter:
    """One compact JSON line per span, to ``out`` (standard error by default)."""
    return ConsoleSpanExporter(out=out if out is not None else sys.stderr, formatter=_one_line)


def otlp_exporter(endpoint: str, *, timeout_s: float = 10.0) -> SpanExporter:
    """OTLP/HTTP (protobuf) to ``endpoint``, e.g. ``http://collector:4318/v1/traces``.

    Headers and TLS files come from the standard ``OTEL_EXPORTER_OTLP_*`` variables.
    """
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
        OTLPSpanExporter,
    )

    return OTLPSpanExporter(endpoint=endpoint, timeout=timeout_s)
