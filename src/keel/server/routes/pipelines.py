"""``/api/pipelines``: push specs, list versions, move labels."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from keel.pipeline.loader import spec_from_data
from keel.runtime import Runtime
from keel.server.responses import JSONBytes
from keel.server.schemas import ERRORS

router = APIRouter(tags=["pipelines"])


class LabelRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str = Field(description="Version (or unique prefix) the label should point to.")


@router.get("/api/pipelines", summary="Every pipeline with its labels", responses=ERRORS)
def list_pipelines(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    rows = runtime.store.pipelines.list_pipelines()
    return JSONBytes(
        {
            "pipelines": [
                {
                    "name": p.name,
                    "latest_version": p.latest_version,
                    "versions": p.version_count,
                    "labels": p.labels,
                    "updated_at": p.updated_at.isoformat(),
                }
                for p in rows
            ]
        }
    )


@router.post("/api/pipelines", status_code=201, summary="Push a spec", responses=ERRORS)
def push_pipeline(request: Request, spec: dict[str, Any] = Body(...)) -> Response:
    """Store a spec (templates inline) as an immutable version; pushing it again is a no-op."""
    runtime: Runtime = request.app.state.runtime
    actor = request.state.principal.caller
    result = runtime.catalog.push(spec_from_data(spec, source="request body"), created_by=actor)
    if result.created:
        runtime.store.audit.record(actor, "pipeline.push", f"{result.name}@{result.version}")
    body = {"name": result.name, "version": result.version, "created": result.created}
    return JSONBytes(body, status_code=201 if result.created else 200)


@router.get("/api/pipelines/{name}", summary="Versions and labels", responses=ERRORS)
def describe_pipeline(name: str, request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    return JSONBytes(runtime.catalog.describe(name))


@router.get("/api/pipelines/{name}/versions/{version}", summary="One spec", responses=ERRORS)
def get_version(name: str, version: str, request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    stored = runtime.store.pipelines.get_version(name, version)
    return JSONBytes({"name": name, "version": stored.version, "spec": stored.spec})


@router.put("/api/pipelines/{name}/labels/{label}", summary="Point a label", responses=ERRORS)
def set_label(name: str, label: str, body: LabelRequest, request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    previous = runtime.catalog.set_label(name, label, body.version)
    current = runtime.store.pipelines.resolve_label(name, label)
    runtime.store.audit.record(
        request.state.principal.caller,
        "label.set",
        f"{name}/{label}",
        {"version": current, "previous": previous},
    )
    return JSONBytes({"name": name, "label": label, "version": current, "previous": previous})
