"""``/api/traces``: list runs and read one run's spans."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from keel.runtime import Runtime
from keel.server.responses import JSONBytes
from keel.server.schemas import ERRORS
from keel.trace_views import span_dict, trace_dict

router = APIRouter(tags=["traces"])


@router.get("/api/traces", summary="Recent runs, newest first", responses=ERRORS)
def list_traces(
    request: Request,
    limit: int = Query(50, ge=1, le=1000),
    pipeline: str | None = None,
    status: Literal["ok", "error"] | None = None,
    before_ns: int | None = Query(None, description="Only runs that started before this."),
) -> Response:
    runtime: Runtime = request.app.state.runtime
    traces = runtime.store.traces.list(
        limit=limit, pipeline=pipeline, status=status, before_ns=before_ns
    )
    return JSONBytes({"traces": [trace_dict(t) for t in traces]})


@router.get("/api/traces/{trace_id}", summary="One run with all its spans", responses=ERRORS)
def get_trace(trace_id: str, request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    trace, spans = runtime.store.traces.get(trace_id)
    return JSONBytes(
        {
            "trace": trace_dict(trace) if trace else None,
            "spans": [span_dict(s) for s in spans],
        }
    )
