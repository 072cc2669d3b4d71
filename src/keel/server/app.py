"""The app factory. No module-level app: ``create_app`` is called by ``keel serve`` and tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from keel import __version__
from keel.gateway.setup import build_auth, build_gateway, build_metrics, redis_client
from keel.runtime import Runtime
from keel.server import metrics
from keel.server.auth import AuthMiddleware
from keel.server.collector import tune_for_serving
from keel.server.correlation import CorrelationMiddleware
from keel.server.errors import install_error_handlers
from keel.server.hot_path import KeelApp
from keel.server.metrics import MetricsMiddleware
from keel.server.routes import (
    deployments,
    health,
    invoke,
    keys,
    monitoring,
    openai_api,
    pipelines,
    reviews,
    traces,
    usage,
)
from keel.server.routes import evals as eval_routes
from keel.server.routes import feedback as feedback_routes
from keel.server.routes import quality as quality_routes
from keel.server.tasks import deployments_live, flush_usage, scheduled_tasks
from keel.settings import KeelSettings


def create_app(
    settings: KeelSettings | None = None,
    runtime: Runtime | None = None,
    *,
    tune_collector: bool = False,
) -> FastAPI:
    """Build the HTTP app. A given ``runtime`` is used as is and left open at shutdown.
    ``tune_collector`` (for the server process, not for tests) applies
    :func:`keel.server.collector.tune_for_serving` once start-up is done."""
    owns_runtime = runtime is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if app.state.runtime is None:
            app.state.runtime = Runtime(settings or KeelSettings())
        app.state.redis = redis_client(app.state.runtime.settings.redis_url)
        app.state.metrics = build_metrics(app.state.runtime)
        app.state.gateway = build_gateway(app.state.runtime, app.state.redis, app.state.metrics)
        app.state.auth = build_auth(app.state.runtime, app.state.redis)
        gateway = app.state.gateway
        if tune_collector:
            tune_for_serving()
        try:
            async with deployments_live(app), scheduled_tasks(app.state.runtime, gateway.ledger):
                yield
        finally:
            if gateway.ledger is not None:  # every request has finished: write its usage
                await flush_usage(gateway.ledger)
            if app.state.redis is not None:
                await app.state.redis.aclose()
            if owns_runtime:
                await app.state.runtime.aclose()
            else:  # pooled connections belong to this server's event loop
                await app.state.runtime.registry.aclose()

    app = KeelApp(
        title="Keel",
        version=__version__,
        summary="Versioned LLM pipelines behind resilient, traced model adapters.",
        lifespan=lifespan,
        # Keel traces requests itself; FastAPI's own OpenTelemetry probe costs per request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.runtime = runtime
    # POST /v1/chat/completions is answered by KeelApp before these (see hot_path).
    app.add_middleware(AuthMiddleware)  # added first so it runs inside the correlation id
    app.add_middleware(CorrelationMiddleware)
    app.add_middleware(MetricsMiddleware)
    install_error_handlers(app)
    # The OpenAI routes come first: route matching walks the routers in this order.
    for module in (openai_api, health, invoke, pipelines, traces, reviews, keys, usage, metrics):
        app.include_router(module.router)
    app.include_router(deployments.router)
    app.include_router(eval_routes.router)
    app.include_router(feedback_routes.router)
    app.include_router(quality_routes.router)
    app.include_router(monitoring.router)
    return app
