"""Models for tests and benchmarks: ``testing:echo``, scripted models and function models.

None of them touches a network or a model file. ``echo`` answers with the last user message
(or a minimal JSON value valid against a requested schema) and is cheap enough to measure the
runner's own overhead; ``ScriptedModel`` replays answers and faults in order and records what
it was asked; ``FunctionModel`` delegates to a callable. Tests register the latter two on a
``TestingProvider`` instance::

    provider = TestingProvider()
    flaky = provider.scripted("flaky", [ProviderTimeout("slow"), "second try works"])
    registry.register(ProviderPlugin("testing", lambda name, options: provider))
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import itertools
import json
import re
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from decimal import InvalidOperation
from typing import Any, TypeAlias

from keel.core.errors import ConfigError, ProviderError
from keel.core.messages import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    GenerationParams,
    Message,
    ModelRef,
)
from keel.core.usage import Price, Usage
from keel.providers.base import ChatModel, ModelProfile, ProviderPlugin, approximate_tokens

ScriptItem: TypeAlias = str | ChatResponse | BaseException | Sequence[ChatChunk | BaseException]
"""One scripted answer: text, a full response, a fault to raise, or the chunks of a stream
(a stream may end with an exception to simulate a connection that breaks mid-answer)."""

ModelFunction: TypeAlias = Callable[
    [Sequence[Message], GenerationParams],
    str | ChatResponse | Awaitable[str | ChatResponse],
]

_WORDS = re.compile(r"\S+\s*|\s+")
_EMBEDDING_DIM = 16
_OPTION_KEYS = frozenset({"latency_ms", "input_per_mtok", "output_per_mtok"})


def split_words(text: str) -> list[str]:
    """Stream pieces of ``text``: each word with its trailing whitespace; they join to ``text``."""
    return _WORDS.findall(text)


def last_user_text(messages: Sequence[Message]) -> str:
    for message in reversed(messages):
        if message.role == "user":
            return message.content
    return ""


class _TestModel:
    """What every testing model shares: identity, profile, latency, embeddings, streaming."""

    def __init__(self, ref: ModelRef, profile: ModelProfile | None, latency_ms: float) -> None:
        self._ref = ref
        self._profile = profile or ModelProfile(name=ref.name)
        self._latency = latency_ms / 1000.0
        self._ids = itertools.count(1)
        self.requests: list[ChatRequest] = []

    @property
    def ref(self) -> ModelRef:
        return self._ref

    @property
    def profile(self) -> ModelProfile:
        return self._profile

    async def complete(self, request: ChatRequest) -> ChatResponse:
        raise NotImplementedError

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        response = await self.complete(request)
        for chunk in chunks_of(response):
            yield chunk

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Deterministic unit vectors derived from a hash of each text (not semantic)."""
        if self._latency:
            await asyncio.sleep(self._latency)
        return [hash_embedding(text) for text in texts]

    def _response(self, text: str, request: ChatRequest, finish: str = "stop") -> ChatResponse:
        usage = Usage(self._profile.count_messages(request.messages), approximate_tokens(text))
        return ChatResponse(
            text, finish, usage, self._ref.name, f"{self._ref.name}-{next(self._ids)}"
        )


def chunks_of(response: ChatResponse) -> Iterator[ChatChunk]:
    """A finished response as a stream: one chunk per word, usage on the last one."""
    model, rid = response.model, response.response_id
    for piece in split_words(response.text):
        yield ChatChunk(piece, model=model, response_id=rid)
    yield ChatChunk(
        "", finish_reason=response.finish_reason, usage=response.usage, model=model, response_id=rid
    )


def hash_embedding(text: str) -> list[float]:
    digest = hashlib.blake2b(text.encode("utf-8"), digest_size=_EMBEDDING_DIM).digest()
    vector = [byte / 127.5 - 1.0 for byte in digest]
    norm = sum(v * v for v in vector) ** 0.5 or 1.0
    return [v / norm for v in vector]


