"""``POST /v1/chat/completions`` served before the framework's middleware stack.

The chat endpoint is the gateway's hot path. Going through Starlette's stack costs a layer
per middleware (error trapping, body limits, exception telemetry, and Keel's metrics,
correlation and auth wrappers, each wrapping ``send``); profiling showed that plumbing as a
large share of the server's CPU per call. So :class:`KeelApp` answers this one route itself
and does the same work inline, in the same order:

1. correlation id from ``traceparent`` / ``X-Request-ID`` (always returned);
2. the API key, its role and its request rate (429 with ``Retry-After``);
3. the route handler (the same function the router documents in OpenAPI), Keel errors as
   the usual envelope, anything unexpected through the app's 500 handler;
4. request count and latency metrics once the response (or the stream) has been sent.

Any request the inline path cannot admit without side effects (a malformed correlation
header, a missing or unknown key, a role refused) goes through the full stack instead, so
its error answer is exactly the one every other route gives.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from keel.core.errors import KeelError
from keel.server.auth import check_role, presented_key, refusal
from keel.server.correlation import from_headers
from keel.server.errors import keel_error_response, unexpected_error_response
from keel.server.routes.openai_api import chat_completions

PATH = "/v1/chat/completions"
_REQUEST_ID = b"x-request-id"


@dataclass(frozen=True, slots=True)
class _Route:
    path: str  # what the metrics label requests with


_ROUTE = _Route(PATH)


class KeelApp(FastAPI):
    """The FastAPI app, with the chat completions route answered before its middleware."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        # Counted until the response is sent: background work (the shadow mirror) steps
        # aside while a request is ready to run (keel.deploy.foreground).
        runtime = self.state.runtime
        if runtime is None:  # before the lifespan started: nothing runs in the background
            await self._serve(scope, receive, send)
            return
        foreground = runtime.shadow.foreground
        foreground.begin()
        try:
            await self._serve(scope, receive, send)
        finally:
            foreground.end()

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        served = (
            scope["path"] == PATH
            and scope["method"] == "POST"
            and await _serve_chat(self, scope, receive, send)
        )
        if not served:
            await super().__call__(scope, receive, send)


async def _serve_chat(app: FastAPI, scope: Scope, receive: Receive, send: Send) -> bool:
    """Serve the request, or return False (having done nothing) to leave it to the stack."""
    state = app.state
    headers = scope["headers"]
    try:
        correlation = from_headers(headers)
        principal = state.auth.keys.authenticate(presented_key(headers))
        check_role(principal, PATH)
    except KeelError:
        return False
    started = time.perf_counter()
    scope["app"] = app
    scope["route"] = _ROUTE
    request_state: dict[str, Any] = scope.setdefault("state", {})
    request_state["correlation"] = correlation
    status = 500
    try:
        try:
            await state.auth.limiter.admit(principal)
        except KeelError as exc:
            if exc.status == 429:
                state.metrics.rejections.labels(exc.code).inc()
            status = exc.status
            refused = refusal(exc, correlation.request_id)
            refused.raw_headers.append((_REQUEST_ID, correlation.request_id.encode("latin-1")))
            await refused(scope, receive, send)
            return True
        request_state["principal"] = principal
        response = await _respond(Request(scope, receive))
        if not any(name == _REQUEST_ID for name, _ in response.raw_headers):
            response.raw_headers.append((_REQUEST_ID, correlation.request_id.encode("latin-1")))
        status = response.status_code
        await response(scope, receive, send)
        return True
    finally:
        labels = request_state.get("metric_labels") or {}
        state.metrics.record_request(
            PATH,
            labels.get("model", ""),
            labels.get("pipeline", ""),
            labels.get("version", ""),
            status,
            time.perf_counter() - started,
        )


async def _respond(request: Request) -> Response:
    try:
        return await chat_completions(request)
    except KeelError as exc:
        return await keel_error_response(request, exc)
    except Exception as exc:  # the envelope and log line every other route gives
        return await unexpected_error_response(request, exc)
