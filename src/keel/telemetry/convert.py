"""Turn OpenTelemetry SDK spans into Keel's :class:`SpanRecord` and :class:`TraceRecord`.

Attributes named in :mod:`keel.core.tracing` become columns; everything else stays in
``SpanRecord.attributes`` as JSON-safe values. A span with ``keel.root = True`` also yields the
trace summary. A value that cannot fill its column (say, a cost that is not a decimal) is kept
as an ordinary attribute rather than failing the batch it travels in.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from keel.core import tracing as attr
from keel.core.tracing import SpanRecord, TraceRecord

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
# Largest cost the store holds: NUMERIC(18, 9).
_COST_LIMIT = Decimal(10) ** 9
_ZERO = Decimal(0)
_SURROGATE = re.compile("[\ud800-\udfff]")


def to_records(spans: Sequence[ReadableSpan]) -> tuple[list[SpanRecord], list[TraceRecord]]:
    """Records for every finished span, and a trace summary for every root span."""
    records: list[SpanRecord] = []
    traces: list[TraceRecord] = []
    for span in spans:
        context = span.context
        if context is None:
            continue
        view = span.attributes
        attributes: dict[str, Any] = dict(view) if view else {}
        parent = span.parent
        is_error = span.status.status_code is StatusCode.ERROR
        start_ns = span.start_time or 0
        record = span_record(
            span.name,
            context.trace_id,
            context.span_id,
            parent.span_id if parent is not None else None,
            (start_ns, span.end_time or start_ns),
            _status_message(span) if is_error else None,
            attributes,
            is_error=is_error,
        )
        records.append(record)
        if attributes.get(attr.ROOT) is True:
            traces.append(trace_record(record, attributes))
    return records, traces


def span_record(
    name: str,
    trace_id: int,
    span_id: int,
    parent_span_id: int | None,
    times: tuple[int, int],
    status_message: str | None,
    attributes: dict[str, Any],
    *,
    is_error: bool,
) -> SpanRecord:
    """Build the record, popping the attributes that become columns from ``attributes``.

    This runs for every exported span, so the common case (values of the expected types) is
    kept to plain dict operations; anything unusual goes through the slower helpers.
    """
    pop = attributes.pop
    model_version = _text(pop(attr.GEN_AI_RESPONSE_MODEL, None))
    fingerprint = pop(attr.GEN_AI_RESPONSE_SYSTEM_FINGERPRINT, None)
    if fingerprint is not None:
        model_version = _with_fingerprint(model_version, _text(fingerprint))
    record = SpanRecord(
        trace_id=f"{trace_id:032x}",
        span_id=f"{span_id:016x}",
        parent_span_id=f"{parent_span_id:016x}" if parent_span_id is not None else None,
        name=_clean(name),
        start_ns=times[0],
        end_ns=times[1],
        status="error" if is_error else "ok",
        status_message=_clean(status_message) if status_message else None,
        layer=_text(pop(attr.LAYER, None)),
        input=_text(pop(attr.INPUT, None)),
        output=_text(pop(attr.OUTPUT, None)),
        input_tokens=_pop_count(attributes, attr.GEN_AI_USAGE_INPUT_TOKENS),
        output_tokens=_pop_count(attributes, attr.GEN_AI_USAGE_OUTPUT_TOKENS),
        cost_usd=_pop_cost(attributes) if attr.COST_USD in attributes else _ZERO,
        model=_text(pop(attr.GEN_AI_REQUEST_MODEL, None)),
        model_version=model_version,
    )
    if attributes:
        record.attributes = {_clean(key): _jsonable(value) for key, value in attributes.items()}
    return record


def trace_record(root: SpanRecord, attributes: Mapping[str, Any]) -> TraceRecord:
    """The trace summary a root span's record and (unpopped) attributes stand for."""
    return TraceRecord(
        trace_id=root.trace_id,
        correlation_id=_text(attributes.get(attr.CORRELATION_ID)) or root.trace_id,
        name=root.name,
        start_ns=root.start_ns,
        end_ns=root.end_ns,
        status=root.status,
        error_code=_text(attributes.get(attr.ERROR_CODE)),
        pipeline=_text(attributes.get(attr.PIPELINE)),
        pipeline_version=_text(attributes.get(attr.PIPELINE_VERSION)),
        label=_text(attributes.get(attr.PIPELINE_LABEL)),
        caller=_text(attributes.get(attr.CALLER)),
        input_tokens=root.input_tokens,
        output_tokens=root.output_tokens,
        cost_usd=root.cost_usd,
        decision=_text(attributes.get(attr.DECISION)),
    )


def _status_message(span: ReadableSpan) -> str | None:
    if span.status.description:
        return span.status.description
    for event in span.events:
        if event.name == "exception" and event.attributes:
            kind = event.attributes.get("exception.type", "")
            message = event.attributes.get("exception.message", "")
            return exception_message(str(kind), str(message))
    return None


def exception_message(kind: str, message: str) -> str | None:
    """A failed span's status message from its recorded exception."""
    return (f"{kind}: {message}" if kind else message) or None


def _with_fingerprint(model: str | None, fingerprint: str | None) -> str | None:
    if fingerprint is None:
        return model
    return f"{model} / fp={fingerprint}" if model is not None else f"fp={fingerprint}"


def _pop_count(attributes: dict[str, Any], key: str) -> int:
    """A token count as an int; a value that is not one stays in ``attributes``."""
    value = attributes.get(key)
    if value is None:
        return 0
    count = value if type(value) is int else _as_int(value)
    if count is None or not _INT64_MIN <= count <= _INT64_MAX:
        return 0
    del attributes[key]
    return count


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _pop_cost(attributes: dict[str, Any]) -> Decimal:
    """``keel.cost_usd`` as an exact Decimal; a value that is not one stays in ``attributes``."""
    value = attributes.get(attr.COST_USD)
    if value is None or isinstance(value, bool):
        return _ZERO
    try:
        cost = Decimal(value) if isinstance(value, str | int) else Decimal(str(value))
    except (InvalidOperation, TypeError, ValueError):
        return _ZERO
    if not cost.is_finite() or abs(cost) >= _COST_LIMIT:
        return _ZERO
    del attributes[attr.COST_USD]
    return cost


def _clean(text: str) -> str:
    """Text every backend stores: NUL (refused by Postgres) and lone surrogates (not UTF-8,
    e.g. from ``surrogateescape``) become U+FFFD."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            text = _SURROGATE.sub("\ufffd", text)
    return text


def _text(value: Any) -> str | None:
    if type(value) is str:
        return _clean(value)
    if value is None:
        return None
    if isinstance(value, str):
        return _clean(str(value))
    return orjson.dumps(_jsonable(value)).decode()


def _jsonable(value: Any) -> Any:
    """An attribute value the store's JSON column holds on every backend, unchanged if possible."""
    kind = type(value)
    if kind is str:
        return _clean(value)
    if kind is bool or value is None:
        return value
    if kind is int:
        return value if _INT64_MIN <= value <= _INT64_MAX else str(value)
    if kind is float:
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return _clean(str(value))
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        return [_jsonable(item) for item in value]
    return str(value)
