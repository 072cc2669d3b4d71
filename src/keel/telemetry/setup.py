"""Build the tracer provider a Keel process uses, from its telemetry settings.

No global state: the provider is returned, never installed with
``opentelemetry.trace.set_tracer_provider``. Callers keep it, take tracers from it
(``provider.get_tracer("keel")``) and call ``provider.shutdown()`` on the way out, which
flushes every queued span to every exporter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.util.types import AttributeValue

from keel import __version__
from keel.core.errors import ConfigError
from keel.pipeline.correlation import new_trace_id
from keel.settings import TelemetrySettings
from keel.telemetry.exporters import TraceStore, console_exporter, otlp_exporter
from keel.telemetry.processor import CountingBatchSpanProcessor
from keel.telemetry.store_processor import StoreSpanProcessor

BatchProcessor = CountingBatchSpanProcessor | StoreSpanProcessor


class TimeOrderedIds(RandomIdGenerator):
    """Random span ids; trace ids that start with the time (see ``new_trace_id``), so traces
    started without a request id also land at the right edge of the store's indexes."""

    def generate_trace_id(self) -> int:
        return new_trace_id()


class KeelTracerProvider(TracerProvider):
    """An SDK ``TracerProvider`` that also knows its batch processors, to report drops.

    Keel's processors added later with ``add_span_processor`` are counted too.
    """

    def __init__(self, processors: Sequence[BatchProcessor], *, resource: Resource) -> None:
        self._counted: list[BatchProcessor] = []
        self._added = 0
        super().__init__(resource=resource, id_generator=TimeOrderedIds())
        for processor in processors:
            self.add_span_processor(processor)

    def add_span_processor(self, span_processor: SpanProcessor) -> None:
        super().add_span_processor(span_processor)
        self._added += 1
        if isinstance(span_processor, CountingBatchSpanProcessor | StoreSpanProcessor):
            self._counted.append(span_processor)

    @property
    def sole_store_processor(self) -> StoreSpanProcessor | None:
        """The store's processor when it is the only one: spans then need no SDK object and
        can be handed over as records (see :mod:`keel.telemetry.record_span`)."""
        counted = self._counted
        if self._added == 1 and len(counted) == 1 and isinstance(counted[0], StoreSpanProcessor):
            return counted[0]
        return None

    @property
    def processors(self) -> tuple[BatchProcessor, ...]:
        """Keel's batch processors on this provider, in the order they were added."""
        return tuple(self._counted)

    @property
    def dropped_spans(self) -> int:
        """Spans dropped by full queues, summed over exporters (a span may count per exporter)."""
        return sum(processor.dropped for processor in self.processors)

    @property
    def queued_spans(self) -> int:
        """Spans waiting to be exported, summed over exporters."""
        return sum(processor.queued for processor in self.processors)


def build_tracer_provider(
    settings: TelemetrySettings,
    store: TraceStore | None,
    *,
    resource_attrs: Mapping[str, AttributeValue] | None = None,
) -> KeelTracerProvider:
    """A provider with one bounded, drop-counting batch processor per configured exporter.

    ``store`` is required when ``settings.exporters`` includes ``"store"``. The store gets a
    :class:`StoreSpanProcessor` (spans are converted as they end, see its module for why);
    OTLP and the console get the SDK's ``BatchSpanProcessor`` wrapped to count drops.
    """
    processors = [_processor(kind, settings, store) for kind in dict.fromkeys(settings.exporters)]
    attributes: dict[str, AttributeValue] = {
        "service.name": "keel",
        "service.version": __version__,
    }
    attributes.update(resource_attrs or {})
    return KeelTracerProvider(processors, resource=Resource.create(attributes))


def dropped_spans(provider: TracerProvider) -> int:
    """Spans ``provider`` dropped because an export queue was full; 0 for foreign providers."""
    return provider.dropped_spans if isinstance(provider, KeelTracerProvider) else 0


def _processor(kind: str, settings: TelemetrySettings, store: TraceStore | None) -> BatchProcessor:
    limits = {
        "max_queue_size": settings.max_queue_size,
        "max_export_batch_size": settings.max_export_batch_size,
        "schedule_delay_ms": settings.schedule_delay_ms,
    }
    if kind == "store":
        if store is None:
            msg = (
                "telemetry.exporters includes 'store' but no store was given; pass the Store "
                "or remove 'store' from KEEL_TELEMETRY__EXPORTERS"
            )
            raise ConfigError(msg, code="telemetry_store_missing")
        return StoreSpanProcessor(store.traces, **limits)
    if kind == "console":
        return CountingBatchSpanProcessor(console_exporter(), **limits)
    if kind == "otlp":
        return CountingBatchSpanProcessor(otlp_exporter(settings.otlp_endpoint), **limits)
    msg = f"unknown span exporter {kind!r}; choose from store, otlp, console"
    raise ConfigError(msg, code="telemetry_exporter_unknown")
