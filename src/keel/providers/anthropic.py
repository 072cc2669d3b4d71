"""Anthropic's Messages API: chat and streaming (Anthropic has no embeddings endpoint).

``AnthropicProvider`` owns the endpoint, the ``x-api-key`` / ``anthropic-version`` headers
and the pooled client; ``AnthropicChatModel`` translates Keel's provider-neutral request to
the Messages wire format and back, with stop reasons renamed to the OpenAI names the rest
of Keel uses. Token counts are approximate: Anthropic's tokenizer is not published.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from keel.core.errors import InvalidInputError, ProviderUnavailable
from keel.core.messages import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    ToolCall,
    ToolCallDelta,
)
from keel.core.usage import Price, Usage
from keel.providers import anthropic_tools
from keel.providers.base import ModelProfile, ProviderPlugin, lookup_family
from keel.providers.http import (
    HTTPChatModel,
    HTTPClient,
    event_json,
    malformed_response,
    parse_options,
    stream_broken,
    stream_upstream_error,
)
from keel.settings import AnthropicSettings

MESSAGES_PATH = "/messages"
DEFAULT_MAX_TOKENS = 1024  # Anthropic requires max_tokens; used when the request sets none
_RESERVED = frozenset({"model", "messages", "stream"})

FINISH_REASONS: Mapping[str, str] = MappingProxyType(
    {
        "end_turn": "stop",
        "stop_sequence": "stop",
        "max_tokens": "length",
        "tool_use": "tool_calls",
        "refusal": "content_filter",
    }
)


@dataclass(frozen=True, slots=True)
class KnownModel:
    """Published limits and list price of one Claude model family."""

    context_window: int
    max_output_tokens: int
    price: Price


def _claude(out: int, inp: str, outp: str) -> KnownModel:
    return KnownModel(200_000, out, Price.of(inp, outp))


# USD per million tokens, list prices. Dated ids (``claude-3-5-sonnet-20241022``) and
# aliases (``claude-sonnet-4-0``, ``claude-3-5-haiku-latest``) resolve by longest prefix.
KNOWN_MODELS: Mapping[str, KnownModel] = MappingProxyType(
    {
        "claude-3-haiku": _claude(4_096, "0.25", "1.25"),
        "claude-3-opus": _claude(4_096, "15", "75"),
        "claude-3-5-haiku": _claude(8_192, "0.80", "4"),
        "claude-3-5-sonnet": _claude(8_192, "3", "15"),
        "claude-3-7-sonnet": _claude(64_000, "3", "15"),
        "claude-haiku-4-5": _claude(64_000, "1", "5"),
        "claude-sonnet-4": _claude(64_000, "3", "15"),
        "claude-sonnet-4-5": _claude(64_000, "3", "15"),
        "claude-opus-4": _claude(32_000, "15", "75"),
        "claude-opus-4-1": _claude(32_000, "15", "75"),
    }
)


def known_model(name: str) -> KnownModel | None:
    """The table entry for ``name`` or the longest family it is a dated id or alias of."""
    return lookup_family(KNOWN_MODELS, name)


class AnthropicProvider:
    """The Anthropic API: base URL, key, API version and one pooled client."""

    def __init__(
        self, name: str, settings: AnthropicSettings, *, allow_remote: bool = True
    ) -> None:
        headers = {"anthropic-version": settings.api_version}
        api_key = settings.api_key.get_secret_value() if settings.api_key else ""
        if api_key:
            headers["x-api-key"] = api_key
        self.name = name
        self.client = HTTPClient(name, settings, allow_remote=allow_remote, headers=headers)

    @classmethod
    def from_options(cls, name: str, options: Mapping[str, Any]) -> AnthropicProvider:
        """Build from a plain mapping with ``AnthropicSettings`` keys plus ``allow_remote``."""
        settings, allow_remote = parse_options(name, options, AnthropicSettings)
        return cls(name, settings, allow_remote=allow_remote)

    def profile(self, model: str) -> ModelProfile:
        known = known_model(model)
        if known is None:
            return ModelProfile(name=model)
        return ModelProfile(
            name=model,
            context_window=known.context_window,
            max_output_tokens=known.max_output_tokens,
            price=known.price,
        )

    def model(self, name: str) -> AnthropicChatModel:
        return AnthropicChatModel(self, name)

    async def aclose(self) -> None:
        await self.client.aclose()


class AnthropicChatModel(HTTPChatModel):
    """One Claude model behind the Messages wire format."""

    __slots__ = ()

    async def complete(self, request: ChatRequest) -> ChatResponse:
        model = request.model or self._name
        data = await self._client.post_json(MESSAGES_PATH, messages_body(request, model), model)
        return parse_message(data, self._ref.provider, model)

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        model = request.model or self._name
        body = messages_body(request, model)
        body["stream"] = True
        state = MessageStream(self._ref.provider, model)
        async with aclosing(self._client.stream_events(MESSAGES_PATH, body, model)) as events:
            async for event in events:
                chunk = state.on_event(event_json(event, state.provider, model), event.event)
                if chunk is not None:
                    yield chunk
                if state.stopped:
                    break
        if not state.stopped:
            raise stream_broken(state.provider, model, "it ended without a message_stop event")

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        raise ProviderUnavailable(
            f"Anthropic has no embeddings API, so {self._ref} cannot embed text; use an "
            "embedding model such as openai:text-embedding-3-small or a local embedder",
            code="capability_unsupported",
            provider=self._ref.provider,
            model=self._name,
        )


def messages_body(request: ChatRequest, model: str) -> dict[str, Any]:
    """The JSON body of a Messages call; system messages go to the top-level ``system``."""
    system, turns = anthropic_tools.turns(request.messages)
    params = request.params
    if params.response_format is not None:
        raise InvalidInputError(
            "Anthropic models do not support response_format; describe the format in the "
            "prompt and validate it in postprocessing, or use an OpenAI-compatible model",
            code="param_unsupported",
        )
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": DEFAULT_MAX_TOKENS if params.max_tokens is None else params.max_tokens,
        "messages": turns,
    }
    if system:
        body["system"] = "\n\n".join(system)
    if params.temperature is not None:
        body["temperature"] = params.temperature
    if params.top_p is not None:
        body["top_p"] = params.top_p
    if params.stop:
        body["stop_sequences"] = list(params.stop)
    anthropic_tools.tool_fields(body, params)
    # ``seed`` has no Anthropic equivalent; it is a best-effort hint and is left out.
    if request.extra:
        reserved = _RESERVED.union(("system",) if system else ()).intersection(request.extra)
        if reserved:
            raise InvalidInputError(
                f"extra fields {sorted(reserved)} are set by Keel itself from the request; "
                "drop them from extra",
                code="extra_field_reserved",
            )
        body.update(request.extra)
    return body


def parse_message(data: Any, provider: str, model: str) -> ChatResponse:
    """A Messages ``message`` object as a ``ChatResponse``."""
    if not isinstance(data, dict):
        raise malformed_response(provider, model, "the answer is not a JSON object")
    content = data.get("content")
    if not isinstance(content, list):
        problem = "it has no content list"
        if "error" in data:
            problem = f"it reported an error instead of a message: {data['error']!r}"
        raise malformed_response(provider, model, problem)
    parts: list[str] = []
    calls: list[ToolCall] = []
    for block in content:
        if not isinstance(block, dict):
            raise malformed_response(provider, model, "a content block is not an object")
        if block.get("type") == "tool_use":
            calls.append(anthropic_tools.tool_call(block))
        elif block.get("type") == "text":
            text = block.get("text")
            if not isinstance(text, str):
                raise malformed_response(provider, model, "a text block has no text")
            parts.append(text)
    return ChatResponse(
        text="".join(parts),
        finish_reason=finish_reason(data.get("stop_reason")),
        usage=parse_usage(data.get("usage"), provider, model, Usage()),
        model=_text(data.get("model")),
        response_id=_text(data.get("id")),
        tool_calls=tuple(calls),
    )


class MessageStream:
    """State of one streamed message: turns SSE event payloads into ``ChatChunk``s."""

    __slots__ = (
        "model",
        "model_reported",
        "provider",
        "response_id",
        "stopped",
        "tools",
        "usage",
    )

    def __init__(self, provider: str, model: str) -> None:
        self.provider = provider
        self.model = model
        self.model_reported: str | None = None
        self.response_id: str | None = None
        self.usage = Usage()
        self.stopped = False
        self.tools: dict[int, int] = {}  # content block index -> tool call index

    def on_event(self, data: dict[str, Any], event: str) -> ChatChunk | None:
        """Handle one event; ``ping``, block start/stop and unknown types are ignored."""
        kind = data.get("type", event)
        if kind == "content_block_delta":
            delta = data.get("delta")
            if not isinstance(delta, dict):
                raise malformed_response(self.provider, self.model, "a delta is not an object")
            if delta.get("type") == "input_json_delta":
                return self._tool_delta(data.get("index"), arguments=delta.get("partial_json"))
            text = delta.get("text") if delta.get("type") == "text_delta" else None
            if not isinstance(text, str) or not text:
                return None
            return ChatChunk(text, model=self.model_reported, response_id=self.response_id)
        if kind == "message_start":
            message = data.get("message")
            if not isinstance(message, dict):
                raise malformed_response(self.provider, self.model, "message_start has no message")
            self.model_reported = _text(message.get("model"))
            self.response_id = _text(message.get("id"))
            self.usage = parse_usage(message.get("usage"), self.provider, self.model, self.usage)
        elif kind == "message_delta":
            delta = data.get("delta")
            stop = delta.get("stop_reason") if isinstance(delta, dict) else None
            self.usage = parse_usage(data.get("usage"), self.provider, self.model, self.usage)
            return ChatChunk(
                finish_reason=finish_reason(stop),
                usage=self.usage,
                model=self.model_reported,
                response_id=self.response_id,
            )
        elif kind == "content_block_start":
            block = data.get("content_block")
            if isinstance(block, dict) and block.get("type") == "tool_use":
                self.tools[data.get("index", -1)] = len(self.tools)
                return self._tool_delta(data.get("index"), call=anthropic_tools.tool_call(block))
        elif kind == "message_stop":
            self.stopped = True
        elif kind == "error":
            raise stream_upstream_error(self.provider, self.model, data.get("error"))
        return None

    def _tool_delta(
        self, block: Any, *, arguments: Any = None, call: ToolCall | None = None
    ) -> ChatChunk | None:
        index = self.tools.get(block) if isinstance(block, int) else None
        if index is None:
            raise malformed_response(self.provider, self.model, "a tool delta names no tool block")
        if call is not None:
            delta = ToolCallDelta(index, id=call.id, name=call.name)
        elif isinstance(arguments, str) and arguments:
            delta = ToolCallDelta(index, arguments=arguments)
        else:
            return None
        return ChatChunk(
            model=self.model_reported, response_id=self.response_id, tool_calls=(delta,)
        )


def finish_reason(stop_reason: Any) -> str | None:
    """Anthropic's ``stop_reason`` under the OpenAI name; unknown reasons pass through."""
    if not isinstance(stop_reason, str):
        return None
    return FINISH_REASONS.get(stop_reason, stop_reason)


def parse_usage(value: Any, provider: str, model: str, previous: Usage) -> Usage:
    """Merge an Anthropic ``usage`` object into ``previous``.

    Input tokens include prompt-cache writes and reads, so the count is every prompt token
    the model saw. Streams report input at ``message_start`` and a cumulative output count
    at ``message_delta``; a field that is absent keeps its previous value.
    """
    if value is None:
        return previous
    if not isinstance(value, dict):
        raise malformed_response(provider, model, f"its usage is malformed: {value!r}")
    counts = [
        value.get(key)
        for key in (
            "input_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
            "output_tokens",
        )
    ]
    if not all(count is None or _count(count) for count in counts):
        raise malformed_response(provider, model, f"its usage is malformed: {value!r}")
    fresh, written, read, output = counts
    input_tokens = previous.input_tokens
    if fresh is not None or written is not None or read is not None:
        input_tokens = (fresh or 0) + (written or 0) + (read or 0)
    output_tokens = previous.output_tokens if output is None else output
    return Usage(input_tokens, output_tokens)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


plugin = ProviderPlugin(
    "anthropic",
    AnthropicProvider.from_options,
    "Anthropic's Messages API: Claude chat and streaming.",
)
