"""The review queue over HTTP: callers poll ``/v1/reviews/{id}``; reviewers decide under
``/api/reviews``. Every decision is audited with the reviewer's identity.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.background import BackgroundTask
from starlette.responses import Response

from keel.core.errors import InvalidInputError
from keel.review_queue import caller_view
from keel.runtime import Runtime
from keel.server.responses import JSONBytes
from keel.server.schemas import ERRORS

router = APIRouter(tags=["reviews"])
log = logging.getLogger("keel.review")


class DecisionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reviewer: str | None = Field(
        None,
        min_length=1,
        description="A display name for the person deciding; recorded after the API key's "
        "identity, which is what the audit log trusts.",
    )
    note: str | None = Field(None, description="Why; stored with the decision.")
    output: Any = Field(None, description="edit only: the corrected output (business object).")
    text: str | None = Field(None, description="edit only: the corrected answer text.")


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def held_response(review_id: str, trace_id: str, request_id: str) -> Response:
    """What ``invoke`` answers when the policy holds the answer: 202 and where to poll."""
    body = {
        "status": "pending",
        "review_id": review_id,
        "poll": f"/v1/reviews/{review_id}",
        "trace_id": trace_id,
        "request_id": request_id,
    }
    return JSONBytes(body, status_code=202, headers={"Location": body["poll"]})


@router.get("/api/guardrails/stats", summary="Guardrail rules fired", responses=ERRORS)
def guardrail_stats(request: Request) -> Response:
    """How often each rule fired, per pipeline and action, since this server started."""
    return JSONBytes({"fired": _runtime(request).guardrails.stats.snapshot()})


@router.get("/v1/reviews/{review_id}", summary="Poll a held answer", responses=ERRORS)
def poll(review_id: str, request: Request) -> Response:
    """Pending, or the released answer once approved or edited; rejected answers stay hidden."""
    return JSONBytes(caller_view(_runtime(request).reviews.get(review_id)))


@router.get("/api/reviews", summary="List review items", responses=ERRORS)
def list_reviews(
    request: Request,
    status: str | None = Query("pending", description="pending, approved, edited or rejected."),
    pipeline: str | None = Query(None),
    limit: int = Query(100, ge=1, le=1000),
) -> Response:
    runtime = _runtime(request)
    runtime.reviews.expire()
    items = runtime.store.reviews.list(status=status or None, pipeline=pipeline, limit=limit)
    return JSONBytes({"reviews": [item.to_dict() for item in items]})


@router.get("/api/reviews/{review_id}", summary="One review item", responses=ERRORS)
def get_review(review_id: str, request: Request) -> Response:
    return JSONBytes(_runtime(request).reviews.get(review_id).to_dict())


@router.post("/api/reviews/{review_id}/{decision}", summary="Decide", responses=ERRORS)
def decide(
    review_id: str,
    decision: Literal["approve", "edit", "reject"],
    body: DecisionRequest,
    request: Request,
) -> Response:
    edited = {k: v for k, v in (("output", body.output), ("text", body.text)) if v is not None}
    if decision == "edit" and not edited:
        raise InvalidInputError("edit needs the corrected output or text", code="edit_empty")
    if decision != "edit" and edited:
        raise InvalidInputError(
            f"{decision} takes no output or text; use edit", code="edit_misplaced"
        )
    runtime = _runtime(request)
    # The authenticated key is the reviewer's identity; a name in the body only annotates it.
    reviewer = request.state.principal.caller
    if body.reviewer:
        reviewer = f"{reviewer} as {body.reviewer}"
    item = runtime.reviews.decide(
        review_id, decision, reviewer, edited=edited or None, note=body.note
    )
    return JSONBytes(item.to_dict(), background=BackgroundTask(runtime.reviews.notify, item))
