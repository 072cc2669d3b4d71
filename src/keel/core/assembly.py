"""A stream of chunks collected into the ``ChatResponse`` it amounts to.

Used where a streamed answer must also exist whole: the gateway caches completed streams,
and a pipeline that streams its model (to time the first token) still parses the whole text.
Streams that cannot be rebuilt exactly (several choices, log probabilities) are marked not
``cachable``.
"""

from __future__ import annotations

from keel.core.messages import ChatChunk, ChatResponse, ToolCall, ToolCallDelta
from keel.core.usage import Usage


class StreamAssembler:
    __slots__ = ("_calls", "_fingerprint", "_finish", "_id", "_model", "_text", "cachable")

    def __init__(self) -> None:
        self._text: list[str] = []
        self._calls: dict[int, list[str | None]] = {}  # index -> [id, name, arguments]
        self._finish: str | None = None
        self._fingerprint: str | None = None
        self._model: str | None = None
        self._id: str | None = None
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
        self._id = chunk.response_id or self._id

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
            response_id=self._id,
            system_fingerprint=self._fingerprint,
            tool_calls=calls,
        )
