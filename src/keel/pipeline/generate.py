"""The model layer: model-specific preprocessing, then the call, with timeout and fallbacks.

A run asked to stream (a streamed request, see ``RunContext.stream``) reads the model's
answer as a stream and collects it whole, noting when the first token arrived; everything
after the model layer still sees the whole answer.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Protocol

from opentelemetry.trace import Span

from keel.core import tracing as attr
from keel.core.assembly import StreamAssembler
from keel.core.errors import InvalidInputError, KeelError, ProviderError, ProviderTimeout
from keel.core.messages import ChatRequest, ChatResponse, GenerationParams, Message, ModelRef
from keel.core.usage import Usage
from keel.providers.base import ChatModel


class ModelSource(Protocol):
    """Where the runner gets models from (the provider registry in production)."""

    def model(self, model_id: str) -> ChatModel: ...


@dataclass(frozen=True, slots=True)
class _Answer:
    response: ChatResponse
    first_token_at: float | None


@dataclass(frozen=True, slots=True)
class Generation:
    model_id: str
    response: ChatResponse
    cost_usd: Decimal
    prompt_tokens_estimate: int
    first_token_at: float | None = None  # time.perf_counter() of the first token (streamed)


def _request_attributes(span: Span, ref: ModelRef, params: GenerationParams) -> None:
    span.set_attribute(attr.GEN_AI_OPERATION, "chat")
    span.set_attribute(attr.GEN_AI_PROVIDER, ref.provider)
    span.set_attribute(attr.GEN_AI_REQUEST_MODEL, str(ref))
    for key, value in (
        (attr.GEN_AI_REQUEST_TEMPERATURE, params.temperature),
        (attr.GEN_AI_REQUEST_TOP_P, params.top_p),
        (attr.GEN_AI_REQUEST_MAX_TOKENS, params.max_tokens),
        (attr.GEN_AI_REQUEST_SEED, params.seed),
    ):
        if value is not None:
            span.set_attribute(key, value)


def _response_attributes(span: Span, generation: Generation) -> None:
    response = generation.response
    span.set_attribute(attr.GEN_AI_USAGE_INPUT_TOKENS, response.usage.input_tokens)
    span.set_attribute(attr.GEN_AI_USAGE_OUTPUT_TOKENS, response.usage.output_tokens)
    span.set_attribute(attr.COST_USD, str(generation.cost_usd))
    span.set_attribute(attr.PROMPT_TOKENS_ESTIMATE, generation.prompt_tokens_estimate)
    if response.model:
        span.set_attribute(attr.GEN_AI_RESPONSE_MODEL, response.model)
    if response.response_id:
        span.set_attribute(attr.GEN_AI_RESPONSE_ID, response.response_id)
    if response.system_fingerprint:
        span.set_attribute(attr.GEN_AI_RESPONSE_SYSTEM_FINGERPRINT, response.system_fingerprint)
    if response.finish_reason:
        span.set_attribute(attr.GEN_AI_RESPONSE_FINISH_REASONS, (response.finish_reason,))


def _fit_context(model: ChatModel, messages: tuple[Message, ...], params: GenerationParams) -> int:
    """Count prompt tokens as this model sees them and refuse what cannot fit."""
    profile = model.profile
    estimate = profile.count_messages(messages)
    budget = profile.context_window - (params.max_tokens or 0)
    if estimate > budget:
        raise InvalidInputError(
            f"the prompt needs {estimate} tokens but {model.ref} leaves room for {budget} "
            f"(context {profile.context_window}, max_tokens {params.max_tokens or 0}); "
            "shorten the input or raise the model's context window",
            code="context_window_exceeded",
            prompt_tokens=estimate,
            budget=budget,
        )
    return estimate


async def _call(model: ChatModel, request: ChatRequest, stream: bool) -> _Answer:
    if not stream:
        return _Answer(await model.complete(request), None)
    assembler, first_at, usage = StreamAssembler(), None, None
    async for chunk in model.stream(request):
        if first_at is None and (chunk.delta or chunk.tool_calls):
            first_at = time.perf_counter()
        assembler.add(chunk)
        usage = chunk.usage or usage
    return _Answer(assembler.response(usage or Usage()), first_at)


async def _attempt(
    model: ChatModel, request: ChatRequest, timeout_s: float | None, stream: bool
) -> _Answer:
    if timeout_s is None:
        return await _call(model, request, stream)
    try:
        async with asyncio.timeout(timeout_s):
            return await _call(model, request, stream)
    except TimeoutError as exc:
        raise ProviderTimeout(
            f"{model.ref} did not answer within {timeout_s:g} s (the pipeline's timeout_s)",
            provider=model.ref.provider,
            model=str(model.ref),
        ) from exc


async def generate(
    span: Span,
    models: ModelSource,
    chain: list[str],
    messages: tuple[Message, ...],
    params: GenerationParams,
    *,
    timeout_s: float | None = None,
    extra: dict[str, Any] | None = None,
    stream: bool = False,
) -> Generation:
    """Call the first model of ``chain`` that answers; each failure is an event on the span.
    With ``stream`` the answer is read as a stream and its first token timed."""
    failures: list[KeelError] = []
    for position, model_id in enumerate(chain):
        model = models.model(model_id)
        if position == 0:
            _request_attributes(span, model.ref, params)
        estimate = _fit_context(model, messages, params)
        if not model.profile.supports_json_schema and params.response_format is not None:
            params = replace(params, response_format=None)
        request = ChatRequest(model.ref.name, messages, params, extra or {})
        try:
            answer = await _attempt(model, request, timeout_s, stream)
        except ProviderError as exc:
            failures.append(exc)
            span.add_event("model_attempt_failed", {"model": model_id, "code": exc.code})
            continue
        span.set_attribute(attr.ATTEMPTS, position + 1)
        if position > 0:
            span.set_attribute(attr.GEN_AI_REQUEST_MODEL, str(model.ref))
        response = answer.response
        generation = Generation(
            model_id, response, model.profile.cost(response.usage), estimate, answer.first_token_at
        )
        _response_attributes(span, generation)
        return generation
    span.set_attribute(attr.ATTEMPTS, len(chain))
    last = failures[-1]
    if len(chain) > 1:
        last.details["attempts"] = [
            {"model": m, "code": f.code} for m, f in zip(chain, failures, strict=True)
        ]
    raise last
