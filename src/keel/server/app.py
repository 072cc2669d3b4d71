"""The app factory. No module-level app: ``create_app`` is called by ``keel serve`` and tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from keel import __version__
from keel.runtime import Runtime
from keel.server.correlation import CorrelationMiddleware
from keel.server.errors import install_error_handlers
from keel.server.routes import evals as eval_routes
from keel.server.routes import health, invoke, pipelines, traces
from keel.settings import KeelSettings


def create_app(settings: KeelSettings | None = None, runtime: Runtime | None = None) -> FastAPI:
    """Build the HTTP app. A given ``runtime`` is used as is and left open at shutdown."""
    owns_runtime = runtime is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if app.state.runtime is None:
            app.state.runtime = Runtime(settings or KeelSettings())
        try:
            yield
        finally:
            if owns_runtime:
                await app.state.runtime.aclose()

    app = FastAPI(
        title="Keel",
        version=__version__,
        summary="Versioned LLM pipelines behind resilient, traced model adapters.",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.add_middleware(CorrelationMiddleware)
    install_error_handlers(app)
    for module in (health, invoke, pipelines, traces):
        app.include_router(module.router)
    app.include_router(eval_routes.router)
    return app