class EchoModel(_TestModel):
    """Answers with the last user message, or with a minimal JSON value when a schema is asked.

    Honors ``max_tokens`` (finish reason ``length``) and ``stop`` like a real model would, so
    that truncation handling can be tested. The plain-text path does no validation at all.
    """

    def __init__(
        self,
        ref: ModelRef | None = None,
        *,
        latency_ms: float = 0.0,
        price: Price | None = None,
        context_window: int = 8192,
    ) -> None:
        ref = ref or ModelRef("testing", "echo")
        profile = ModelProfile(
            name=ref.name,
            context_window=context_window,
            price=price or Price(),
            supports_json_schema=True,
            supports_embeddings=True,
        )
        super().__init__(ref, profile, latency_ms)

    async def complete(self, request: ChatRequest) -> ChatResponse:
        if self._latency:
            await asyncio.sleep(self._latency)
        params = request.params
        text = last_user_text(request.messages)
        if params.response_format is not None:
            schema = requested_schema(params.response_format)
            if schema is not None:
                text = json.dumps(example_for_schema(schema, text), ensure_ascii=False)
        finish = "stop"
        for stop in params.stop:
            cut = text.find(stop)
            if cut >= 0:
                text = text[:cut]
        if params.max_tokens is not None and approximate_tokens(text) > params.max_tokens:
            text, finish = text[: params.max_tokens * 4], "length"
        return self._response(text, request, finish)


class ScriptedModel(_TestModel):
    """Replays ``script`` in order, one item per call, and records every request in ``requests``.

    A string or ``ChatResponse`` is returned; an exception instance is raised; a sequence of
    chunks is streamed (an exception inside it is raised at that point of the stream). When
    the script runs out the call fails with ``ConfigError`` code ``script_exhausted`` — not a
    ``ProviderError``, so retries and fallbacks cannot hide a test that asked for too much.
    """

    def __init__(
        self,
        script: Iterable[ScriptItem],
        *,
        ref: ModelRef | None = None,
        profile: ModelProfile | None = None,
        latency_ms: float = 0.0,
    ) -> None:
        super().__init__(ref or ModelRef("testing", "scripted"), profile, latency_ms)
        self._script: list[ScriptItem] = list(script)
        self._position = 0

    @property
    def remaining(self) -> int:
        return len(self._script) - self._position

    def _next(self, request: ChatRequest) -> ScriptItem:
        self.requests.append(request)
        if self._position >= len(self._script):
            raise ConfigError(
                f"scripted model {self._ref} was called {len(self.requests)} times but its "
                f"script has only {len(self._script)} items; add more items to the script",
                code="script_exhausted",
                model=str(self._ref),
            )
        item = self._script[self._position]
        self._position += 1
        return item

    async def complete(self, request: ChatRequest) -> ChatResponse:
        if self._latency:
            await asyncio.sleep(self._latency)
        item = self._next(request)
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, str):
            return self._response(item, request)
        if isinstance(item, ChatResponse):
            return item
        return _joined(item, self._ref.name)

    async def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]:
        if self._latency:
            await asyncio.sleep(self._latency)
        item = self._next(request)
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, str):
            item = self._response(item, request)
        pieces = chunks_of(item) if isinstance(item, ChatResponse) else iter(item)
        for piece in pieces:
            if isinstance(piece, BaseException):
                raise piece
            yield piece


def _joined(chunks: Sequence[ChatChunk | BaseException], model: str) -> ChatResponse:
    """A scripted stream consumed by ``complete``: its text, last finish reason and usage."""
    text: list[str] = []
    finish: str | None = None
    usage = Usage()
    for chunk in chunks:
        if isinstance(chunk, BaseException):
            raise chunk
        text.append(chunk.delta)
        finish = chunk.finish_reason or finish
        usage = chunk.usage or usage
    return ChatResponse("".join(text), finish, usage, model)


