"""/api/deployments and the request path through a real server: weighted and sticky
routing, span attributes, refusals that change nothing, and roles."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest
from scipy.stats import binomtest

from keel.store import Store

from .conftest import Deployed, LiveServer, invoke, start, state

pytestmark = pytest.mark.integration


def test_canary_splits_traffic_by_weight_and_tags_traces(
    client: httpx.Client, deployed: Deployed
) -> None:
    created = start(client, deployed.candidate[:8], steps=[20, 100], interval="1h")
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["state"] == "progressing"
    assert body["weights"] == {deployed.candidate: 20.0, deployed.stable: 80.0}
    versions = Counter(invoke(client).json()["version"] for _ in range(400))
    assert set(versions) == {deployed.stable, deployed.candidate}
    # The share of the candidate is consistent with 20 % (two-sided binomial test).
    assert binomtest(versions[deployed.candidate], 400, 0.2).pvalue > 0.001
    answer = invoke(client).json()
    deployed.runtime.flush()
    _, spans = deployed.runtime.store.traces.get(answer["trace_id"])
    root = next(s for s in spans if s.layer == "pipeline")
    assert root.attributes["keel.deploy.id"] == body["id"]
    assert root.attributes["keel.deploy.role"] in ("stable", "candidate")
    assert root.attributes["keel.deploy.strategy"] == "canary"


def test_pinned_version_bypasses_the_deployment(client: httpx.Client, deployed: Deployed) -> None:
    assert start(client, deployed.candidate, strategy="blue-green").status_code == 201
    pinned = client.post(
        f"/v1/pipelines/triage/invoke?version={deployed.candidate}", json={"input": {"text": "x"}}
    )
    assert pinned.json()["version"] == deployed.candidate  # a smoke test of the idle green
    assert {invoke(client).json()["version"] for _ in range(20)} == {deployed.stable}


def test_sticky_ab_never_flips_a_user(client: httpx.Client, deployed: Deployed) -> None:
    created = start(client, deployed.candidate, strategy="ab", split=50, sticky="header:X-User-ID")
    assert created.status_code == 201, created.text
    arms: dict[str, set[str]] = {}
    for round_ in range(3):
        for user in range(60):
            chat = client.post(
                "/v1/chat/completions",
                json={
                    "model": "pipeline/triage",
                    "messages": [{"role": "user", "content": "hi"}],
                    "input": {"text": f"r{round_}"},
                },
                headers={"X-User-ID": f"user-{user}"},
            )
            assert chat.status_code == 200, chat.text
            arms.setdefault(f"user-{user}", set()).add(chat.json()["keel"]["version"])
    assert all(len(seen) == 1 for seen in arms.values())
    on_candidate = sum(seen == {deployed.candidate} for seen in arms.values())
    assert binomtest(on_candidate, 60, 0.5).pvalue > 0.001


def test_refused_requests_leave_the_deployment_untouched(
    client: httpx.Client, deployed: Deployed
) -> None:
    assert start(client, deployed.candidate, steps="10,50,100").status_code == 201
    before = state(client)
    refusals = [
        (start(client, "deadbeef"), 404, "version_not_found"),
        (start(client, deployed.candidate), 409, "deployment_active"),
        (start(client, deployed.candidate, interval="soonish"), 422, "deployment_interval_invalid"),
        (
            start(client, deployed.candidate, strategy="ab", split=120),
            422,
            "deployment_split_invalid",
        ),
        (start(client, deployed.candidate, strategy="yolo"), 422, "request_invalid"),
        (
            client.put(
                "/api/deployments/triage/weights",
                json={"weights": {deployed.candidate: 70, deployed.stable: 20}},
            ),
            422,
            "deployment_weights_invalid",
        ),
        (client.post("/api/deployments/triage/resume"), 409, "deployment_state_invalid"),
        (client.post("/api/deployments/nope/promote"), 404, "deployment_not_active"),
    ]
    for response, status, code in refusals:
        assert (response.status_code, response.json()["error"]["code"]) == (status, code)
    assert state(client) == before


def test_service_keys_cannot_deploy(client: httpx.Client, deployed: Deployed) -> None:
    created = client.post("/api/keys", json={"name": "svc", "role": "service"})
    key = created.json()["key"]
    denied = client.post(
        "/api/deployments",
        json={"pipeline": "triage", "version": deployed.candidate},
        headers={"authorization": f"Bearer {key}"},
    )
    assert denied.status_code == 403


def test_pause_promote_and_one_command_rollback(client: httpx.Client, deployed: Deployed) -> None:
    assert start(client, deployed.candidate, steps="50,100").status_code == 201
    assert client.post("/api/deployments/triage/pause").json()["state"] == "paused"
    assert client.post("/api/deployments/triage/resume").json()["state"] == "progressing"
    promoted = client.post("/api/deployments/triage/promote").json()
    assert promoted["state"] == "promoted"
    assert {invoke(client).json()["version"] for _ in range(10)} == {deployed.candidate}
    rolled = client.post("/api/deployments/triage/rollback").json()
    assert rolled["state"] == "rolled_back"
    assert {invoke(client).json()["version"] for _ in range(10)} == {deployed.stable}
    events = client.get("/api/deployments/triage/history").json()["deployments"][0]["events"]
    assert [e["action"] for e in events] == [
        "created", "started", "paused", "resumed", "promoted", "rolled_back",
    ]  # fmt: skip
    store: Store = deployed.runtime.store
    assert store.pipelines.resolve_label("triage", "production") == deployed.stable


def test_routing_view_shows_what_this_replica_applies(
    client: httpx.Client, live: LiveServer, deployed: Deployed
) -> None:
    created = start(client, deployed.candidate).json()
    view = client.get("/api/deployments/triage/routing").json()
    assert view["deployment"]["id"] == created["id"]
    assert view["deployment"]["revision"] == created["revision"]
