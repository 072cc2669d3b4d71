"""Streams and finished answers, each turned into the other.

* :class:`StreamAssembler` collects a relayed stream into the ``ChatResponse`` it amounts to,
  so a completed stream can be cached like a plain answer. Streams it cannot rebuild exactly
  (several choices, log probabilities) are left uncached.
* :func:`replay` sends a finished ``chat.completion`` (a cache hit, or a pipeline's answer)
  as Server-Sent Events: the role, the content, the tool calls, the finish reason, usage
  when the client asked for it, then ``[DONE]``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from keel.core.messages import ChatChunk, ChatResponse, ToolCall, ToolCallDelta
from keel.core.usage import Usage
from keel.gateway import wire

DONE = b"data: [DONE]\n\n"


def event(data: dict[str, Any]) -> bytes:
    """One ``data:`` event. Compact JSON has no line breaks (orjson escapes those inside
    strings), so it is a single data line as it stands."""
    return b"data: " + orjson.dumps(data) + b"\n\n"


class StreamAssembler:
    __slots__ = ("_calls", "_fingerprint", "_finish", "_model", "_text", "cachable")

    def __init__(self) -> None:
        self._text: list[str] = []
        self._calls: dict[int, list[str | None]] = {}  # index -> [id, name, arguments]
        self._finish: str | None = None
        self._fingerprint: str | None = None
        self._model: str | None = None
        self.cachable = True

    def add(self, chunk: ChatChunk) -> None:
        if chunk.index != 0 or chunk.logprobs is not None:
            self.cachable = False
        self._text.append(chunk.delta)
        for delta in chunk.tool_calls:
            self._add_call(delta)
        self._finish = chunk.finish_reason or self._finish
        self._fingerprint = chunk.system_fingerprint or self._fingerprint
        self._model = chunk.model or self._model

    def _add_call(self, delta: ToolCallDelta) -> None:
        found = self._calls.setdefault(delta.index, [None, None, ""])
        found[0] = delta.id or found[0]
        found[1] = delta.name or found[1]
        found[2] = (found[2] or "") + delta.arguments

    @property
    def text(self) -> str:
        return "".join(self._text)

    def response(self, usage: Usage) -> ChatResponse:
        calls = tuple(
            ToolCall(call_id or "", name or "", arguments or "{}")
            for call_id, name, arguments in (self._calls[i] for i in sorted(self._calls))
        )
        return ChatResponse(
            self.text,
            self._finish or "stop",
            usage,
            model=self._model,
            system_fingerprint=self._fingerprint,
            tool_calls=calls,
        )


async def replay(body: dict[str, Any], include_usage: bool) -> AsyncIterator[bytes]:
    """A ``chat.completion`` object as the chunks a stream of it would have sent."""
    completion_id, created, name = body["id"], body["created"], body["model"]
    yield event(wire.role_chunk_json(name, completion_id, created))
    fingerprint = body.get("system_fingerprint")
    for choice in body["choices"]:
        message = choice["message"]
        index = choice.get("index", 0)
        content = message.get("content") or ""
        calls = tuple(
            ToolCallDelta(i, call["id"], call["function"]["name"], call["function"]["arguments"])
            for i, call in enumerate(message.get("tool_calls") or ())
        )
        if content or calls:
            chunk = ChatChunk(
                content, tool_calls=calls, index=index, system_fingerprint=fingerprint
            )
            yield event(wire.chunk_json(chunk, name, completion_id, created))
        finish = ChatChunk(finish_reason=choice.get("finish_reason") or "stop", index=index)
        yield event(wire.chunk_json(finish, name, completion_id, created))
    if include_usage:
        usage = body.get("usage") or {}
        tokens = Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))
        yield event(wire.usage_chunk_json(tokens, name, completion_id, created))
    yield DONE
