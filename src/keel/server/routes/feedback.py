"""Feedback over HTTP: applications send it under ``/v1/feedback`` (service keys, on their own
traces); developers send and read it under ``/api/feedback``, review the queue of shared
conversations and read the override report."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from keel.core.errors import NotFoundError
from keel.core.tracing import TraceRecord
from keel.feedback.payloads import FeedbackIn
from keel.gateway.keys import Principal
from keel.runtime import Runtime
from keel.server.responses import JSONBytes
from keel.server.schemas import ERRORS

router = APIRouter(tags=["feedback"])


class QueueDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reviewer: str | None = Field(
        None, min_length=1, description="A display name; recorded after the API key's identity."
    )
    note: str | None = Field(None, description="Why; stored with the decision.")
    dataset: str | None = Field(
        None, description="approve only: dataset to add to (default `<pipeline>-feedback`)."
    )


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def reviewer_of(request: Request, name: str | None) -> str:
    """The authenticated key is the identity; a name in the body only annotates it."""
    caller: str = request.state.principal.caller
    return f"{caller} as {name}" if name else caller


def _own_traces(principal: Principal) -> Callable[[TraceRecord], None]:
    def authorize(trace: TraceRecord) -> None:
        if trace.pipeline:
            principal.require_pipeline(trace.pipeline)
        if principal.role == "service" and trace.caller != principal.caller:
            # Service keys see only their own traces; say "not found", not "forbidden".
            msg = f"no trace {trace.trace_id!r} made with this API key"
            raise NotFoundError(msg, code="trace_not_found", trace_id=trace.trace_id)

    return authorize


def _submit(request: Request, body: FeedbackIn) -> Response:
    principal: Principal = request.state.principal
    submitted = _runtime(request).feedback.submit(
        body, principal.caller, authorize=_own_traces(principal)
    )
    return JSONBytes(submitted.to_dict(), status_code=201)


@router.post("/v1/feedback", status_code=201, summary="Feedback on a trace", responses=ERRORS)
def submit_v1(body: FeedbackIn, request: Request) -> Response:
    """Thumbs, a score, a correction or a comment on a trace this key made."""
    return _submit(request, body)


@router.post("/api/feedback", status_code=201, summary="Feedback on a trace", responses=ERRORS)
def submit_api(body: FeedbackIn, request: Request) -> Response:
    """The same as ``/v1/feedback``, on any trace."""
    return _submit(request, body)


@router.get("/api/feedback", summary="Feedback, newest first", responses=ERRORS)
def list_feedback(
    request: Request,
    trace_id: str | None = Query(None),
    pipeline: str | None = Query(None),
    user: str | None = Query(None, description="User id (key caller[/end user])."),
    kind: str | None = Query(None, description="thumbs, score, correction or comment."),
    limit: int = Query(100, ge=1, le=1000),
) -> Response:
    found = _runtime(request).store.feedback.list(
        trace_id=trace_id, pipeline=pipeline, user_id=user, kind=kind, limit=limit
    )
    return JSONBytes({"feedback": [record.to_dict() for record in found]})


@router.get("/api/feedback/overrides", summary="Users with anomalous override rates")
def overrides_report(
    request: Request,
    pipeline: str | None = Query(None),
    days: float | None = Query(None, gt=0, description="Only judgements of the last N days."),
) -> Response:
    from keel.feedback.overrides import assess_users, override_counts  # scipy: deferred

    runtime = _runtime(request)
    settings = runtime.settings.feedback
    since = datetime.now(UTC) - timedelta(days=days) if days else None
    counts = override_counts(runtime.store, pipeline=pipeline, since=since)
    report = assess_users(
        counts, min_decisions=settings.override_min_decisions, alpha=settings.override_alpha
    )
    body = {
        "min_decisions": settings.override_min_decisions,
        "alpha": settings.override_alpha,
        "users": [row.to_dict() for row in report],
    }
    return JSONBytes(body)


@router.get("/api/feedback/queue", summary="Shared conversations awaiting approval")
def list_queue(
    request: Request,
    status: str | None = Query("pending", description="pending, filtered, approved, rejected."),
    pipeline: str | None = Query(None),
    limit: int = Query(100, ge=1, le=1000),
) -> Response:
    items = _runtime(request).store.feedback.queue(
        status=status or None, pipeline=pipeline, limit=limit
    )
    return JSONBytes({"queue": [item.to_dict() for item in items]})


@router.get("/api/feedback/queue/{queue_id}", summary="One queued conversation")
def get_queued(queue_id: str, request: Request) -> Response:
    return JSONBytes(_runtime(request).store.feedback.queued(queue_id).to_dict())


@router.post("/api/feedback/queue/{queue_id}/approve", summary="Add to a dataset version")
def approve(queue_id: str, body: QueueDecision, request: Request) -> Response:
    item = _runtime(request).feedback.approve(
        queue_id, reviewer_of(request, body.reviewer), dataset=body.dataset, note=body.note
    )
    return JSONBytes(item.to_dict())


@router.post("/api/feedback/queue/{queue_id}/reject", summary="Keep out of datasets")
def reject(queue_id: str, body: QueueDecision, request: Request) -> Response:
    item = _runtime(request).feedback.reject(
        queue_id, reviewer_of(request, body.reviewer), note=body.note
    )
    return JSONBytes(item.to_dict())
