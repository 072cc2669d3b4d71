"""Datasets and eval runs over HTTP: create versions, bad rows as 422, read runs."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from keel.evals import service
from keel.runtime import Runtime

from .test_api import assert_error

pytestmark = pytest.mark.integration

ROWS = [
    {"id": "a", "input": {"subject": "Charged twice", "body": "invoice"}, "label": "billing"},
    {"id": "b", "input": {"subject": "Crash", "body": "app dies"}, "label": "technical"},
]


def test_dataset_versions_over_http(client: httpx.Client) -> None:
    created = client.post("/api/datasets/support", json={"items": ROWS, "description": "d"})
    assert created.status_code == 201, created.text
    assert created.json()["version"] == 1 and created.json()["items"] == 2
    assert client.post("/api/datasets/support", json={"items": ROWS[:1]}).json()["version"] == 2
    listed = client.get("/api/datasets").json()["datasets"]
    assert [(d["name"], d["version"]) for d in listed] == [("support", 2)]
    first = client.get("/api/datasets/support", params={"version": 1}).json()
    assert first["versions"] == [2, 1] and first["items"] == ROWS
    assert_error(client.get("/api/datasets/nope"), 404, "dataset_not_found")


def test_bad_rows_are_a_422_listing_each_and_store_nothing(client: httpx.Client) -> None:
    bad = [ROWS[0], {"label": "x"}, {"input": 1, "tags": "t"}]
    error = assert_error(
        client.post("/api/datasets/support", json={"items": bad}), 422, "dataset_rows_invalid"
    )
    assert [r["row"] for r in error["details"]["rows"]] == [2, 3]
    assert client.get("/api/datasets").json()["datasets"] == []
    assert_error(client.post("/api/datasets/support", json={"rows": []}), 422, "request_invalid")


def test_eval_runs_over_http(client: httpx.Client, runtime: Runtime) -> None:
    assert client.post("/api/datasets/support", json={"items": ROWS}).status_code == 201
    plan = service.plan_run(runtime, service.RunRequest("support-triage", "support", repeats=2))
    run = asyncio.run(service.execute(runtime, plan))
    runs = client.get("/api/evals", params={"pipeline": "support-triage"}).json()["runs"]
    assert [r["run_id"] for r in runs] == [run.run_id]
    one = client.get(f"/api/evals/{run.run_id[:8]}").json()
    assert one["summary"]["metrics"]["accuracy"]["n_trials"] == 4
    assert one["summary"]["aggregates"]["classification"]["confusion"]["billing"]["billing"] == 2
    assert_error(client.get("/api/evals/ffffffffff"), 404, "eval_run_not_found")
