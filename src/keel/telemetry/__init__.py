"""Telemetry: turn finished OpenTelemetry spans into Keel records and export them.

``build_tracer_provider(settings, store)`` returns a provider (never installed globally) with
one bounded, drop-counting batch processor per exporter: the store (spans converted to
records as they end), OTLP/HTTP and the console (the SDK's batch processor, counted).
"""

from keel.telemetry.convert import to_records
from keel.telemetry.exporters import (
    SpanWriter,
    StoreSpanExporter,
    TraceStore,
    console_exporter,
    otlp_exporter,
)
from keel.telemetry.processor import CountingBatchSpanProcessor
from keel.telemetry.setup import KeelTracerProvider, build_tracer_provider, dropped_spans
from keel.telemetry.store_processor import StoreSpanProcessor

__all__ = [
    "CountingBatchSpanProcessor",
    "KeelTracerProvider",
    "SpanWriter",
    "StoreSpanExporter",
    "StoreSpanProcessor",
    "TraceStore",
    "build_tracer_provider",
    "console_exporter",
    "dropped_spans",
    "otlp_exporter",
    "to_records",
]
