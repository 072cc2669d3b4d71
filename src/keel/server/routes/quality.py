"""Measured quality of production answers: the sampled review queue and its accuracy
interval, and online evaluation scores per trace and per pipeline version."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from keel.feedback.verdicts import mark_sample
from keel.runtime import Runtime
from keel.server.responses import JSONBytes
from keel.server.routes.feedback import reviewer_of
from keel.server.schemas import ERRORS

router = APIRouter(tags=["quality"])


class VerdictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reviewer: str | None = Field(
        None, min_length=1, description="A display name; recorded after the API key's identity."
    )
    label: str | None = Field(None, min_length=1, description="incorrect only: the right label.")
    output: Any = Field(None, description="incorrect only: the right output.")
    note: str | None = Field(None, description="Why; stored with the verdict.")


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


@router.get("/api/review-samples", summary="Sampled production answers", responses=ERRORS)
def list_samples(
    request: Request,
    status: str | None = Query("pending", description="pending, correct or incorrect."),
    pipeline: str | None = Query(None),
    limit: int = Query(100, ge=1, le=1000),
) -> Response:
    samples = _runtime(request).store.samples.list(
        status=status or None, pipeline=pipeline, limit=limit
    )
    return JSONBytes({"samples": [sample.to_dict() for sample in samples]})


@router.get("/api/review-samples/{sample_id}", summary="One sample", responses=ERRORS)
def get_sample(sample_id: str, request: Request) -> Response:
    return JSONBytes(_runtime(request).store.samples.get(sample_id).to_dict())


@router.post("/api/review-samples/{sample_id}/{verdict}", summary="Mark", responses=ERRORS)
def mark(
    sample_id: str,
    verdict: Literal["correct", "incorrect"],
    body: VerdictRequest,
    request: Request,
) -> Response:
    """Mark a sampled answer correct or incorrect (optionally with the right answer)."""
    sample = mark_sample(
        _runtime(request).store,
        sample_id,
        verdict,
        reviewer_of(request, body.reviewer),
        label=body.label,
        output=body.output,
        note=body.note,
    )
    return JSONBytes(sample.to_dict())


@router.get("/api/pipelines/{name}/accuracy", summary="Sampled-review accuracy", responses=ERRORS)
def accuracy(
    name: str,
    request: Request,
    window_hours: float | None = Query(None, gt=0, description="Default: the setting."),
    version: str | None = Query(None, description="One version; all together when absent."),
    by_version: bool = Query(False, description="One estimate per version."),
) -> Response:
    """Accuracy with a Wilson interval, and whether it is below the pipeline's target."""
    from keel.feedback.accuracy import accuracy_by_version, review_accuracy  # scipy: deferred

    runtime = _runtime(request)
    settings = runtime.settings.feedback
    window = window_hours or settings.accuracy_window_hours
    target, confidence = settings.target(name), settings.confidence
    overall = review_accuracy(
        runtime.store, name, window, version=version, target=target, confidence=confidence
    )
    body: dict[str, Any] = overall.to_dict()
    if by_version:
        per_version = accuracy_by_version(
            runtime.store, name, window, target=target, confidence=confidence
        )
        body["versions"] = [estimate.to_dict() for estimate in per_version]
    return JSONBytes(body)


@router.get("/api/pipelines/{name}/online", summary="Online evaluation", responses=ERRORS)
def online(
    name: str,
    request: Request,
    version: str | None = Query(None),
    hours: float | None = Query(None, gt=0, description="Only scores of the last N hours."),
) -> Response:
    """Per version and metric: traces scored, mean and interval."""
    from keel.feedback.online import online_summary  # scipy: deferred

    runtime = _runtime(request)
    since = datetime.now(UTC) - timedelta(hours=hours) if hours else None
    summary = online_summary(
        runtime.store,
        name,
        version=version,
        since=since,
        confidence=runtime.settings.feedback.confidence,
    )
    return JSONBytes({"pipeline": name, "metrics": [row.to_dict() for row in summary]})


@router.get("/api/traces/{trace_id}/scores", summary="Online scores of a trace")
def trace_scores(trace_id: str, request: Request) -> Response:
    scores = _runtime(request).store.samples.scores(trace_id=trace_id)
    return JSONBytes(
        {
            "trace_id": trace_id,
            "scores": [
                {"metric": s.metric, "evaluator": s.evaluator, "kind": s.kind, "value": s.value}
                for s in scores
            ],
        }
    )


@router.get("/api/sampling", summary="Sampler counters of this server")
def sampling(request: Request) -> Response:
    """Offered, sampled, dropped (queue full), processed and failed runs since start."""
    sampler = _runtime(request).sampler
    return JSONBytes({"running": sampler.running, **sampler.counts.to_dict()})
