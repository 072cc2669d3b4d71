"""``/api/datasets`` and ``/api/evals``: dataset versions (read, create) and eval runs (read).

Eval runs are started from the CLI or CI (`keel eval run`), which hold the long-running
work; the server exposes what they stored.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from keel.core.dataset import check_items
from keel.runtime import Runtime
from keel.server.responses import JSONBytes
from keel.server.schemas import ERRORS

router = APIRouter(tags=["evals"])


class NewVersion(BaseModel):
    model_config = ConfigDict(extra="forbid")
    items: list[Any] = Field(description="Rows: {id?, input, expected?, label?, tags?, metadata?}.")
    description: str | None = Field(None, description="What the dataset holds.")


@router.get("/api/datasets", summary="Every dataset with its newest version", responses=ERRORS)
def list_datasets(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    return JSONBytes({"datasets": [d.to_dict() for d in runtime.store.datasets.list()]})


@router.get("/api/datasets/{name}", summary="One dataset version and its items", responses=ERRORS)
def get_dataset(
    name: str,
    request: Request,
    version: int | None = Query(None, ge=1, description="Version; newest when absent."),
    limit: int = Query(100, ge=0, le=10_000, description="Items returned."),
) -> Response:
    runtime: Runtime = request.app.state.runtime
    found = runtime.store.datasets.get(name, version)
    items = runtime.store.datasets.items(name, found.version)
    versions = [v.version for v in runtime.store.datasets.versions(name)]
    body = found.to_dict() | {"versions": versions, "items": [i.to_dict() for i in items[:limit]]}
    return JSONBytes(body)


@router.post(
    "/api/datasets/{name}",
    summary="Store rows as the dataset's next version (all rows valid, or nothing stored)",
    status_code=201,
    responses=ERRORS,
)
def create_dataset_version(name: str, body: NewVersion, request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    items = check_items("request body", enumerate(body.items, start=1))
    created = runtime.store.datasets.create_version(
        name, items, source="api", description=body.description, created_by="api"
    )
    return JSONBytes(created.to_dict(), status_code=201)


@router.get("/api/evals", summary="Recent eval runs, newest first", responses=ERRORS)
def list_runs(
    request: Request,
    pipeline: str | None = None,
    limit: int = Query(20, ge=1, le=1000),
) -> Response:
    runtime: Runtime = request.app.state.runtime
    runs = runtime.store.eval_runs.list(limit=limit, pipeline=pipeline)
    return JSONBytes({"runs": [r.to_dict() for r in runs]})


@router.get("/api/evals/{run_id}", summary="One eval run with its summary", responses=ERRORS)
def get_run(run_id: str, request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    return JSONBytes(runtime.store.eval_runs.get(run_id).to_dict())
