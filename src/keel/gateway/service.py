"""The gateway service: resolve the model name, call it resiliently, trace it, answer.

Route handlers parse and authorize; everything between the parsed request and the JSON
answer happens here. Each call is one trace: a root ``gateway`` span with the caller,
the model asked for and the one that served, tokens, cost, retries and fallbacks as
events. A ``pipeline/NAME`` model runs the pipeline instead (its own trace, see
:mod:`keel.gateway.pipelines`).

A cache hit bills nothing: its span and the ``keel_cache_saved_usd`` metric carry what the
original answer cost, and the usage ledger counts the hit and the saving.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from opentelemetry.context import Context
from opentelemetry.trace import Span

from keel.core import tracing as attr
from keel.core.errors import KeelError
from keel.core.messages import ChatChunk, ChatRequest, ChatResponse
from keel.core.usage import Usage
from keel.deploy.router import RequestKeys
from keel.deploy.serving import route as route_pipeline
from keel.gateway import wire
from keel.gateway.cache import CachedAnswer, ResponseCache, cache_key, decode_entry, encode_entry
from keel.gateway.embeddings import embed, embedding_target, falls_back, parse_inputs
from keel.gateway.metrics import GatewayMetrics
from keel.gateway.pipelines import pipeline_chat
from keel.gateway.replay import DONE, StreamAssembler, event, replay
from keel.gateway.resilience import ModelCaller
from keel.gateway.routing import route
from keel.gateway.targets import Target, Targets
from keel.gateway.usage import UsageLedger
from keel.pipeline.steps import mark_failed, to_json
from keel.providers.base import ChatModel
from keel.telemetry.record_span import RootSpans

if TYPE_CHECKING:
    from keel.runtime import Runtime


@dataclass(frozen=True, slots=True)
class CallContext:
    """Who is calling and where the call hangs in a wider trace."""

    request_id: str
    parent: Context | None = None
    caller: str | None = None
    bypass_cache: bool = False
    on_usage: Callable[[Usage, Decimal], Awaitable[None]] | None = None  # limits, budgets
    groups: tuple[str, ...] = ()  # the caller's access groups, for retrieval
    keys: RequestKeys | None = None  # headers and key id: sticky deployment routing
    key_id: str = ""  # the API key's id, for the usage ledger


@dataclass(frozen=True, slots=True)
class Streamed:
    """A stream ready to send: the SSE bytes and the model that serves them."""

    model_id: str
    events: AsyncIterator[bytes]
    trace_id: str
    cached: bool = False


@dataclass(frozen=True, slots=True)
class Answer:
    """A finished chat completion, ready to send."""

    body: dict[str, Any]
    model_id: str
    usage: Usage
    cost_usd: Decimal
    trace_id: str
    cached: bool = False


class Gateway:
    def __init__(
        self,
        runtime: Runtime,
        caller: ModelCaller,
        cache: ResponseCache | None = None,
        metrics: GatewayMetrics | None = None,
        ledger: UsageLedger | None = None,
    ) -> None:
        self.runtime = runtime
        self.metrics = metrics
        self.ledger = ledger
        self.caller = caller
        self.cache = cache
        self.targets = Targets(runtime.settings.gateway, runtime.registry)
        self._spans = RootSpans(runtime.tracer_provider, "keel.gateway")
        self._capture = runtime.settings.telemetry.capture_content
        self.max_body_bytes = runtime.settings.gateway.max_body_bytes

    def model_list(self) -> list[dict[str, Any]]:
        """What ``GET /v1/models`` shows: the default model, aliases, then pipelines."""
        names = [self.runtime.settings.providers.default_model, *self.targets.aliases]
        pipelines = self.runtime.store.pipelines.list_pipelines()
        names += [f"pipeline/{p.name}" for p in pipelines]
        return [{"id": n, "object": "model", "created": 0, "owned_by": "keel"} for n in names]

    # --- plain completions ------------------------------------------------------------

    async def chat(self, call: wire.ChatCall, body: dict[str, Any], ctx: CallContext) -> Answer:
        target = self.targets.resolve(call.model)
        if target.pipeline is not None:
            return await self._pipeline(target, call, body, ctx)
        key = self._cache_key(body, ctx)
        if key is not None:
            hit = await self._lookup(key)
            if hit is not None:
                return self._cached(hit, target, ctx)
        span, trace_id = self._start(target, call, ctx)
        try:
            model_id, response, model = await self._complete(target, call, span, ctx.caller)
            cost = self.caller.priced(model_id, model.profile).cost(response.usage)
            self._finish(span, model_id, response, cost)
        except BaseException as exc:
            _failed(span, exc, trace_id, ctx)
            raise
        finally:
            span.end()
        created = int(time.time())
        out = wire.completion_json(response, call.model, _completion_id(), created)
        if key is not None:
            await self._remember(key, out, model_id, cost)
        await self._account(ctx, response.usage, cost, model_id)
        return Answer(out, model_id, response.usage, cost, trace_id)

    async def _pipeline(
        self, target: Target, call: wire.ChatCall, body: dict[str, Any], ctx: CallContext
    ) -> Answer:
        """Run a pipeline version; its answers are cached per version like model answers."""
        ref = target.pipeline
        assert ref is not None
        keys = dataclasses.replace(ctx.keys or RequestKeys(), body=call.extra)
        routed = route_pipeline(self.runtime, ref.name, ref.version, ref.label, keys)
        compiled = routed.compiled
        # Retrieval filters by the caller's groups, so answers are cached per group set.
        key = self._cache_key(body, ctx, f"{compiled.version}|{','.join(sorted(ctx.groups))}")
        if key is not None:
            hit = await self._lookup(key)
            if hit is not None:
                return self._cached(hit, target, ctx, compiled.name)
        answer = await pipeline_chat(self.runtime, target, routed, call, ctx)
        if key is not None:
            await self._remember(key, answer.body, answer.model_id, answer.cost_usd)
        await self._account(ctx, answer.usage, answer.cost_usd, answer.model_id, compiled.name)
        return answer

    # --- the response cache ------------------------------------------------------------

    def _cache_key(self, body: dict[str, Any], ctx: CallContext, version: str = "") -> str | None:
        if self.cache is None or ctx.bypass_cache:
            return None
        return cache_key(body, version or None)

    async def _lookup(self, key: str) -> CachedAnswer | None:
        assert self.cache is not None
        raw = await self.cache.get(key)
        hit = decode_entry(raw) if raw is not None else None
        if self.metrics is not None:
            self.metrics.cache.labels("hit" if hit is not None else "miss").inc()
        return hit

    async def _remember(self, key: str, body: dict[str, Any], model_id: str, cost: Decimal) -> None:
        assert self.cache is not None
        await self.cache.set(key, encode_entry(body, model_id, cost))

    def _cached(
        self, hit: CachedAnswer, target: Target, ctx: CallContext, pipeline: str = ""
    ) -> Answer:
        """The cached answer under a fresh id; billed nothing, its original cost saved."""
        out = dict(hit.body)
        out["id"], out["created"] = _completion_id(), int(time.time())
        span, trace_id = self._start(target, None, ctx)
        span.set_attribute("keel.cache.hit", True)
        span.set_attribute("keel.cache.saved_usd", str(hit.cost_usd))
        span.set_attribute("keel.model.served", hit.model)
        span.set_attribute(attr.COST_USD, "0")
        span.end()
        if self.metrics is not None:
            self.metrics.saved(
                hit.cost_usd, key=ctx.caller or "", model=hit.model, pipeline=pipeline
            )
        if self.ledger is not None:
            self.ledger.record(
                ctx.key_id, hit.model, Usage(), Decimal(0), pipeline=pipeline, saved=hit.cost_usd
            )
        usage = out.get("usage") or {}
        return Answer(
            out,
            hit.model,
            Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)),
            Decimal(0),
            trace_id,
            cached=True,
        )

    def _chain(
        self, target: Target, call: wire.ChatCall, span: Span, caller: str | None
    ) -> tuple[str, ...]:
        """The alias's chain, or the one its routing rules pick (recorded on the span)."""
        if not target.routes:
            return target.chain
        decision = route(target.routes, target.chain, call.messages, call.extra, caller)
        span.set_attribute("keel.route", decision.reason)
        span.add_event("routed", {"rule": decision.reason, "models": list(decision.chain)})
        return decision.chain

    async def _complete(
        self, target: Target, call: wire.ChatCall, span: Span, caller: str | None
    ) -> tuple[str, ChatResponse, ChatModel]:
        failures: list[BaseException] = []
        chain = self._chain(target, call, span, caller)
        for model_id in chain:
            model = self.targets.model(model_id)
            request = ChatRequest(model.ref.name, call.messages, call.params, call.extra)
            try:
                response = await self.caller.complete(
                    model, request, model_id, self._retry_hook(span)
                )
            except KeelError as exc:
                if not falls_back(exc) or model_id == chain[-1]:
                    _attempts(exc, chain, failures)
                    raise
                failures.append(exc)
                self._fell_back(span, model_id, exc)
                continue
            return model_id, response, model
        raise AssertionError("a target always has at least one model")

    # --- streams ------------------------------------------------------------------------

    async def stream(self, call: wire.ChatCall, body: dict[str, Any], ctx: CallContext) -> Streamed:
        """Open the stream (retries and fallbacks happen here, before any byte is sent) and
        return the served model id and the SSE bytes of the answer. A cached answer (plain or
        a completed stream) is replayed as a stream; a completed stream is cached."""
        target = self.targets.resolve(call.model)
        if target.pipeline is not None:
            answer = await self._pipeline(target, call, body, ctx)
            events = replay(answer.body, call.include_usage)
            return Streamed(answer.model_id, events, answer.trace_id, answer.cached)
        key = self._cache_key(body, ctx)
        if key is not None:
            hit = await self._lookup(key)
            if hit is not None:
                answer = self._cached(hit, target, ctx)
                events = replay(answer.body, call.include_usage)
                return Streamed(answer.model_id, events, answer.trace_id, cached=True)
        span, trace_id = self._start(target, call, ctx)
        started = time.perf_counter()
        try:
            model_id, model, first, rest = await self._open(target, call, span, ctx.caller)
            if self.metrics is not None:
                self.metrics.ttft.labels(model_id).observe(time.perf_counter() - started)
        except BaseException as exc:
            _failed(span, exc, trace_id, ctx)
            span.end()
            raise
        relay = self._relay(call, ctx, span, (model, model_id, key), first, rest)
        return Streamed(model_id, relay, trace_id)

    async def _open(
        self, target: Target, call: wire.ChatCall, span: Span, caller: str | None
    ) -> tuple[str, ChatModel, ChatChunk | None, AsyncIterator[ChatChunk]]:
        failures: list[BaseException] = []
        chain = self._chain(target, call, span, caller)
        for model_id in chain:
            model = self.targets.model(model_id)
            request = ChatRequest(model.ref.name, call.messages, call.params, call.extra)
            try:
                first, rest = await self.caller.open_stream(
                    model, request, model_id, self._retry_hook(span)
                )
            except KeelError as exc:
                if not falls_back(exc) or model_id == chain[-1]:
                    _attempts(exc, chain, failures)
                    raise
                failures.append(exc)
                self._fell_back(span, model_id, exc)
                continue
            return model_id, model, first, rest
        raise AssertionError("a target always has at least one model")

    async def _relay(
        self,
        call: wire.ChatCall,
        ctx: CallContext,
        span: Span,
        served: tuple[ChatModel, str, str | None],
        first: ChatChunk | None,
        rest: AsyncIterator[ChatChunk],
    ) -> AsyncIterator[bytes]:
        completion_id, created, name = _completion_id(), int(time.time()), call.model
        model, model_id, key = served
        usage: Usage | None = None
        answer = StreamAssembler()
        try:
            yield event(wire.role_chunk_json(name, completion_id, created))
            chunk = first
            while chunk is not None:
                usage = chunk.usage or usage
                answer.add(chunk)
                if chunk.delta or chunk.tool_calls or chunk.finish_reason or chunk.logprobs:
                    yield event(wire.chunk_json(chunk, name, completion_id, created))
                chunk = await anext(rest, None)
            usage = usage or Usage()
            if call.include_usage:
                yield event(wire.usage_chunk_json(usage, name, completion_id, created))
            yield DONE
            response = answer.response(usage)
            cost = self.caller.priced(model_id, model.profile).cost(usage)
            self._finish(span, model_id, response, cost)
            if key is not None and answer.cachable:
                out = wire.completion_json(response, name, completion_id, created)
                await self._remember(key, out, model_id, cost)
            await self._account(ctx, usage, cost, model_id)
        except KeelError as exc:
            mark_failed(span, exc)
            yield event({"error": _stream_error(exc)})
        finally:
            await rest.aclose()  # type: ignore[attr-defined]
            span.end()

    # --- embeddings -------------------------------------------------------------------------

    async def embed(self, body: Any, ctx: CallContext) -> Answer:
        """``/v1/embeddings``: resilient, traced and accounted like chat. The span records
        the texts (when content is captured) and how many vectors of what size came back."""
        name, texts, encoding = parse_inputs(body)
        target = embedding_target(self.targets, name)
        span, trace_id = self._start(target, None, ctx, "embeddings")
        if self._capture:
            span.set_attribute(attr.INPUT, to_json(texts))
        hooks = (self._retry_hook(span), lambda model_id, exc: self._fell_back(span, model_id, exc))
        try:
            done = await embed(self.targets, self.caller, target, (texts, encoding), hooks)
            data = done.body["data"]
            span.set_attributes(
                {
                    attr.GEN_AI_PROVIDER: done.model_id.partition(":")[0],
                    "keel.model.served": done.model_id,
                    attr.GEN_AI_USAGE_INPUT_TOKENS: done.usage.input_tokens,
                    attr.COST_USD: str(done.cost_usd),
                    "keel.embeddings.count": len(data),
                    "keel.embeddings.dimensions": len(data[0]["embedding"]) if data else 0,
                }
            )
        except BaseException as exc:
            _failed(span, exc, trace_id, ctx)
            raise
        finally:
            span.end()
        await self._account(ctx, done.usage, done.cost_usd, done.model_id)
        return Answer(done.body, done.model_id, done.usage, done.cost_usd, trace_id)

    # --- accounting -----------------------------------------------------------------------

    async def _account(
        self, ctx: CallContext, usage: Usage, cost: Decimal, model_id: str, pipeline: str = ""
    ) -> None:
        if self.metrics is not None:
            key = ctx.caller or ""
            self.metrics.usage(usage, cost, key=key, model=model_id, pipeline=pipeline)
        if self.ledger is not None:
            self.ledger.record(ctx.key_id, model_id, usage, cost, pipeline=pipeline)
        if ctx.on_usage is not None:
            await ctx.on_usage(usage, cost)

    def _retry_hook(self, span: Span | None) -> Any:
        metrics = self.metrics

        def on_retry(model_id: str, exc: BaseException, delay: float) -> None:
            code = exc.code if isinstance(exc, KeelError) else type(exc).__name__
            if span is not None:
                span.add_event("retry", {"model": model_id, "code": code, "delay_s": delay})
            if metrics is not None:
                metrics.retries.labels(model_id, code).inc()

        return on_retry

    def _fell_back(self, span: Span, model_id: str, exc: KeelError) -> None:
        span.add_event("fallback", {"model": model_id, "code": exc.code})
        if self.metrics is not None:
            self.metrics.fallbacks.labels(model_id, exc.code).inc()

    # --- spans ----------------------------------------------------------------------------

    def _start(
        self, target: Target, call: wire.ChatCall | None, ctx: CallContext, operation: str = "chat"
    ) -> tuple[Span, str]:
        attributes: dict[str, Any] = {
            attr.ROOT: True,
            attr.LAYER: "gateway",
            attr.CORRELATION_ID: ctx.request_id,
            attr.GEN_AI_OPERATION: operation,
            attr.GEN_AI_REQUEST_MODEL: target.name,
        }
        if ctx.caller:
            attributes[attr.CALLER] = ctx.caller
        span = self._spans.start(f"gateway {target.name}", ctx.request_id, ctx.parent, attributes)
        if call is not None and self._capture:
            span.set_attribute(attr.INPUT, to_json(call.messages))
        return span, format(span.get_span_context().trace_id, "032x")

    def _finish(self, span: Span, model_id: str, response: ChatResponse, cost: Decimal) -> None:
        attributes: dict[str, Any] = {
            attr.GEN_AI_PROVIDER: model_id.partition(":")[0],
            "keel.model.served": model_id,
            attr.GEN_AI_USAGE_INPUT_TOKENS: response.usage.input_tokens,
            attr.GEN_AI_USAGE_OUTPUT_TOKENS: response.usage.output_tokens,
            attr.COST_USD: str(cost),
        }
        if response.model:
            attributes[attr.GEN_AI_RESPONSE_MODEL] = response.model
        if self._capture:
            attributes[attr.OUTPUT] = to_json(response.text)
        span.set_attributes(attributes)  # one lock, not one per attribute


def _attempts(exc: KeelError, chain: tuple[str, ...], failures: list[BaseException]) -> None:
    if len(chain) > 1:
        done = [*failures, exc]
        exc.details["attempts"] = [
            {"model": m, "code": f.code if isinstance(f, KeelError) else "error"}
            for m, f in zip(chain, done, strict=False)
        ]


def _failed(span: Span, exc: BaseException, trace_id: str, ctx: CallContext) -> None:
    mark_failed(span, exc)
    if isinstance(exc, KeelError):
        exc.details.setdefault("trace_id", trace_id)


def _stream_error(exc: KeelError) -> dict[str, Any]:
    return {
        "code": exc.code,
        "type": "upstream_error" if exc.status >= 500 else "invalid_request_error",
        "message": exc.message,
    }


def _completion_id() -> str:
    # An id, not a secret: the PRNG saves a getrandom() system call per answer.
    return f"chatcmpl-{random.getrandbits(96):024x}"
