"""The store's span processor: converts as spans end, writes in batches, counts every loss."""

from __future__ import annotations

import threading
from collections.abc import Sequence

import pytest
from opentelemetry.trace import Status, StatusCode

from keel.core import tracing as attr
from keel.core.tracing import SpanRecord, TraceRecord
from keel.settings import TelemetrySettings
from keel.store import Store
from keel.telemetry import KeelTracerProvider, StoreSpanProcessor, build_tracer_provider
from keel.telemetry.record_span import RecordSpan, RootSpans


class _Writer:
    """Records what it is asked to write; can block inside the first write or fail."""

    def __init__(self, *, block: bool = False, fail: bool = False) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        if not block:
            self.release.set()
        self.fail = fail
        self.spans: list[SpanRecord] = []
        self.traces: list[TraceRecord] = []
        self.batches: list[int] = []

    def write(self, spans: Sequence[SpanRecord], traces: Sequence[TraceRecord]) -> None:
        self.entered.set()
        self.release.wait(10)
        if self.fail:
            raise RuntimeError("database is down")
        self.spans.extend(spans)
        self.traces.extend(traces)
        self.batches.append(len(spans))


def _provider(writer: _Writer, **limits: int) -> tuple[KeelTracerProvider, StoreSpanProcessor]:
    processor = StoreSpanProcessor(
        writer,
        max_queue_size=limits.get("queue", 1000),
        max_export_batch_size=limits.get("batch", 100),
        schedule_delay_ms=limits.get("delay", 60_000),
    )
    provider = build_tracer_provider(TelemetrySettings(exporters=[]), None)
    provider.add_span_processor(processor)
    return provider, processor


def test_full_queue_drops_new_spans_and_counts_them() -> None:
    writer = _Writer(block=True)
    provider, processor = _provider(writer, queue=10, batch=10)
    tracer = provider.get_tracer("t")
    for _ in range(10):  # a full batch wakes the writer, which blocks
        tracer.start_span("first").end()
    assert writer.entered.wait(10)
    for _ in range(25):  # 10 fit in the queue again, 15 do not
        tracer.start_span("second").end()
    assert (processor.dropped, processor.queued) == (15, 10)
    assert (provider.dropped_spans, provider.queued_spans) == (15, 10)
    writer.release.set()
    provider.shutdown()
    assert len(writer.spans) == 20
    assert processor.queued == 0
    tracer.start_span("late").end()
    assert processor.dropped == 16


def test_batches_respect_the_batch_size_and_shutdown_writes_the_rest() -> None:
    writer = _Writer()
    provider, processor = _provider(writer, batch=64)
    tracer = provider.get_tracer("t")
    for _ in range(1000):
        tracer.start_span("s").end()
    provider.shutdown()
    assert len(writer.spans) == 1000
    assert max(writer.batches) <= 64
    assert processor.written == 1000
    assert processor.dropped == 0


def test_schedule_delay_writes_a_partial_batch() -> None:
    writer = _Writer()
    provider, _ = _provider(writer, batch=100, delay=20)
    with provider.get_tracer("t").start_as_current_span("root") as span:
        span.set_attribute(attr.ROOT, True)
    for _ in range(200):
        if writer.spans:
            break
        threading.Event().wait(0.01)
    assert len(writer.spans) == 1
    assert len(writer.traces) == 1
    provider.shutdown()


def test_write_failure_is_counted_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    writer = _Writer(fail=True)
    provider, processor = _provider(writer, batch=5)
    tracer = provider.get_tracer("t")
    for _ in range(12):
        tracer.start_span("s").end()
    provider.shutdown()
    assert processor.failed == 12
    assert processor.written == 0
    assert "could not write" in caplog.text


def test_many_threads_lose_nothing(store: Store) -> None:
    settings = TelemetrySettings(max_export_batch_size=128, schedule_delay_ms=10)
    provider = build_tracer_provider(settings, store)
    tracer = provider.get_tracer("keel")

    def work() -> None:
        for _ in range(250):
            with tracer.start_as_current_span("root") as root:
                root.set_attribute(attr.ROOT, True)
                with tracer.start_as_current_span("model") as child:
                    child.set_attribute(attr.LAYER, "model")

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    provider.shutdown()
    assert store.traces.count_spans() == 2000
    assert store.traces.count_traces() == 1000
    assert provider.dropped_spans == 0


def test_record_spans_share_the_queue_bound_and_drop_count() -> None:
    writer = _Writer(block=True)
    provider, processor = _provider(writer, queue=10, batch=10)
    spans = RootSpans(provider, "t")
    attributes = {attr.ROOT: True, attr.LAYER: "gateway"}
    for n in range(10):  # a full batch wakes the writer, which blocks
        started = spans.start("gateway m", f"req-{n}", None, dict(attributes))
        assert isinstance(started, RecordSpan)  # the store is the provider's only processor
        started.end()
    assert writer.entered.wait(10)
    for n in range(25):  # 10 fit in the queue again, 15 do not
        spans.start("gateway m", f"more-{n}", None, dict(attributes)).end()
    assert (processor.dropped, processor.queued) == (15, 10)
    writer.release.set()
    provider.shutdown()
    assert len(writer.spans) == len(writer.traces) == 20
    assert {span.layer for span in writer.spans} == {"gateway"}
    spans.start("gateway m", "late", None, dict(attributes)).end()
    assert processor.dropped == 16


def test_record_span_status_follows_the_sdk_rules() -> None:
    writer = _Writer()
    provider, _ = _provider(writer)
    spans = RootSpans(provider, "t")
    failed = spans.start("a", "req-a", None, {attr.ROOT: True})
    failed.record_exception(ValueError("the detail"))
    failed.set_status(StatusCode.ERROR)
    failed.end()
    failed.set_attribute("after", "end")  # ignored once ended
    recovered = spans.start("b", "req-b", None, {})
    recovered.set_status(Status(StatusCode.ERROR, "first"))
    recovered.set_status(StatusCode.OK)
    recovered.set_status(Status(StatusCode.ERROR, "too late"))  # OK is final
    recovered.end()
    provider.shutdown()
    first, second = writer.spans
    assert (first.status, first.status_message) == ("error", "ValueError: the detail")
    assert "after" not in first.attributes
    assert (second.status, second.status_message) == ("ok", None)
