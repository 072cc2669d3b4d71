"""``/api/deployments``: start, inspect, promote, roll back, pause and resume rollouts.

Developer and admin keys only (service keys reach ``/v1`` alone). Every refused request
(unknown version, weights not summing to 100, a second rollout on one endpoint, a bad
duration) answers 4xx with a code and leaves the running deployment as it was.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from keel.deploy.arms import parse_split
from keel.deploy.model import StickyKey, Strategy, parse_duration, parse_steps
from keel.deploy.service import DeploymentService
from keel.runtime import Runtime
from keel.server.responses import JSONBytes
from keel.server.schemas import ERRORS

router = APIRouter(tags=["deployments"])


class DeployRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pipeline: str = Field(description="The endpoint: the pipeline's name.")
    version: str | list[str] = Field(
        description="Candidate version (or a unique prefix), or a list of up to 7 candidates."
    )
    strategy: Literal["canary", "ab", "shadow", "blue-green"] = "canary"
    steps: str | list[float] | None = Field(
        None, description="Canary weights in percent, e.g. [5, 25, 50, 100] or '5,25,50,100'."
    )
    interval: str | float | None = Field(
        None, description="Time per canary step: seconds, or a duration such as '10m'."
    )
    split: float | str | list[float] | None = Field(
        None,
        description="A/B: one percent per candidate (stable gets the rest), or stable's "
        "percent first and then the candidates' (summing to 100), e.g. '34,33,33'.",
    )
    weights: dict[str, float] | None = Field(
        None,
        description="A/B: percent per version (prefixes, or 'stable'), summing to 100; "
        "instead of split.",
    )
    sticky: str | None = Field(
        None, description="User key for sticky arms: header:NAME, body:FIELD[.FIELD] or key."
    )
    mirror: float | None = Field(
        None, description="Percent of requests mirrored to every candidate (shadow)."
    )
    evaluator: str | None = Field(None, description="Evaluator scoring shadowed pairs.")
    min_samples: int | None = Field(None, description="Requests per arm before judging.")
    then: str | None = Field(
        None,
        description="Shadow: 'canary' turns the candidates that pass into a canary with "
        "these steps; without it a person promotes.",
    )


class VersionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str | None = Field(
        None, description="The candidate to act on; required when several are live."
    )


class WeightsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    weights: dict[str, float] = Field(description="Percent per version; must sum to 100.")


def plan_args(body: DeployRequest | dict[str, Any]) -> dict[str, Any]:
    """Plan keyword arguments from a request (or CLI options), each one validated."""
    raw = body.model_dump() if isinstance(body, BaseModel) else body
    args: dict[str, Any] = {"strategy": Strategy(raw.get("strategy") or "canary")}
    steps = raw.get("steps")
    if steps is not None:
        args["steps"] = parse_steps(steps if isinstance(steps, str) else ",".join(map(str, steps)))
    interval = raw.get("interval")
    if interval is not None:
        args["interval_s"] = parse_duration(str(interval))
    if raw.get("split") is not None:
        args["split"] = parse_split(raw["split"])
    for key in ("weights", "mirror", "evaluator", "min_samples", "then"):
        if raw.get(key) is not None:
            args[key] = raw[key]
    if raw.get("sticky"):
        args["sticky"] = StickyKey.parse(raw["sticky"])
    return args


def _service(request: Request) -> DeploymentService:
    service: DeploymentService = request.app.state.deployments
    return service


def _actor(request: Request) -> str:
    return str(request.state.principal.caller)


@router.get("/api/deployments", summary="Active deployments", responses=ERRORS)
def list_deployments(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    active = runtime.store.deployments.all_active()
    return JSONBytes({"deployments": [d.to_dict() for d in active]})


@router.post("/api/deployments", status_code=201, summary="Start a rollout", responses=ERRORS)
def start(body: DeployRequest, request: Request) -> Response:
    args = plan_args(body)
    started = _service(request).start(body.pipeline, body.version, args, _actor(request))
    return JSONBytes(started.to_dict(), status_code=201)


@router.get("/api/deployments/{name}", summary="Current deployment", responses=ERRORS)
def status(name: str, request: Request) -> Response:
    return JSONBytes(_service(request).current(name).to_dict())


@router.get("/api/deployments/{name}/history", summary="Every transition", responses=ERRORS)
def history(name: str, request: Request) -> Response:
    rows = _service(request).history(name)
    return JSONBytes(
        {
            "pipeline": name,
            "deployments": [
                d.to_dict() | {"events": [e.to_dict() for e in events]} for d, events in rows
            ],
        }
    )


@router.get(
    "/api/deployments/{name}/routing",
    summary="What this replica applies (routing table and shadow counters)",
    responses=ERRORS,
)
def routing(name: str, request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    return JSONBytes(runtime.router.view(name) | {"shadow": runtime.shadow.stats.to_dict()})


@router.post("/api/deployments/{name}/promote", summary="Promote a candidate", responses=ERRORS)
def promote(name: str, request: Request, body: VersionRequest | None = None) -> Response:
    version = body.version if body else None
    promoted = _service(request).promote(name, _actor(request), version=version)
    return JSONBytes(promoted.to_dict())


@router.post(
    "/api/deployments/{name}/rollback",
    summary="Back to stable (or undo the last promotion)",
    responses=ERRORS,
)
def rollback(name: str, request: Request, body: VersionRequest | None = None) -> Response:
    """With ``{"version": …}``, roll back that one candidate; the others carry on."""
    version = body.version if body else None
    return JSONBytes(_service(request).rollback(name, _actor(request), version=version).to_dict())


@router.post("/api/deployments/{name}/pause", summary="Freeze the rollout", responses=ERRORS)
def pause(name: str, request: Request) -> Response:
    return JSONBytes(_service(request).pause(name, _actor(request)).to_dict())


@router.post("/api/deployments/{name}/resume", summary="Continue the rollout", responses=ERRORS)
def resume(name: str, request: Request) -> Response:
    return JSONBytes(_service(request).resume(name, _actor(request)).to_dict())


@router.put("/api/deployments/{name}/weights", summary="Set the split", responses=ERRORS)
def set_weights(name: str, body: WeightsRequest, request: Request) -> Response:
    changed = _service(request).set_weights(name, body.weights, _actor(request))
    return JSONBytes(changed.to_dict())


@router.get(
    "/api/deployments/{name}/report",
    summary="The judge's comparison (canary, shadow) or the A/B report",
    responses=ERRORS,
)
def report(name: str, request: Request) -> Response:
    deployment = _service(request).current(name)
    return JSONBytes(request.app.state.controller.report(deployment))
