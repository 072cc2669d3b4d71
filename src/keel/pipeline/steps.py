"""Run state, extension points and the span helper shared by the runner's steps."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Protocol

import orjson
from opentelemetry.context import Context
from opentelemetry.trace import Span, Status, StatusCode, Tracer, set_span_in_context

from keel.core import tracing as attr
from keel.core.decision import Decision
from keel.core.errors import KeelError
from keel.core.messages import ChatResponse, Message
from keel.core.usage import Usage
from keel.pipeline.compiled import CompiledPipeline


@dataclass(slots=True)
class RunContext:
    """Who asked, and where this run hangs in a wider trace."""

    correlation_id: str | None = None
    parent: Context | None = None
    caller: str | None = None
    label: str | None = None
    groups: tuple[str, ...] = ()  # the caller's access groups: what retrieval may show it


@dataclass(slots=True)
class RunState:
    """What flows through the layers of one run; stages may read and amend it."""

    compiled: CompiledPipeline
    input: Any
    context: RunContext
    variables: dict[str, Any] = field(default_factory=dict)
    messages: tuple[Message, ...] = ()
    response: ChatResponse | None = None
    model_id: str | None = None
    output: Any = None
    decision: Decision | None = None
    usage: Usage = field(default_factory=Usage)
    cost_usd: Decimal = Decimal(0)
    attributes: dict[str, Any] = field(default_factory=dict)
    spans: SpanFactory | None = None  # for stages that open child spans of their own
    parent: Context | None = None  # the running stage's span, as a parent context


class Stage(Protocol):
    """An extension point: guardrails, retrieval and review plug in as stages.

    A stage runs as its own span (named ``name``, tagged with ``layer``), may amend the run
    state, and stops the run by raising a ``KeelError``.
    """

    name: str
    layer: str

    async def __call__(self, state: RunState) -> None: ...


@dataclass(frozen=True, slots=True)
class RunHooks:
    """Stages run around the built-in layers, in order."""

    before_preprocess: Sequence[Stage] = ()  # input guardrails
    before_render: Sequence[Stage] = ()  # retrieval
    after_generate: Sequence[Stage] = ()  # output guardrails
    after_postprocess: Sequence[Stage] = ()  # review gate

    def __add__(self, other: RunHooks) -> RunHooks:
        return RunHooks(
            (*self.before_preprocess, *other.before_preprocess),
            (*self.before_render, *other.before_render),
            (*self.after_generate, *other.after_generate),
            (*self.after_postprocess, *other.after_postprocess),
        )


class StagePlugin(Protocol):
    """A feature (guardrails, retrieval, review) that contributes stages per pipeline version.

    ``hooks_for`` is called once per compiled version and its result cached by the runner,
    so it may do real work (build scanners, open an index) but must not depend on the run.
    """

    def hooks_for(self, compiled: CompiledPipeline) -> RunHooks: ...


def to_json(value: Any) -> str:
    """Span payloads: compact JSON, never failing on odd values."""
    return orjson.dumps(
        value, default=_fallback, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATACLASS
    ).decode()


def _fallback(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Message):
        return value.to_dict()
    if hasattr(value, "to_dict"):
        return value.to_dict()
    return repr(value)


def mark_failed(span: Span, exc: BaseException) -> None:
    code = exc.code if isinstance(exc, KeelError) else "internal_error"
    span.set_attribute(attr.ERROR_CODE, code)
    span.set_status(Status(StatusCode.ERROR, str(exc)[:500]))
    span.record_exception(exc)


class SpanFactory:
    """Starts layer spans under a parent, recording payloads only when allowed."""

    __slots__ = ("_capture", "_tracer")

    def __init__(self, tracer: Tracer, capture_content: bool) -> None:
        self._tracer = tracer
        self._capture = capture_content

    def start(
        self, name: str, parent: Context | None, attributes: Mapping[str, Any]
    ) -> tuple[Span, Context]:
        span = self._tracer.start_span(name, context=parent, attributes=attributes)
        return span, set_span_in_context(span, parent)

    def payload(self, span: Span, key: str, value: Any) -> None:
        if self._capture:
            span.set_attribute(key, to_json(value))

    @contextmanager
    def layer(self, name: str, layer: str, parent: Context, payload: Any = None) -> Iterator[Span]:
        span = self._tracer.start_span(name, context=parent, attributes={attr.LAYER: layer})
        if payload is not None:
            self.payload(span, attr.INPUT, payload)
        try:
            yield span
        except BaseException as exc:
            mark_failed(span, exc)
            raise
        finally:
            span.end()
