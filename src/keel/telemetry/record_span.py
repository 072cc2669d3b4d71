"""Root spans that become store records directly, when the store is the only exporter.

An SDK span costs about 50 µs of CPU from start to export (sampler, id generator, bounded
attributes behind a lock, processor hooks, then conversion to a record), which was an eighth
of a gateway request's CPU. When the tracer provider's only processor is the store's, nothing
else will ever read the SDK object, so :class:`RootSpans` hands out a :class:`RecordSpan`
instead: a plain attribute dict that, on ``end()``, becomes the same :class:`SpanRecord` and
:class:`TraceRecord` the SDK path produces (through the same conversion functions) and is
queued under the store processor's bound and drop count. With any other processor (OTLP, the
console, a test's in-memory exporter) or an unsampled parent, it starts an SDK span as before.

Events are not stored (the store keeps attributes and status), so a ``RecordSpan`` keeps only
what the status message needs from a recorded exception.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Mapping
from typing import Any

from opentelemetry.context import Context
from opentelemetry.trace import (
    Span,
    SpanContext,
    Status,
    StatusCode,
    TraceFlags,
    TracerProvider,
    get_current_span,
)
from opentelemetry.util import types

from keel.core import tracing as attr
from keel.pipeline.correlation import parent_context, trace_id_for
from keel.telemetry.convert import exception_message, span_record, trace_record
from keel.telemetry.setup import KeelTracerProvider
from keel.telemetry.store_processor import StoreSpanProcessor

logger = logging.getLogger(__name__)
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)


class RecordSpan(Span):
    """A recording span without the SDK: attributes in a dict, a record at ``end()``."""

    __slots__ = (
        "_attributes",
        "_ended",
        "_error",
        "_final",
        "_name",
        "_parent_id",
        "_processor",
        "_span_id",
        "_start_ns",
        "_status_message",
        "_trace_id",
    )

    def __init__(
        self,
        processor: StoreSpanProcessor,
        name: str,
        ids: tuple[int, int | None],
        attributes: dict[str, Any],
    ) -> None:
        self._processor = processor
        self._name = name
        self._trace_id, self._parent_id = ids
        self._span_id = random.getrandbits(64) or 1
        self._attributes = attributes
        self._start_ns = time.time_ns()
        self._ended = False
        self._error = False
        self._final = False  # set OK: later statuses are ignored, as in the SDK
        self._status_message: str | None = None

    def get_span_context(self) -> SpanContext:
        return SpanContext(self._trace_id, self._span_id, is_remote=False, trace_flags=_SAMPLED)

    def is_recording(self) -> bool:
        return not self._ended

    def set_attribute(self, key: str, value: types.AnyValue) -> None:
        if not self._ended:
            self._attributes[key] = value

    def set_attributes(self, attributes: Mapping[str, types.AnyValue]) -> None:
        if not self._ended:
            self._attributes.update(attributes)

    def add_event(
        self, name: str, attributes: types.Attributes = None, timestamp: int | None = None
    ) -> None:
        return None  # the store keeps no events

    def update_name(self, name: str) -> None:
        if not self._ended:
            self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        if self._ended or self._final:
            return
        code = status
        if isinstance(status, Status):
            code, description = status.status_code, status.description
        if code is StatusCode.ERROR:
            self._error = True
            self._status_message = description or self._status_message
        elif code is StatusCode.OK:
            self._error, self._final, self._status_message = False, True, None

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        if self._ended or self._status_message:
            return
        given = attributes or {}
        message = given.get("exception.message", str(exception))
        kind = given.get("exception.type", type(exception).__qualname__)
        self._status_message = exception_message(str(kind), str(message))

    def end(self, end_time: int | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        end_ns = end_time if end_time is not None else time.time_ns()
        attributes = self._attributes
        try:
            record = span_record(
                self._name,
                self._trace_id,
                self._span_id,
                self._parent_id,
                (self._start_ns, end_ns),
                self._status_message if self._error else None,
                attributes,
                is_error=self._error,
            )
            trace = trace_record(record, attributes) if attributes.get(attr.ROOT) else None
        except Exception:  # as on the SDK path: a conversion bug never reaches the caller
            logger.exception("could not convert span %r; it is dropped", self._name)
            return
        self._processor.submit(record, trace)


class RootSpans:
    """Starts the root span of a request: a :class:`RecordSpan` when the store is the only
    exporter and the parent (if any) is sampled, an SDK span otherwise."""

    def __init__(self, provider: TracerProvider, scope: str) -> None:
        self._provider = provider
        self._tracer = provider.get_tracer(scope)

    def start(
        self,
        name: str,
        correlation_id: str,
        parent: Context | None,
        attributes: dict[str, Any],
    ) -> Span:
        """A root span for ``correlation_id``, a child of ``parent`` (a caller's
        ``traceparent``) when given, else of a remote span in the correlation id's trace."""
        provider = self._provider
        store = provider.sole_store_processor if isinstance(provider, KeelTracerProvider) else None
        remote = get_current_span(parent).get_span_context() if parent is not None else None
        if remote is not None and not remote.is_valid:
            remote = None
        if store is not None and (remote is None or remote.trace_flags.sampled):
            ids = (
                (remote.trace_id, remote.span_id)
                if remote is not None
                else (trace_id_for(correlation_id), random.getrandbits(64) or 1)
            )
            return RecordSpan(store, name, ids, attributes)
        context, _ = parent_context(correlation_id, parent)
        return self._tracer.start_span(name, context=context, attributes=attributes)
