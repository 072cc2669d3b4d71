"""Streams and finished answers, each turned into the other.

* :class:`~keel.core.assembly.StreamAssembler` collects a relayed stream into the
  ``ChatResponse`` it amounts to, so a completed stream can be cached like a plain answer.
  Streams it cannot rebuild exactly (several choices, log probabilities) are left uncached.
* :func:`replay` sends a finished ``chat.completion`` (a cache hit, or a pipeline's answer)
  as Server-Sent Events: the role, the content, the tool calls, the finish reason, usage
  when the client asked for it, then ``[DONE]``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from keel.core.assembly import StreamAssembler
from keel.core.messages import ChatChunk, ToolCallDelta
from keel.core.usage import Usage
from keel.gateway import wire

__all__ = ["DONE", "StreamAssembler", "event", "replay"]

DONE = b"data: [DONE]\n\n"


def event(data: dict[str, Any]) -> bytes:
    """One ``data:`` event. Compact JSON has no line breaks (orjson escapes those inside
    strings), so it is a single data line as it stands."""
    return b"data: " + orjson.dumps(data) + b"\n\n"


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
