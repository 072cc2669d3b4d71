"""Deployment fixtures: a migrated store on SQLite and on the machine's PostgreSQL (fresh
tables per test), a catalog with two versions of one pipeline, and a deployment service."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from keel.catalog import PipelineCatalog
from keel.deploy.service import DeploymentService
from keel.pipeline.loader import spec_from_data
from keel.store import Store
from tests.store.conftest import (
    PostgresServer,
    backend_store,
    postgres_server,
    postgres_session_url,
)

__all__ = ["PostgresServer", "postgres_server", "postgres_session_url"]

_TABLES = (
    "deployment_pairs, deployment_events, deployments, spans, traces, pipeline_labels, "
    "pipeline_versions, pipelines, audit_log"
)
BACKENDS = [
    "sqlite",
    pytest.param("postgres", marks=[pytest.mark.postgres, pytest.mark.integration]),
]


def spec(
    model: str = "testing:echo", note: str = "v1", guardrails: dict[str, Any] | None = None
) -> Any:
    """Pipeline ``triage`` as text; ``note`` changes the prompt, hence the version."""
    data: dict[str, Any] = {
        "name": "triage",
        "model": {"id": model},
        "prompt": {"user": note + ": {{ text }}"},
        "input": {"schema": {"type": "object", "required": ["text"]}},
    }
    if guardrails:
        data["guardrails"] = guardrails
    return spec_from_data(data)


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    with backend_store(request.param, tmp_path, request, _TABLES) as opened:
        yield opened


@pytest.fixture
def versions(store: Store) -> tuple[str, str]:
    """(stable, candidate): stable is labelled production."""
    catalog = PipelineCatalog(store, label_ttl=0)
    stable = catalog.push(spec(note="v1")).version
    candidate = catalog.push(spec(note="v2")).version
    catalog.set_label("triage", "production", stable)
    return stable, candidate


@pytest.fixture
def service(store: Store) -> DeploymentService:
    return DeploymentService(store)