class FunctionModel(_TestModel):
    """Answers with ``function(messages, params)``; the function may be sync or async and may
    return text or a full ``ChatResponse``. Raising a Keel error from it simulates a fault."""

    def __init__(
        self,
        function: ModelFunction,
        *,
        ref: ModelRef | None = None,
        profile: ModelProfile | None = None,
        latency_ms: float = 0.0,
    ) -> None:
        super().__init__(ref or ModelRef("testing", "function"), profile, latency_ms)
        self._function = function

    async def complete(self, request: ChatRequest) -> ChatResponse:
        if self._latency:
            await asyncio.sleep(self._latency)
        self.requests.append(request)
        result = self._function(request.messages, request.params)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, ChatResponse):
            return result
        return self._response(result, request)


# --- minimal JSON values for a schema -------------------------------------------------------


def requested_schema(response_format: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The JSON schema asked for, in OpenAI style or ``{"type": "json_object", "schema": S}``.

    ``{"type": "json_object"}`` without a schema asks for any object; ``text`` asks for none.
    """
    kind = response_format.get("type")
    if kind == "json_schema":
        spec = response_format.get("json_schema") or {}
        schema = spec.get("schema")
        return schema if isinstance(schema, Mapping) else {"type": "object"}
    if kind == "json_object":
        schema = response_format.get("schema")
        return schema if isinstance(schema, Mapping) else {"type": "object"}
    return None


def example_for_schema(schema: Mapping[str, Any], text: str = "") -> Any:
    """A small deterministic value valid against ``schema``; strings carry ``text``."""
    return _Example(schema).value(schema, text, depth=0)


class _Example:
    """Walks a schema once; resolves local ``$ref`` pointers against the root."""

    def __init__(self, root: Mapping[str, Any]) -> None:
        self._root = root

    def value(self, schema: Mapping[str, Any], text: str, depth: int) -> Any:
        if depth > 32:
            return None
        if "$ref" in schema:
            return self.value(self._resolve(schema["$ref"]), text, depth + 1)
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return schema["enum"][0]
        for key in ("anyOf", "oneOf", "allOf"):
            if schema.get(key):
                return self.value(schema[key][0], text, depth + 1)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind is None:
            kind = "object" if "properties" in schema else "string"
        return self._typed(kind, schema, text, depth)

    def _typed(self, kind: str, schema: Mapping[str, Any], text: str, depth: int) -> Any:
        if kind == "object":
            properties: Mapping[str, Any] = schema.get("properties") or {}
            return {
                name: self.value(sub, text, depth + 1)
                for name, sub in properties.items()
                if isinstance(sub, Mapping)
            }
        if kind == "array":
            items = schema.get("items")
            item_schema = items if isinstance(items, Mapping) else {}
            count = int(schema.get("minItems", 0))
            return [self.value(item_schema, text, depth + 1) for _ in range(count)]
        if kind in ("number", "integer"):
            return _number(schema, integer=kind == "integer")
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        return _string(schema, text)

    def _resolve(self, pointer: str) -> Mapping[str, Any]:
        node: Any = self._root
        if pointer.startswith("#"):
            for part in pointer.lstrip("#").strip("/").split("/"):
                if part and isinstance(node, Mapping):
                    node = node.get(part.replace("~1", "/").replace("~0", "~"), {})
        return node if isinstance(node, Mapping) else {}


def _number(schema: Mapping[str, Any], *, integer: bool) -> int | float:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    step = 1 if integer else 0.5
    value: float = 0
    if low is not None and high is not None:
        value = (low + high) / 2
        if integer and low <= int(value) <= high:
            value = int(value)
    elif low is not None:
        value = low + (step if "minimum" not in schema else 0)
    elif high is not None and high <= 0:
        value = high - (step if "maximum" not in schema else 0)
    return int(value) if integer and float(value).is_integer() else value


def _string(schema: Mapping[str, Any], text: str) -> str:
    if "pattern" in schema or "format" in schema:
        examples = schema.get("examples")
        return str(examples[0]) if isinstance(examples, list) and examples else ""
    max_length = schema.get("maxLength")
    if isinstance(max_length, int):
        text = text[:max_length]
    return text.ljust(int(schema.get("minLength", 0)), "x")


# --- provider -------------------------------------------------------------------------------


class TestingProvider:
    """Hands out ``echo`` and whatever models a test registered with ``add``.

    Options: ``latency_ms`` (simulated per-call latency) and ``input_per_mtok`` /
    ``output_per_mtok`` (US dollars per million tokens) so that cost accounting can be tested.
    """

    __test__ = False  # not a pytest test class despite its name

    def __init__(
        self,
        name: str = "testing",
        *,
        latency_ms: float = 0.0,
        price: Price | None = None,
    ) -> None:
        self.name = name
        self.latency_ms = latency_ms
        self.price = price or Price()
        self._models: dict[str, ChatModel] = {
            "echo": EchoModel(ModelRef(name, "echo"), latency_ms=latency_ms, price=self.price)
        }

    @classmethod
    def from_options(cls, name: str, options: Mapping[str, Any]) -> TestingProvider:
        unknown = set(options) - _OPTION_KEYS
        if unknown:
            raise ConfigError(
                f"unknown option(s) for provider {name!r}: {', '.join(sorted(unknown))}; "
                f"accepted: {', '.join(sorted(_OPTION_KEYS))}",
                code="provider_option_unknown",
            )
        try:
            latency = float(options.get("latency_ms", 0.0))
            price = Price.of(options.get("input_per_mtok", 0), options.get("output_per_mtok", 0))
        except (TypeError, ValueError, InvalidOperation) as exc:
            raise ConfigError(
                f"provider {name!r}: latency_ms and prices must be numbers ({exc})",
                code="provider_option_invalid",
            ) from exc
        if latency < 0 or min(price.input_per_mtok, price.output_per_mtok) < 0:
            raise ConfigError(
                f"provider {name!r}: latency_ms and prices cannot be negative",
                code="provider_option_invalid",
            )
        return cls(name, latency_ms=latency, price=price)

    def add(self, name: str, model: ChatModel) -> None:
        """Serve ``model`` as ``<provider>:<name>``, replacing any model of that name."""
        self._models[name] = model

    def profile(self, name: str) -> ModelProfile:
        """A profile carrying this provider's price, for models built by ``scripted`` et al."""
        return ModelProfile(name=name, price=self.price)

    def scripted(self, name: str, script: Iterable[ScriptItem]) -> ScriptedModel:
        """Build a ``ScriptedModel`` with this provider's latency and price, and register it."""
        model = ScriptedModel(
            script,
            ref=ModelRef(self.name, name),
            profile=self.profile(name),
            latency_ms=self.latency_ms,
        )
        self.add(name, model)
        return model

    def function(self, name: str, function: ModelFunction) -> FunctionModel:
        """Build a ``FunctionModel`` with this provider's latency and price, and register it."""
        model = FunctionModel(
            function,
            ref=ModelRef(self.name, name),
            profile=self.profile(name),
            latency_ms=self.latency_ms,
        )
        self.add(name, model)
        return model

    def model(self, name: str) -> ChatModel:
        found = self._models.get(name)
        if found is None:
            raise ProviderError(
                f"provider {self.name!r} has no model {name!r}; available: "
                f"{', '.join(sorted(self._models))}. Register one with provider.add().",
                code="provider_model_not_found",
                provider=self.name,
                model=name,
            )
        return found

    async def aclose(self) -> None:
        """Nothing to release: testing models hold no connections or files."""


def factory(name: str, options: Mapping[str, Any]) -> TestingProvider:
    return TestingProvider.from_options(name, options)


plugin = ProviderPlugin(
    "testing", factory, "Models for tests and benchmarks: echo, scripted and function models."
)
