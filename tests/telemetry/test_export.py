"""Spans travel from a real tracer through the batch processors to the store and OTLP."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import opentelemetry.trace
import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from keel.core import tracing as attr
from keel.core.errors import ConfigError
from keel.core.tracing import SpanRecord, TraceRecord
from keel.pipeline.correlation import new_trace_id
from keel.settings import TelemetrySettings
from keel.store import Store
from keel.telemetry import (
    CountingBatchSpanProcessor,
    StoreSpanExporter,
    build_tracer_provider,
    console_exporter,
    dropped_spans,
)


def test_every_span_and_the_trace_reach_the_store_on_shutdown(store: Store) -> None:
    settings = TelemetrySettings(max_export_batch_size=64, schedule_delay_ms=5000)
    provider = build_tracer_provider(settings, store)
    tracer = provider.get_tracer("keel")
    trace_ids = []
    for i in range(50):
        with tracer.start_as_current_span("pipeline triage") as root:
            root.set_attributes({attr.ROOT: True, attr.PIPELINE: "triage", attr.CALLER: f"c{i}"})
            trace_ids.append(f"{root.get_span_context().trace_id:032x}")
            for layer in ("preprocess", "prompt", "model", "postprocess"):
                with tracer.start_as_current_span(layer) as span:
                    span.set_attributes({attr.LAYER: layer, attr.INPUT: '{"x": 1}'})
    provider.shutdown()  # the schedule delay is long: only shutdown can have flushed them
    assert store.traces.count_spans() == 250
    assert dropped_spans(provider) == 0
    trace, spans = store.traces.get(trace_ids[7])
    assert trace is not None
    assert trace.caller == "c7"
    assert [s.layer for s in spans] == [None, "preprocess", "prompt", "model", "postprocess"]


def test_provider_is_not_installed_globally(store: Store) -> None:
    before = opentelemetry.trace.get_tracer_provider()
    provider = build_tracer_provider(TelemetrySettings(), store)
    assert opentelemetry.trace.get_tracer_provider() is before
    provider.shutdown()


def test_store_exporter_needs_a_store() -> None:
    with pytest.raises(ConfigError) as info:
        build_tracer_provider(TelemetrySettings(exporters=["store"]), None)
    assert info.value.code == "telemetry_store_missing"


class _BrokenWriter:
    def write(self, spans: Sequence[SpanRecord], traces: Sequence[TraceRecord]) -> None:
        raise RuntimeError("disk full")


class _BrokenStore:
    traces = _BrokenWriter()


def test_store_failure_is_reported_not_raised(
    recorded_spans: list[ReadableSpan], caplog: pytest.LogCaptureFixture
) -> None:
    exporter = StoreSpanExporter(_BrokenStore())
    assert exporter.export(recorded_spans) is SpanExportResult.FAILURE
    assert exporter.failed == len(recorded_spans)
    assert "could not write" in caplog.text


def test_database_error_is_a_failure(store: Store, recorded_spans: list[ReadableSpan]) -> None:
    with store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE spans")
    exporter = StoreSpanExporter(store)
    assert exporter.export(recorded_spans) is SpanExportResult.FAILURE


def test_export_after_shutdown_fails(store: Store, recorded_spans: list[ReadableSpan]) -> None:
    exporter = StoreSpanExporter(store)
    exporter.shutdown()
    assert exporter.export(recorded_spans) is SpanExportResult.FAILURE
    assert store.traces.count_spans() == 0


@pytest.fixture
def recorded_spans(store: Store) -> list[ReadableSpan]:
    captured: list[ReadableSpan] = []

    class Keep(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            captured.extend(spans)
            return SpanExportResult.SUCCESS

    provider = build_tracer_provider(TelemetrySettings(exporters=[]), None)
    provider.add_span_processor(
        CountingBatchSpanProcessor(
            Keep(), max_queue_size=10, max_export_batch_size=10, schedule_delay_ms=10
        )
    )
    with provider.get_tracer("t").start_as_current_span("s"):
        pass
    provider.shutdown()
    return captured


class _Gate(SpanExporter):
    """Blocks inside the first export until released, to fill the queue on purpose."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.received = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.entered.set()
        self.release.wait(10)
        self.received += len(spans)
        return SpanExportResult.SUCCESS


