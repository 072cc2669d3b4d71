"""``POST /v1/chat/completions`` served straight from ASGI.

The hot path of the gateway skips FastAPI's router and its per-route middleware: profiling
showed route matching and request plumbing were about half of the server's CPU per call.
The same handler runs (the route stays registered, so OpenAPI documents it), inside the
correlation, metrics and auth middlewares; Keel errors get the usual envelope here, and
anything unexpected still reaches the app's error handler.
"""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from keel.core.errors import KeelError
from keel.server.errors import keel_error_response
from keel.server.routes.openai_api import chat_completions

PATH = "/v1/chat/completions"


@dataclass(frozen=True, slots=True)
class _Route:
    path: str  # what the metrics middleware labels requests with


_ROUTE = _Route(PATH)


class ChatFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        scope["route"] = _ROUTE
        request = Request(scope, receive)
        try:
            response = await chat_completions(request)
        except KeelError as exc:
            response = await keel_error_response(request, exc)
        await response(scope, receive, send)
