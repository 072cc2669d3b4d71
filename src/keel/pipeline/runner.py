"""The runner: one trace per run, one span per layer, stages plugged in between layers.

pipeline NAME (root)
├── [before_preprocess stages]   input guardrails
├── preprocess                   validate input schema, map to variables
├── [before_render stages]       retrieval
├── render_prompt                sandboxed templates -> messages
├── [before_generate stages]     canary tokens
├── chat MODEL                   token fit, call, timeout, fallbacks
├── [after_generate stages]      output guardrails
├── postprocess                  parse -> output / decision (thresholds)
└── [after_postprocess stages]   review gate
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from opentelemetry.context import Context
from opentelemetry.trace import Span, Tracer, set_span_in_context

from keel.core import tracing as attr
from keel.core.decision import Decision
from keel.core.errors import KeelError
from keel.core.usage import Usage
from keel.pipeline.compiled import CompiledPipeline
from keel.pipeline.correlation import parent_context
from keel.pipeline.generate import ModelSource, generate
from keel.pipeline.postprocess import postprocess
from keel.pipeline.steps import (
    HELD_FOR_REVIEW,
    RunContext,
    RunHooks,
    RunState,
    SpanFactory,
    Stage,
    StagePlugin,
)


@dataclass(frozen=True, slots=True)
class RunResult:
    trace_id: str
    correlation_id: str
    pipeline: str
    version: str
    label: str | None
    output: Any
    decision: Decision | None
    text: str
    usage: Usage
    cost_usd: Decimal
    model: str
    model_version: str | None
    latency_ms: float
    review_id: str | None = None  # set when the answer is held for human review
    citations: tuple[dict[str, Any], ...] = ()  # passages retrieval put into the prompt
    retrieval: dict[str, Any] | None = None  # collection and index version searched
    ttft_ms: float | None = None  # run start to the model's first token, when it streamed

    def to_dict(self) -> dict[str, Any]:
        body = self._body()
        if self.retrieval is not None:
            body |= {"citations": list(self.citations), "retrieval": self.retrieval}
        return body

    def _body(self) -> dict[str, Any]:
        return {
            "trace_id": self.trace_id,
            "request_id": self.correlation_id,
            "pipeline": self.pipeline,
            "version": self.version,
            "label": self.label,
            "output": self.output,
            "decision": self.decision.to_dict() if self.decision else None,
            "text": self.text,
            "usage": {
                "input_tokens": self.usage.input_tokens,
                "output_tokens": self.usage.output_tokens,
                "total_tokens": self.usage.total_tokens,
            },
            "cost_usd": str(self.cost_usd),
            "model": self.model,
            "model_version": self.model_version,
            "latency_ms": round(self.latency_ms, 3),
        } | ({"review_id": self.review_id} if self.review_id else {})


class Runner:
    """Executes compiled pipelines. Holds no per-run state; safe to share across requests."""

    def __init__(
        self,
        models: ModelSource,
        tracer: Tracer,
        *,
        default_model: str,
        capture_content: bool = True,
        hooks: RunHooks | None = None,
        plugins: Sequence[StagePlugin] = (),
    ) -> None:
        self._models = models
        self._spans = SpanFactory(tracer, capture_content)
        self._default_model = default_model
        self._hooks = hooks or RunHooks()
        self._plugins = tuple(plugins)
        self._hooks_by_version: dict[tuple[str, str], RunHooks] = {}

    def hooks_for(self, compiled: CompiledPipeline) -> RunHooks:
        """The global hooks plus every plugin's stages for this version (built once)."""
        key = (compiled.name, compiled.version)
        found = self._hooks_by_version.get(key)
        if found is None:
            found = self._hooks
            for plugin in self._plugins:
                found = found + plugin.hooks_for(compiled)
            self._hooks_by_version[key] = found
        return found

    def _spans_for(self, compiled: CompiledPipeline) -> SpanFactory:
        """The span factory of one run: payloads filtered by the version's logging policy."""
        payload_filter = self.hooks_for(compiled).payload_filter
        return self._spans if payload_filter is None else self._spans.filtered(payload_filter)

    async def run(
        self, compiled: CompiledPipeline, data: Any, context: RunContext | None = None
    ) -> RunResult:
        context = context or RunContext()
        parent, known_id = parent_context(context.correlation_id, context.parent)
        started = time.perf_counter()
        root, ctx = self._spans.start(
            f"pipeline {compiled.name}", parent, self._root_attributes(compiled, context)
        )
        trace_id = format(root.get_span_context().trace_id, "032x")
        correlation_id = known_id or trace_id
        root.set_attribute(attr.CORRELATION_ID, correlation_id)
        state = RunState(compiled, data, context, spans=self._spans_for(compiled))
        ttft_ms = None
        try:
            await self._layers(state, ctx)
            if state.first_token_at is not None:
                ttft_ms = (state.first_token_at - started) * 1000
                root.set_attribute(attr.TTFT_MS, round(ttft_ms, 3))
        except BaseException as exc:
            (state.spans or self._spans).failed(root, exc)
            if isinstance(exc, KeelError):
                exc.details.setdefault("trace_id", trace_id)
                exc.details.setdefault("request_id", correlation_id)
            raise
        finally:
            self._finish_root(root, state)
        response = state.response
        assert response is not None and state.model_id is not None
        return RunResult(
            trace_id=trace_id,
            correlation_id=correlation_id,
            pipeline=compiled.name,
            version=compiled.version,
            label=context.label,
            output=state.output,
            decision=state.decision,
            text=response.text,
            usage=state.usage,
            cost_usd=state.cost_usd,
            model=state.model_id,
            model_version=response.model,
            latency_ms=(time.perf_counter() - started) * 1000,
            review_id=state.attributes.get(HELD_FOR_REVIEW),
            citations=tuple(state.attributes.get("citations", ())),
            retrieval=state.attributes.get("retrieval"),
            ttft_ms=ttft_ms,
        )

    @staticmethod
    def _root_attributes(compiled: CompiledPipeline, context: RunContext) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            attr.ROOT: True,
            attr.LAYER: "pipeline",
            attr.PIPELINE: compiled.name,
            attr.PIPELINE_VERSION: compiled.version,
        }
        if context.label:
            attributes[attr.PIPELINE_LABEL] = context.label
        if context.caller:
            attributes[attr.CALLER] = context.caller
        attributes.update(context.attributes)  # e.g. the deployment and arm that routed it
        return attributes

    def _finish_root(self, root: Span, state: RunState) -> None:
        root.set_attribute(attr.GEN_AI_USAGE_INPUT_TOKENS, state.usage.input_tokens)
        root.set_attribute(attr.GEN_AI_USAGE_OUTPUT_TOKENS, state.usage.output_tokens)
        root.set_attribute(attr.COST_USD, str(state.cost_usd))
        if state.decision is not None:
            root.set_attribute(attr.DECISION, state.decision.decision)
        spans = state.spans or self._spans
        spans.payload(root, attr.INPUT, state.input)
        if state.decision is not None or state.output is not None:
            spans.payload(root, attr.OUTPUT, state.decision or state.output)
        root.end()

    async def _stages(self, stages: Sequence[Stage], state: RunState, ctx: Context) -> None:
        for stage in stages:
            with (state.spans or self._spans).layer(stage.name, stage.layer, ctx) as span:
                state.parent = set_span_in_context(span, ctx)
                await stage(state)
        state.parent = None

    async def _layers(self, state: RunState, ctx: Context) -> None:
        compiled, hooks = state.compiled, self.hooks_for(state.compiled)
        spans = state.spans or self._spans
        await self._stages(hooks.before_preprocess, state, ctx)
        with spans.layer("preprocess", "preprocess", ctx, state.input) as span:
            state.variables = compiled.mapper(state.input)
            spans.payload(span, attr.OUTPUT, state.variables)
        await self._stages(hooks.before_render, state, ctx)
        with spans.layer("render_prompt", "prompt", ctx, state.variables) as span:
            state.messages = compiled.render(state.variables)
            spans.payload(span, attr.OUTPUT, state.messages)
        await self._stages(hooks.before_generate, state, ctx)
        await self._generate(state, ctx)
        await self._stages(hooks.after_generate, state, ctx)
        assert state.response is not None
        with spans.layer("postprocess", "postprocess", ctx, state.response.text) as span:
            parsed = postprocess(compiled, state.response.text)
            state.output, state.decision = parsed.value, parsed.decision
            spans.payload(span, attr.OUTPUT, parsed.decision or parsed.value)
            if parsed.decision is not None:
                span.set_attribute(attr.DECISION, parsed.decision.decision)
        await self._stages(hooks.after_postprocess, state, ctx)

    async def _generate(self, state: RunState, ctx: Context) -> None:
        model_spec = state.compiled.spec.model
        chain = [model_spec.id or self._default_model, *model_spec.fallbacks]
        spans = state.spans or self._spans
        with spans.layer(f"chat {chain[0]}", "model", ctx, state.messages) as span:
            generation = await generate(
                span,
                self._models,
                chain,
                state.messages,
                state.compiled.params,
                timeout_s=model_spec.timeout_s,
                extra=dict(model_spec.options),
                stream=state.context.stream,
            )
            spans.payload(span, attr.OUTPUT, generation.response.text)
        state.response = generation.response
        state.model_id = generation.model_id
        state.first_token_at = generation.first_token_at
        state.usage = state.usage + generation.response.usage
        state.cost_usd += generation.cost_usd
