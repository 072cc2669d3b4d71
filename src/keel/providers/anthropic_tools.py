"""Function calling translated between the OpenAI shape Keel speaks and Anthropic's.

OpenAI puts tool calls on the assistant message (``tool_calls`` with JSON-text arguments)
and answers them with ``tool`` messages; Anthropic uses ``tool_use`` content blocks (with a
parsed ``input`` object) and ``tool_result`` blocks inside a user turn. Tool definitions
move from ``{"type": "function", "function": {name, description, parameters}}`` to
``{name, description, input_schema}``, and ``tool_choice`` values are renamed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from keel.core.errors import InvalidInputError
from keel.core.messages import GenerationParams, Message, ToolCall


def _parts(message: Message) -> list[dict[str, Any]]:
    if message.parts:
        return [dict(part) for part in message.parts]
    return [{"type": "text", "text": message.content}] if message.content else []


def _arguments(call: ToolCall) -> Any:
    try:
        return orjson.loads(call.arguments or "{}")
    except orjson.JSONDecodeError as exc:
        raise InvalidInputError(
            f"the arguments of tool call {call.id!r} are not JSON; Anthropic models need "
            "them as a JSON object",
            code="tool_arguments_invalid",
        ) from exc


def turns(messages: Sequence[Message]) -> tuple[list[str], list[dict[str, Any]]]:
    """System texts and Anthropic turns; consecutive tool results share one user turn."""
    system: list[str] = []
    out: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            system.append(message.content)
        elif message.role == "tool":
            if not message.tool_call_id:
                raise InvalidInputError(
                    "Anthropic models take a tool message only as the answer to a tool call: "
                    "set its tool_call_id to the id of the call it answers",
                    code="message_role_unsupported",
                )
            block = {
                "type": "tool_result",
                "tool_use_id": message.tool_call_id or "",
                "content": message.content,
            }
            last = out[-1] if out else None
            if last and last["role"] == "user" and isinstance(last["content"], list):
                last["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
        elif message.tool_calls:
            blocks = _parts(message) + [
                {"type": "tool_use", "id": c.id, "name": c.name, "input": _arguments(c)}
                for c in message.tool_calls
            ]
            out.append({"role": "assistant", "content": blocks})
        elif message.parts:
            out.append({"role": message.role, "content": _parts(message)})
        else:
            out.append({"role": message.role, "content": message.content})
    return system, out


def tool_fields(body: dict[str, Any], params: GenerationParams) -> None:
    """``tools`` and ``tool_choice`` in Anthropic's shape."""
    if params.tools:
        body["tools"] = [_tool(tool) for tool in params.tools]
    choice = params.tool_choice
    if choice is None:
        return
    if choice == "none":
        body["tool_choice"] = {"type": "none"}
    elif choice == "auto":
        body["tool_choice"] = {"type": "auto"}
    elif choice == "required":
        body["tool_choice"] = {"type": "any"}
    elif isinstance(choice, Mapping) and isinstance(choice.get("function"), Mapping):
        body["tool_choice"] = {"type": "tool", "name": choice["function"].get("name")}
    else:
        raise InvalidInputError(
            f"tool_choice {choice!r} is not one of none, auto, required or "
            '{"type": "function", "function": {"name": ...}}',
            code="tool_choice_invalid",
        )


def _tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    function = tool.get("function")
    if tool.get("type", "function") != "function" or not isinstance(function, Mapping):
        raise InvalidInputError(
            'Anthropic models take function tools only: {"type": "function", "function": '
            "{name, description, parameters}}",
            code="tool_unsupported",
        )
    out: dict[str, Any] = {
        "name": function.get("name"),
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        out["description"] = function["description"]
    return out


def tool_call(block: Mapping[str, Any]) -> ToolCall:
    """A ``tool_use`` block as an OpenAI-style call with JSON-text arguments."""
    return ToolCall(
        id=str(block.get("id") or ""),
        name=str(block.get("name") or ""),
        arguments=orjson.dumps(block.get("input") or {}).decode(),
    )
