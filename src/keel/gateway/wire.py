"""The OpenAI chat completions wire format, read into Keel's request and written back.

Parsing works on the dict ``orjson`` produced, without a validation model: each known field
is checked where it is read, and every field Keel does not know is kept in ``extra`` so it
reaches an OpenAI-compatible upstream unchanged (vendor fields such as ``top_k``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from keel.core.messages import ChatChunk, ChatResponse, GenerationParams, Message, ToolCall
from keel.core.usage import Usage
from keel.gateway.errors import BadRequest

_ROLES = frozenset({"system", "user", "assistant", "tool", "developer"})
_KNOWN = frozenset(
    {
        "model",
        "messages",
        "stream",
        "stream_options",
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "seed",
        "stop",
        "response_format",
        "tools",
        "tool_choice",
        "n",
        "logprobs",
        "top_logprobs",
        "user",
    }
)


@dataclass(frozen=True, slots=True)
class ChatCall:
    """One parsed ``/v1/chat/completions`` request."""

    model: str
    messages: tuple[Message, ...]
    params: GenerationParams
    extra: dict[str, Any] = field(default_factory=dict)
    stream: bool = False
    include_usage: bool = False


def _bad(message: str, code: str = "request_invalid") -> BadRequest:
    return BadRequest(message, code=code)


def _number(body: Mapping[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, kind):
        raise _bad(f"{key} must be a {'integer' if kind is int else 'number'}, got {value!r}")
    return value


def parse_chat(body: Any) -> ChatCall:
    """A chat completions body as a ``ChatCall``; malformed fields raise ``BadRequest``."""
    if not isinstance(body, dict):
        raise _bad("the body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad("model is required: a provider:model id, an alias or pipeline/NAME")
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise _bad("messages must be a non-empty list", "messages_invalid")
    messages = tuple(parse_message(item, position) for position, item in enumerate(raw))
    stream = body.get("stream") is True
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    extra = {key: value for key, value in body.items() if key not in _KNOWN}
    return ChatCall(model, messages, parse_params(body), extra, stream, include_usage)


def parse_params(body: Mapping[str, Any]) -> GenerationParams:
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop is not None and (
        not isinstance(stop, list) or not all(isinstance(s, str) for s in stop)
    ):
        raise _bad("stop must be a string or a list of strings")
    tools = body.get("tools")
    if tools is not None and (
        not isinstance(tools, list) or not all(isinstance(t, dict) for t in tools)
    ):
        raise _bad("tools must be a list of tool objects", "tools_invalid")
    choice = body.get("tool_choice")
    if choice is not None and not isinstance(choice, str | dict):
        raise _bad("tool_choice must be none, auto, required or a function object")
    response_format = body.get("response_format")
    if response_format is not None and not isinstance(response_format, dict):
        raise _bad('response_format must be an object such as {"type": "json_object"}')
    max_tokens = _number(body, "max_completion_tokens", int)
    if max_tokens is None:
        max_tokens = _number(body, "max_tokens", int)
    user = body.get("user")
    logprobs = body.get("logprobs")
    return GenerationParams(
        temperature=_number(body, "temperature", (int, float)),
        top_p=_number(body, "top_p", (int, float)),
        max_tokens=max_tokens,
        seed=_number(body, "seed", int),
        stop=tuple(stop or ()),
        response_format=response_format,
        tools=tuple(tools or ()),
        tool_choice=choice,
        n=_number(body, "n", int),
        logprobs=logprobs if isinstance(logprobs, bool) else None,
        top_logprobs=_number(body, "top_logprobs", int),
        user=user if isinstance(user, str) else None,
    )


def parse_message(item: Any, position: int) -> Message:
    """One chat message; content may be text, a list of parts, or null beside tool calls."""
    where = f"messages[{position}]"
    if not isinstance(item, dict):
        raise _bad(f"{where} must be an object with role and content", "messages_invalid")
    role = item.get("role")
    if role not in _ROLES:
        raise _bad(
            f"{where}.role must be one of system, developer, user, assistant, tool; got {role!r}",
            "messages_invalid",
        )
    content = item.get("content")
    parts: tuple[dict[str, Any], ...] = ()
    if isinstance(content, list):
        if not all(isinstance(part, dict) for part in content):
            raise _bad(f"{where}.content parts must be objects", "messages_invalid")
        parts = tuple(content)
        content = "".join(str(p.get("text", "")) for p in content if p.get("type") == "text")
    elif content is None:
        if role != "assistant" or not item.get("tool_calls"):
            raise _bad(f"{where}.content is required", "messages_invalid")
        content = ""
    elif not isinstance(content, str):
        raise _bad(f"{where}.content must be text or a list of parts", "messages_invalid")
    name = item.get("name")
    call_id = item.get("tool_call_id")
    return Message(
        "system" if role == "developer" else role,
        content,
        name=name if isinstance(name, str) else None,
        tool_calls=_tool_calls(item.get("tool_calls"), where),
        tool_call_id=call_id if isinstance(call_id, str) else None,
        parts=parts,
    )


def _tool_calls(value: Any, where: str) -> tuple[ToolCall, ...]:
    if not value:
        return ()
    calls = []
    for item in value if isinstance(value, list) else [None]:
        function = item.get("function") if isinstance(item, dict) else None
        if (
            not isinstance(item, dict)
            or not isinstance(function, dict)
            or not isinstance(function.get("name"), str)
        ):
            raise _bad(f"{where}.tool_calls need id and function.name", "messages_invalid")
        arguments = function.get("arguments")
        calls.append(
            ToolCall(
                str(item.get("id") or ""),
                function["name"],
                arguments if isinstance(arguments, str) else "{}",
            )
        )
    return tuple(calls)


def usage_json(usage: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens,
    }


def _message_json(response: ChatResponse) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": response.text}
    if response.tool_calls:
        message["tool_calls"] = [call.to_dict() for call in response.tool_calls]
        if not response.text:
            message["content"] = None
    return message


def completion_json(
    response: ChatResponse, model: str, completion_id: str, created: int
) -> dict[str, Any]:
    """A ``chat.completion`` object; ``model`` is the name the client asked for."""
    choices = [response, *response.alternatives]
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "system_fingerprint": response.system_fingerprint,
        "choices": [
            {
                "index": index,
                "message": _message_json(choice),
                "logprobs": choice.logprobs,
                "finish_reason": choice.finish_reason or "stop",
            }
            for index, choice in enumerate(choices)
        ],
        "usage": usage_json(response.usage),
    }


def chunk_json(chunk: ChatChunk, model: str, completion_id: str, created: int) -> dict[str, Any]:
    """A ``chat.completion.chunk`` object carrying one choice's delta."""
    delta: dict[str, Any] = {}
    if chunk.delta:
        delta["content"] = chunk.delta
    if chunk.tool_calls:
        delta["tool_calls"] = [call.to_dict() for call in chunk.tool_calls]
    return {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "system_fingerprint": chunk.system_fingerprint,
        "choices": [
            {
                "index": chunk.index,
                "delta": delta,
                "logprobs": chunk.logprobs,
                "finish_reason": chunk.finish_reason,
            }
        ],
    }


def role_chunk_json(model: str, completion_id: str, created: int) -> dict[str, Any]:
    """The first chunk OpenAI sends: the assistant role, no content yet."""
    return {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [
            {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
        ],
    }


def usage_chunk_json(usage: Usage, model: str, completion_id: str, created: int) -> dict[str, Any]:
    """The last chunk when ``stream_options.include_usage`` is set: no choices, usage."""
    return {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [],
        "usage": usage_json(usage),
    }
