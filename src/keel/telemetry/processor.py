"""A bounded batch span processor that counts the spans it drops (used for OTLP and console).

The SDK's ``BatchSpanProcessor`` (checked in 1.45) drops the oldest queued span when its queue is
full and counts that only through its opt-in internal metrics (enabled by a process-wide
environment variable). :class:`CountingBatchSpanProcessor` wraps it with an exact ledger:

* ``on_end`` admits a span only while fewer than ``max_queue_size`` admitted spans have not yet
  been handed to the exporter; otherwise the new span is dropped here and counted. The SDK's
  own queue therefore never overflows, so every drop is one this class counted.
* The exporter is wrapped so the ledger learns when each batch leaves the queue.
* ``shutdown`` first flushes synchronously (no time limit), then stops the SDK processor:
  every admitted span reaches the exporter. Spans ending after shutdown count as dropped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

logger = logging.getLogger(__name__)


class _HandOffExporter(SpanExporter):
    """Tells the processor how many spans left the queue, then exports them."""

    def __init__(self, inner: SpanExporter, on_hand_off: Callable[[int], None]) -> None:
        self.inner = inner
        self._on_hand_off = on_hand_off

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self._on_hand_off(len(spans))
        return self.inner.export(spans)

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class CountingBatchSpanProcessor(SpanProcessor):
    """``BatchSpanProcessor`` with an honest count of spans dropped by a full queue."""

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        max_queue_size: int,
        max_export_batch_size: int,
        schedule_delay_ms: float,
    ) -> None:
        self.exporter = exporter
        self.max_queue_size = max_queue_size
        self._lock = threading.Lock()
        self._queued = 0
        self._dropped = 0
        self._stopped = False
        self._batch = BatchSpanProcessor(
            _HandOffExporter(exporter, self._handed_off),
            max_queue_size=max_queue_size,
            schedule_delay_millis=schedule_delay_ms,
            max_export_batch_size=min(max_export_batch_size, max_queue_size),
        )

    @property
    def dropped(self) -> int:
        """Spans lost because the queue was full (or the processor already shut down)."""
        return self._dropped

    @property
    def queued(self) -> int:
        """Spans admitted and not yet handed to the exporter."""
        return self._queued

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        context = span.context
        if context is None or not context.trace_flags.sampled:
            return
        with self._lock:
            if self._stopped or self._queued >= self.max_queue_size:
                self._dropped += 1
                dropped = self._dropped
                admitted = False
            else:
                self._queued += 1
                admitted = True
                # Inside the lock, so shutdown cannot slip in between admitting and queueing.
                self._batch.on_end(span)
        if not admitted:
            warn_dropped(dropped, self.max_queue_size)

    def _handed_off(self, count: int) -> None:
        with self._lock:
            self._queued -= count

    def shutdown(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        self._batch.force_flush()
        # The SDK leaves BatchSpanProcessor.shutdown unannotated.
        self._batch.shutdown()  # type: ignore[no-untyped-call]

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._batch.force_flush(timeout_millis)


def warn_dropped(total: int, capacity: int) -> None:
    """Log the 1st, 10th, 100th, … dropped span rather than every one."""
    milestone = total
    while milestone >= 10 and milestone % 10 == 0:
        milestone //= 10
    if milestone == 1:
        logger.warning(
            "span queue full (%d spans): %d spans dropped so far; raise "
            "telemetry.max_queue_size or speed up the exporter",
            capacity,
            total,
        )
