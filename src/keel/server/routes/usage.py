"""``/api/usage``: requests, tokens, cost and cache savings per period, key and pipeline.

Admin keys see every key's usage; developer keys see their own.
"""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from keel.gateway.keys import Principal
from keel.gateway.service import Gateway
from keel.gateway.usage import parse_when, usage_report
from keel.server.responses import JSONBytes
from keel.server.schemas import ERRORS

router = APIRouter(tags=["usage"])


@router.get("/api/usage", summary="Usage and cost per period, key and pipeline", responses=ERRORS)
async def usage(
    request: Request,
    period: Literal["hour", "day", "month"] = "day",
    group_by: str = Query(
        "key,pipeline", description="Comma-separated: key, pipeline, model (or empty)."
    ),
    since: str | None = Query(None, description="ISO date or date-time (UTC), inclusive."),
    until: str | None = Query(None, description="ISO date or date-time (UTC), exclusive."),
) -> Response:
    gateway: Gateway = request.app.state.gateway
    principal: Principal = request.state.principal
    if gateway.ledger is not None:  # include what this process has not written yet
        await gateway.ledger.flush()
    groups = [part.strip() for part in group_by.split(",") if part.strip()]
    rows = usage_report(
        request.app.state.runtime.store,
        period=period,
        group_by=groups,
        since=parse_when(since, "since"),
        until=parse_when(until, "until"),
        key_id=None if principal.role == "admin" else principal.key_id,
    )
    return JSONBytes({"period": period, "group_by": groups, "usage": rows})
