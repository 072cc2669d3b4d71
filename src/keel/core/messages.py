"""Chat messages, requests and responses exchanged with a model, provider-neutral."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from keel.core.errors import InvalidInputError
from keel.core.usage import Usage

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: str
    name: str | None = None

    def to_dict(self) -> dict[str, str]:
        out = {"role": self.role, "content": self.content}
        if self.name:
            out["name"] = self.name
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


@dataclass(frozen=True, slots=True)
class ChatChunk:
    """One streamed increment. Usage and finish reason usually arrive on the last chunk."""

    delta: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    model: str | None = None
    response_id: str | None = None
    system_fingerprint: str | None = None


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
