"""Request metrics (count and latency by route, model, pipeline, version, status) and the
``/metrics`` endpoint in Prometheus text format.

Handlers name the model, pipeline and version they served in ``request.state.metric_labels``;
the middleware records once the response has been sent (a stream counts when it ends).
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

router = APIRouter(tags=["health"])


@router.get("/metrics", summary="Prometheus metrics (needs a developer or admin key)")
def metrics(request: Request) -> Response:
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            metrics = getattr(scope["app"].state, "metrics", None)
            if metrics is not None:
                labels = scope.get("state", {}).get("metric_labels") or {}
                metrics.record_request(
                    getattr(scope.get("route"), "path", "unmatched"),
                    labels.get("model", ""),
                    labels.get("pipeline", ""),
                    labels.get("version", ""),
                    status,
                    time.perf_counter() - started,
                )
