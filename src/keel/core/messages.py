"""Chat messages, requests and responses exchanged with a model, provider-neutral."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from keel.core.errors import InvalidInputError
from keel.core.usage import Usage

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A function call the model asked for; ``arguments`` is the JSON text it produced."""

    id: str
    name: str
    arguments: str = "{}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A streamed piece of a tool call: ``id`` and ``name`` come first, arguments in pieces."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""

    def to_dict(self) -> dict[str, Any]:
        function: dict[str, Any] = {"arguments": self.arguments}
        out: dict[str, Any] = {"index": self.index, "function": function}
        if self.id is not None:
            out["id"] = self.id
            out["type"] = "function"
        if self.name is not None:
            function["name"] = self.name
        return out


@dataclass(frozen=True, slots=True)
class Message:
    """One chat turn. ``parts`` keeps multi-part content (images, audio) as sent, while
    ``content`` holds its text; ``tool_calls`` / ``tool_call_id`` carry function calling."""

    role: Role
    content: str
    name: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    parts: tuple[Mapping[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.parts:
            out["content"] = [dict(part) for part in self.parts]
        if self.name:
            out["name"] = self.name
        if self.tool_calls:
            out["tool_calls"] = [call.to_dict() for call in self.tool_calls]
            if not self.content and not self.parts:
                out["content"] = None
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        return out


@dataclass(frozen=True, slots=True)
class GenerationParams:
    """Sampling parameters every provider understands; ``None`` means provider default."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    response_format: Mapping[str, Any] | None = None
    tools: tuple[Mapping[str, Any], ...] = ()  # OpenAI-style function tools
    tool_choice: str | Mapping[str, Any] | None = None  # auto | none | required | a function
    n: int | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = None
    user: str | None = None  # the end user, for the provider's abuse monitoring


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One call to a chat model. ``model`` is the provider's own model name."""

    model: str
    messages: tuple[Message, ...]
    params: GenerationParams = field(default_factory=GenerationParams)
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChatResponse:
    """A finished completion, with the model version the provider reports."""

    text: str
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)
    model: str | None = None
    response_id: str | None = None
    system_fingerprint: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    logprobs: Any = None  # the provider's logprobs object, passed through
    alternatives: tuple[ChatResponse, ...] = ()  # choices 1..n-1 when ``n`` > 1


@dataclass(frozen=True, slots=True)
class ChatChunk:
    """One streamed increment. Usage and finish reason usually arrive on the last chunk."""

    delta: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    model: str | None = None
    response_id: str | None = None
    system_fingerprint: str | None = None
    tool_calls: tuple[ToolCallDelta, ...] = ()
    logprobs: Any = None
    index: int = 0  # the choice this chunk belongs to when ``n`` > 1


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A ``provider:model`` id split into its parts."""

    provider: str
    name: str

    @classmethod
    def parse(cls, model_id: str) -> ModelRef:
        provider, sep, name = model_id.partition(":")
        if not sep or not provider or not name:
            raise InvalidInputError(
                f"model id {model_id!r} must look like 'provider:model', "
                "for example 'openai:gpt-4o-mini' or 'local:smollm2'",
                code="model_id_invalid",
            )
        return cls(provider, name)

    def __str__(self) -> str:
        return f"{self.provider}:{self.name}"
