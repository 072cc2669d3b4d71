"""``/api/alerts``, ``/api/slos`` and ``/api/drift``: alert history, SLO burn rates and drift
checks."""

from __future__ import annotations

import asyncio
from typing import Literal

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from keel.runtime import Runtime
from keel.server.responses import JSONBytes
from keel.server.schemas import ERRORS

router = APIRouter(tags=["monitoring"])


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


@router.get("/api/alerts", summary="Alert episodes, newest first", responses=ERRORS)
def list_alerts(
    request: Request,
    status: Literal["firing", "resolved"] | None = Query(
        None, description="Only firing or only resolved episodes; empty: both."
    ),
    pipeline: str | None = None,
    kind: str | None = Query(None, description="slo, input_drift, output_drift, golden, …"),
    limit: int = Query(100, ge=1, le=1000),
) -> Response:
    alerts = _runtime(request).store.alerts.list(
        status=status, pipeline=pipeline, kind=kind, limit=limit
    )
    return JSONBytes({"alerts": [a.to_dict() for a in alerts]})


@router.get("/api/alerts/{alert_id}", summary="One alert episode", responses=ERRORS)
def get_alert(alert_id: str, request: Request) -> Response:
    return JSONBytes(_runtime(request).store.alerts.get(alert_id).to_dict())


@router.get("/api/slos", summary="Every SLO with its burn rates", responses=ERRORS)
async def slos(request: Request, pipeline: str | None = None) -> Response:
    monitoring = _runtime(request).monitoring
    statuses = await asyncio.to_thread(monitoring.slo_status, pipeline)
    return JSONBytes({"slos": [s.to_dict() for s in statuses]})


@router.post("/api/drift/{pipeline}/check", summary="Run a drift check now", responses=ERRORS)
async def drift_check(
    pipeline: str,
    request: Request,
    window_seconds: float | None = Query(None, gt=0, description="Current window length."),
    reference_seconds: float | None = Query(None, gt=0, description="Reference window length."),
) -> Response:
    """Input, output and model-version drift of a pipeline's recent runs against the runs
    before them; raises no alert (the scheduled monitors do)."""
    monitoring = _runtime(request).monitoring
    report, windows = await asyncio.to_thread(
        monitoring.drift_check, pipeline, window_s=window_seconds, reference_s=reference_seconds
    )
    return JSONBytes({"pipeline": pipeline, "windows": windows.to_dict()} | report.to_dict())
