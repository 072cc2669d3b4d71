"""Correlation middleware: every request gets an id, taken from the caller when sent.

``traceparent`` (W3C) wins, then ``X-Request-ID``; otherwise a fresh 32-hex id is made, which
is also used as the trace id. The id is always returned in ``X-Request-ID``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from opentelemetry.context import Context
from opentelemetry.trace import get_current_span
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keel.core.errors import InvalidInputError
from keel.pipeline.correlation import check_request_id, new_trace_id
from keel.server.responses import JSONBytes, error_body

_REQUEST_ID = b"x-request-id"
_TRACEPARENT = b"traceparent"
_TRACESTATE = b"tracestate"


@dataclass(frozen=True, slots=True)
class Correlation:
    request_id: str
    parent: Context | None


def from_headers(headers: list[tuple[bytes, bytes]]) -> Correlation:
    request_id = traceparent = tracestate = None
    for key, value in headers:
        if key == _REQUEST_ID:
            request_id = value.decode("latin-1")
        elif key == _TRACEPARENT:
            traceparent = value.decode("latin-1")
        elif key == _TRACESTATE:
            tracestate = value.decode("latin-1")
    parent = None
    if traceparent is not None:
        carrier = {"traceparent": traceparent}
        if tracestate:
            carrier["tracestate"] = tracestate
        extracted = TraceContextTextMapPropagator().extract(carrier)
        span_context = get_current_span(extracted).get_span_context()
        if span_context.is_valid:
            parent = extracted
            if request_id is None:
                request_id = format(span_context.trace_id, "032x")
    if request_id is None:  # an id, not a secret: the PRNG saves a system call per request
        return Correlation(f"{new_trace_id():032x}", None)
    return Correlation(check_request_id(request_id), parent)


class CorrelationMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            correlation = from_headers(scope["headers"])
        except InvalidInputError as exc:
            rid = secrets.token_hex(16)
            response = JSONBytes(
                error_body(exc.code, exc.message, rid),
                status_code=400,
                headers={"x-request-id": rid},
            )
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["correlation"] = correlation
        header = (_REQUEST_ID, correlation.request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], header]
            await send(message)

        await self.app(scope, receive, send_with_id)