def test_a_full_queue_drops_new_spans_and_counts_them() -> None:
    gate = _Gate()
    processor = CountingBatchSpanProcessor(
        gate, max_queue_size=10, max_export_batch_size=10, schedule_delay_ms=60_000
    )
    provider = build_tracer_provider(TelemetrySettings(exporters=[]), None)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    for _ in range(10):  # a full batch wakes the worker, which blocks in export
        tracer.start_span("first").end()
    assert gate.entered.wait(10)
    for _ in range(25):  # 10 fit in the queue again, 15 do not
        tracer.start_span("second").end()
    assert processor.dropped == 15
    assert processor.queued == 10
    gate.release.set()
    provider.shutdown()
    assert gate.received == 20
    assert processor.queued == 0
    tracer.start_span("late").end()
    assert processor.dropped == 16


def test_console_exporter_writes_one_json_line_per_span() -> None:
    out = io.StringIO()
    processor = CountingBatchSpanProcessor(
        console_exporter(out), max_queue_size=100, max_export_batch_size=10, schedule_delay_ms=10
    )
    provider = build_tracer_provider(TelemetrySettings(exporters=[]), None)
    provider.add_span_processor(processor)
    with provider.get_tracer("t").start_as_current_span("chat") as span:
        span.set_attributes({attr.LAYER: "model", attr.COST_USD: "0.01"})
    provider.shutdown()
    [line] = out.getvalue().splitlines()
    body = orjson.loads(line)
    assert (body["name"], body["layer"], body["cost_usd"]) == ("chat", "model", "0.01")


class _Collector(BaseHTTPRequestHandler):
    requests: ClassVar[list[tuple[str, str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.requests.append((self.path, self.headers["Content-Type"], body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, str, bytes]]]]:
    received: list[tuple[str, str, bytes]] = []
    handler = type("Handler", (_Collector,), {"requests": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces", received
    server.shutdown()
    server.server_close()


def test_otlp_exporter_posts_protobuf(
    collector: tuple[str, list[tuple[str, str, bytes]]],
) -> None:
    endpoint, received = collector
    settings = TelemetrySettings(exporters=["otlp"], otlp_endpoint=endpoint)
    provider = build_tracer_provider(settings, None, resource_attrs={"deployment": "test"})
    with provider.get_tracer("keel").start_as_current_span("pipeline triage") as span:
        span.set_attribute(attr.GEN_AI_REQUEST_MODEL, "local:smollm2")
    provider.shutdown()
    [(path, content_type, body)] = received
    assert path == "/v1/traces"
    assert content_type == "application/x-protobuf"
    request = ExportTraceServiceRequest.FromString(body)
    [resource_spans] = request.resource_spans
    resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert resource["service.name"] == "keel"
    assert resource["deployment"] == "test"
    [scope_spans] = resource_spans.scope_spans
    assert [s.name for s in scope_spans.spans] == ["pipeline triage"]


def test_trace_ids_start_with_the_time_so_the_store_indexes_grow_at_one_end(
    store: Store,
) -> None:
    provider = build_tracer_provider(TelemetrySettings(), store)
    tracer = provider.get_tracer("keel")
    before_ms = time.time_ns() // 1_000_000
    ids = []
    for _ in range(3):
        with tracer.start_as_current_span("pipeline triage") as span:
            ids.append(span.get_span_context().trace_id)
        time.sleep(0.002)
    made = [new_trace_id() for _ in range(1000)]
    after_ms = time.time_ns() // 1_000_000
    provider.shutdown()
    for trace_id in [*ids, *made]:
        assert before_ms <= trace_id >> 80 <= after_ms  # 48 bits of milliseconds, then 80 random
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert len({trace_id & (2**80 - 1) for trace_id in made}) == 1000  # the low bits vary
