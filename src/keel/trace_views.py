"""Plain-dict views of trace and span records, shared by the HTTP API and the CLI."""

from __future__ import annotations

from typing import Any

from keel.core.tracing import SpanRecord, TraceRecord, payload_value


def trace_dict(trace: TraceRecord) -> dict[str, Any]:
    return {
        "trace_id": trace.trace_id,
        "request_id": trace.correlation_id,
        "name": trace.name,
        "pipeline": trace.pipeline,
        "version": trace.pipeline_version,
        "label": trace.label,
        "caller": trace.caller,
        "status": trace.status,
        "error_code": trace.error_code,
        "decision": trace.decision,
        "start_ns": trace.start_ns,
        "duration_ms": round(trace.duration_ms, 3),
        "input_tokens": trace.input_tokens,
        "output_tokens": trace.output_tokens,
        "cost_usd": str(trace.cost_usd),
    }


def span_dict(span: SpanRecord) -> dict[str, Any]:
    return {
        "span_id": span.span_id,
        "parent_span_id": span.parent_span_id,
        "name": span.name,
        "layer": span.layer,
        "status": span.status,
        "status_message": span.status_message,
        "start_ns": span.start_ns,
        "duration_ms": round(span.duration_ms, 3),
        "input": payload_value(span.input),
        "output": payload_value(span.output),
        "input_tokens": span.input_tokens,
        "output_tokens": span.output_tokens,
        "cost_usd": str(span.cost_usd),
        "model": span.model,
        "model_version": span.model_version,
        "attributes": span.attributes,
    }
