"""The seam between Keel and a model: protocols every provider implements.

A provider is split three ways, so that each part changes for one reason:

* ``ChatModel`` speaks one wire format (OpenAI chat, Anthropic messages, llama.cpp);
* ``Provider`` owns authentication, the pooled client and the endpoint, and hands out models;
* ``ModelProfile`` describes what a model can do and costs, and carries its model-specific
  preprocessing: the token counter that sees the prompt the way the model will.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

from keel.core.messages import ChatChunk, ChatRequest, ChatResponse, Message, ModelRef
from keel.core.usage import Price, Usage

T = TypeVar("T")


class TokenCounter(Protocol):
    """Counts tokens of plain text with a model's own tokenizer."""

    def __call__(self, text: str) -> int: ...


def lookup_family(table: Mapping[str, T], name: str) -> T | None:
    """``table[name]``, or the entry of the longest family ``name`` is a dated id or alias of
    (``gpt-4o-2024-08-06`` -> ``gpt-4o``, ``claude-sonnet-4-0`` -> ``claude-sonnet-4``)."""
    found = table.get(name)
    if found is not None:
        return found
    families = [family for family in table if name.startswith(family + "-")]
    return table[max(families, key=len)] if families else None


def approximate_tokens(text: str) -> int:
    """Fallback counter (about four characters per token) for models without a tokenizer."""
    return max(1, (len(text) + 3) // 4) if text else 0


@dataclass(frozen=True, slots=True)
class ModelProfile:
    """Capabilities, limits and price of one model, plus how it tokenizes a chat."""

    name: str
    context_window: int = 8192
    max_output_tokens: int | None = None
    price: Price = field(default_factory=Price)
    count_text: TokenCounter = approximate_tokens
    tokens_per_message: int = 3
    tokens_per_reply: int = 3
    exact_tokens: bool = False
    supports_streaming: bool = True
    supports_json_schema: bool = False
    supports_embeddings: bool = False

    def count_messages(self, messages: Sequence[Message]) -> int:
        """Prompt tokens as the model will see them, chat-template overhead included."""
        total = self.tokens_per_reply
        for message in messages:
            total += self.tokens_per_message + self.count_text(message.content)
        return total

    def cost(self, usage: Usage) -> Any:
        return self.price.cost(usage)


@runtime_checkable
class ChatModel(Protocol):
    """One model behind one wire format. Errors are always ``keel.core.errors`` types."""

    @property
    def ref(self) -> ModelRef: ...

    @property
    def profile(self) -> ModelProfile: ...

    async def complete(self, request: ChatRequest) -> ChatResponse: ...

    def stream(self, request: ChatRequest) -> AsyncIterator[ChatChunk]: ...

    async def embed(self, texts: Sequence[str]) -> list[list[float]]: ...


class Provider(Protocol):
    """Auth, client and endpoint for a family of models; hands out ``ChatModel`` objects."""

    name: str

    def model(self, name: str) -> ChatModel: ...

    async def aclose(self) -> None: ...


ProviderFactory = Callable[[str, Mapping[str, Any]], Provider]
"""Builds a provider from its registered name and its options (a plain mapping)."""


@dataclass(frozen=True, slots=True)
class ProviderPlugin:
    """What a ``keel.providers`` entry point exposes."""

    name: str
    factory: ProviderFactory
    description: str = ""
