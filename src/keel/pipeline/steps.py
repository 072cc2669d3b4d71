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
    attributes: Mapping[str, Any] = field(default_factory=dict)  # extra root span attributes
    stream: bool = False  # a streamed request: read the model as a stream, time its first token


# A stage that holds the answer for human review puts the review id here (RunState.attributes).
HELD_FOR_REVIEW = "keel.review.id"


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
    first_token_at: float | None = None  # time.perf_counter() of the model's first token
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
    before_generate: Sequence[Stage] = ()  # canary tokens; may amend the rendered messages
    payload_filter: PayloadFilter | None = None  # logging policy: how span payloads are stored

    def __add__(self, other: RunHooks) -> RunHooks:
        return RunHooks(
            (*self.before_preprocess, *other.before_preprocess),
            (*self.before_render, *other.before_render),
            (*self.after_generate, *other.after_generate),
            (*self.after_postprocess, *other.after_postprocess),
            (*self.before_generate, *other.before_generate),
            other.payload_filter or self.payload_filter,
        )


class PayloadFilter(Protocol):
    """Rewrites a span payload (JSON text) before any exporter sees it; None drops it.

    ``layer`` is the span's ``keel.layer``; ``field`` is ``input`` or ``output``.
    """

    def __call__(self, layer: str, field: str, text: str) -> str | None: ...


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


def mark_failed(span: Span, exc: BaseException, message: str | None = None) -> None:
    """Record a failure; a given ``message`` (scrubbed by a logging policy) replaces the
    exception's text, and the stack trace is then left out as it repeats that text."""
    code = exc.code if isinstance(exc, KeelError) else "internal_error"
    span.set_attribute(attr.ERROR_CODE, code)
    span.set_status(Status(StatusCode.ERROR, (str(exc) if message is None else message)[:500]))
    if message is None:
        span.record_exception(exc)
    else:
        span.record_exception(
            exc, attributes={"exception.message": message, "exception.stacktrace": ""}
        )


class SpanFactory:
    """Starts layer spans under a parent, recording payloads only when allowed."""

    __slots__ = ("_capture", "_filter", "_tracer")

    def __init__(
        self, tracer: Tracer, capture_content: bool, payload_filter: PayloadFilter | None = None
    ) -> None:
        self._tracer = tracer
        self._capture = capture_content
        self._filter = payload_filter

    def filtered(self, payload_filter: PayloadFilter) -> SpanFactory:
        """The same factory with payloads passed through ``payload_filter`` first."""
        return SpanFactory(self._tracer, self._capture, payload_filter)

    def start(
        self, name: str, parent: Context | None, attributes: Mapping[str, Any]
    ) -> tuple[Span, Context]:
        span = self._tracer.start_span(name, context=parent, attributes=attributes)
        return span, set_span_in_context(span, parent)

    def payload(self, span: Span, key: str, value: Any) -> None:
        if not self._capture:
            return
        text: str | None = to_json(value)
        if self._filter is not None and text is not None:
            attributes = getattr(span, "attributes", None) or {}
            layer = str(attributes.get(attr.LAYER, ""))
            text = self._filter(layer, key.removeprefix("keel."), text)
            if text is None:
                return
        span.set_attribute(key, text)

    def failed(self, span: Span, exc: BaseException) -> None:
        """``mark_failed`` with the message passed through the logging policy, if any."""
        if self._filter is None or not self._capture:
            mark_failed(span, exc)
            return
        attributes = getattr(span, "attributes", None) or {}
        layer = str(attributes.get(attr.LAYER, ""))
        scrubbed = self._filter(layer, "error", to_json(str(exc)))
        mark_failed(span, exc, scrubbed if scrubbed is not None else "(dropped by logging policy)")

    @contextmanager
    def layer(self, name: str, layer: str, parent: Context, payload: Any = None) -> Iterator[Span]:
        span = self._tracer.start_span(name, context=parent, attributes={attr.LAYER: layer})
        if payload is not None:
            self.payload(span, attr.INPUT, payload)
        try:
            yield span
        except BaseException as exc:
            self.failed(span, exc)
            raise
        finally:
            span.end()
