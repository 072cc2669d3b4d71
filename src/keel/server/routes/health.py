"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from keel import __version__
from keel.runtime import Runtime
from keel.server.responses import JSONBytes

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> Response:
    return JSONBytes({"status": "ok", "version": __version__})


@router.get("/readyz", summary="The process can serve: store reachable, providers loaded")
def readyz(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    checks: dict[str, str] = {}
    try:
        runtime.store.ping()
        checks["store"] = "ok"
    except Exception as exc:  # a probe reports, it does not raise
        checks["store"] = f"unavailable: {type(exc).__name__}"
    checks["providers"] = ", ".join(runtime.registry.names) or "none installed"
    ready = checks["store"] == "ok" and bool(runtime.registry.names)
    return JSONBytes(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status_code=200 if ready else 503,
    )
