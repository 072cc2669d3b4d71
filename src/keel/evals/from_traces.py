"""Dataset items from stored traces: each run's input, and its answer as the expected one.

The answer a pipeline gave is only a candidate ground truth, so every item records the trace
it came from (``metadata.trace_id``) and is tagged ``from-trace``; review it before gating on
it. Traces whose input was not captured (``telemetry.capture_content`` off) are skipped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keel.core.dataset import DatasetItem
from keel.core.errors import InvalidInputError
from keel.core.tracing import ROOT, payload_value

if TYPE_CHECKING:
    from keel.store import Store

TRACE_TAG = "from-trace"


def items_from_traces(
    store: Store, *, pipeline: str | None, status: str | None = "ok", limit: int = 100
) -> list[DatasetItem]:
    """Items built from the newest traces matching the filter, oldest first."""
    items: list[DatasetItem] = []
    for trace in reversed(store.traces.list(limit=limit, pipeline=pipeline, status=status)):
        _, spans = store.traces.get(trace.trace_id)
        # the run's own root: under a caller's traceparent it is not the trace's first span
        root = next((s for s in spans if s.attributes.get(ROOT)), None) or next(
            (s for s in spans if s.parent_span_id is None), None
        )
        data = payload_value(root.input) if root is not None else None
        if data is None:
            continue
        output = payload_value(root.output) if root is not None else None
        label = output.get("label") if isinstance(output, dict) else None
        items.append(
            DatasetItem(
                item_id=trace.trace_id,
                input=data,
                expected=output,
                label=label if isinstance(label, str) else None,
                tags=(TRACE_TAG,),
                metadata={
                    "trace_id": trace.trace_id,
                    "pipeline": trace.pipeline,
                    "pipeline_version": trace.pipeline_version,
                },
            )
        )
    if not items:
        where = f"pipeline {pipeline!r}" if pipeline else "any pipeline"
        msg = f"no stored traces of {where} with captured input match the filter"
        raise InvalidInputError(msg, code="dataset_empty")
    return items
