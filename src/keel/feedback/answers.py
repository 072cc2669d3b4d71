"""What a trace answered, what a pipeline version accepts as a correction, and whether a
correction overrides the automated answer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keel.core.errors import InvalidInputError, NotFoundError
from keel.core.tracing import ROOT, payload_value

if TYPE_CHECKING:
    from keel.core.tracing import SpanRecord, TraceRecord
    from keel.store import Store


@dataclass(frozen=True, slots=True)
class TracedAnswer:
    """A stored trace with its root span's input and answer (None when not captured)."""

    trace: TraceRecord
    input: Any
    answer: Any

    @property
    def label(self) -> str | None:
        return label_of(self.answer)


def label_of(answer: Any) -> str | None:
    """The label of a recorded answer (a label pipeline's decision), else None."""
    label = answer.get("label") if isinstance(answer, dict) else None
    return label if isinstance(label, str) else None


def load_answer(store: Store, trace_id: str) -> TracedAnswer:
    """The trace by id (or request id); ``trace_not_found`` until its root span is stored."""
    trace, spans = store.traces.get(trace_id)
    if trace is None:
        msg = f"trace {trace_id!r} is not complete yet (its root span is not stored); retry shortly"
        raise NotFoundError(msg, code="trace_not_found", trace_id=trace_id)
    # The run's root span: it may have a parent of its own (a caller's traceparent).
    root: SpanRecord | None = next((s for s in spans if s.attributes.get(ROOT)), None)
    if root is None:
        return TracedAnswer(trace, None, None)
    return TracedAnswer(trace, payload_value(root.input), payload_value(root.output))


def label_set(store: Store, pipeline: str | None, version: str | None) -> list[str] | None:
    """The labels of a label pipeline's version; None for other outputs or unknown versions."""
    if not pipeline or not version:
        return None
    try:
        spec = store.pipelines.get_version(pipeline, version).spec
    except NotFoundError:
        return None
    output = spec.get("output") or {}
    if output.get("type") != "label":
        return None
    return list(output.get("labels") or [])


def check_correction(labels: list[str] | None, label: str | None, output: Any) -> None:
    """A label pipeline takes a known label; any other pipeline takes an output."""
    if labels is not None:
        if label is None:
            msg = f"this is a label pipeline: correct it with a label, one of {labels}"
            raise InvalidInputError(msg, code="correction_invalid", labels=labels)
        if label not in labels:
            msg = f"unknown label {label!r}; this pipeline's labels are {labels}"
            raise InvalidInputError(msg, code="correction_label_unknown", labels=labels)
    elif label is not None:
        msg = "this pipeline does not output labels: correct it with an output"
        raise InvalidInputError(msg, code="correction_invalid")


def overrides(answer: Any, label: str | None, output: Any) -> bool:
    """Whether a correction differs from the automated answer (unknown answers count)."""
    if label is not None:
        return label_of(answer) != label
    return answer is None or answer != output
