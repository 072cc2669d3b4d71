"""The controller acting on a shadow deployment through a real server: scripted models,
real traffic, mirrored runs and their traces. A shadow candidate with more errors is
rolled back on its own and stops being mirrored; the identical one passes and, with
``then: canary``, becomes a canary that serves primary traffic."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import ADMIN_KEY, Deployed, LiveServer, build_runtime, invoke

pytestmark = pytest.mark.integration
ADMIN = {"authorization": f"Bearer {ADMIN_KEY}"}


@pytest.fixture
def deployed(tmp_path: Path) -> Iterator[Deployed]:
    """The arms fail at scripted rates; the shared circuit breaker must not add failures."""
    built = build_runtime(tmp_path / "home", breaker=False)
    yield built
    built.runtime.close()


def drain(client: httpx.Client) -> None:
    """Wait until every mirrored job queued so far has run and its pair is stored."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        shadow = client.get("/api/deployments/triage/routing").json()["shadow"]
        done = shadow["completed"] + shadow["failed"] + shadow["dropped"]
        if done >= shadow["submitted"] and shadow["pending_pairs"] == 0:
            return
        time.sleep(0.1)
    raise AssertionError(f"the shadow queue did not drain: {shadow}")


def pairs_of(deployed: Deployed, deployment_id: str, version: str) -> int:
    pairs = deployed.runtime.store.deployments.pairs(deployment_id)
    return sum(1 for p in pairs if p.candidate_version == version)


def test_shadow_rolls_back_the_worse_candidate_and_turns_the_other_into_a_canary(
    client: httpx.Client, deployed: Deployed
) -> None:
    deployed.arms["candidate"].error_rate = 0.4
    body = {
        "pipeline": "triage", "version": [deployed.candidate, deployed.second],
        "strategy": "shadow", "mirror": 100, "interval": "2s", "min_samples": 30,
        "then": "canary", "steps": "50,100",
    }  # fmt: skip
    created = client.post("/api/deployments", json=body)
    assert created.status_code == 201, created.text
    deployment_id = created.json()["id"]
    deadline, status = time.monotonic() + 150, created.json()
    while time.monotonic() < deadline and status["strategy"] == "shadow":
        for i in range(20):
            answer = invoke(client, f"q{i}")
            assert answer.status_code == 200, answer.text
            # the shadow never answers (the canary may, once the controller started it)
            assert answer.json()["version"] != deployed.candidate
        status = client.get("/api/deployments/triage").json()
    assert status["strategy"] == "canary", status
    assert status["retired"] == [deployed.candidate]
    assert status["weights"] == {deployed.candidate: 0, deployed.second: 25, deployed.stable: 75}
    events = client.get("/api/deployments/triage/history").json()["deployments"][0]["events"]
    decided = [e for e in events if e["actor"] == "controller" and e["action"] != "checked"]
    assert decided[0]["action"] == "candidate_rolled_back"
    table = {m["name"]: m for m in decided[0]["evidence"]["judgement"]["metrics"]}
    assert decided[0]["evidence"]["candidate"] == deployed.candidate
    assert table["error"]["outcome"] == "high"
    assert decided[-1]["action"] == "canary_started"
    assert decided[-1]["evidence"]["judgement"]["verdict"] == "pass"
    # the rolled-back candidate is no longer mirrored; the canary serves primary traffic
    drain(client)  # jobs queued before the rollback still run
    mirrored = pairs_of(deployed, deployment_id, deployed.candidate)
    second = pairs_of(deployed, deployment_id, deployed.second)
    versions = {invoke(client, f"r{i}").json()["version"] for i in range(40)}
    assert deployed.second in versions and deployed.candidate not in versions
    drain(client)
    assert pairs_of(deployed, deployment_id, deployed.candidate) == mirrored
    assert pairs_of(deployed, deployment_id, deployed.second) > second  # still mirrored


def test_invalid_follow_ups_are_refused(client: httpx.Client, deployed: Deployed) -> None:
    cases: list[dict[str, Any]] = [
        {"strategy": "shadow", "mirror": 10, "then": "ab"},
        {"strategy": "ab", "then": "canary"},
    ]
    for case in cases:
        body = {"pipeline": "triage", "version": deployed.candidate, **case}
        refused = client.post("/api/deployments", json=body)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["code"] == "deployment_then_invalid"
    assert client.get("/api/deployments").json()["deployments"] == []


def test_an_identical_shadow_candidate_is_ready_and_waits_for_a_person(
    client: httpx.Client, deployed: Deployed
) -> None:
    """Same model behaviour on both arms (latency with jitter): the candidate's mirrored
    runs pass, it is recorded ready once, and stays a shadow until promoted by hand."""
    deployed.arms["stable"].latency_s = deployed.arms["candidate"].latency_s = 0.01
    deployed.arms["stable"].jitter_s = deployed.arms["candidate"].jitter_s = 0.004
    body = {
        "pipeline": "triage", "version": deployed.candidate, "strategy": "shadow",
        "mirror": 100, "interval": "2s", "min_samples": 30,
        "evaluator": "contains:value=says",
    }  # fmt: skip
    created = client.post("/api/deployments", json=body)
    assert created.status_code == 201, created.text
    deadline, status = time.monotonic() + 150, created.json()
    while time.monotonic() < deadline and not status["ready"]:
        for i in range(20):
            assert invoke(client, f"q{i}").json()["version"] == deployed.stable
        status = client.get("/api/deployments/triage").json()
    assert status["ready"] == [deployed.candidate], status
    assert status["state"] == "progressing" and status["strategy"] == "shadow"
    assert status["weights"][deployed.stable] == 100
    events = client.get("/api/deployments/triage/history").json()["deployments"][0]["events"]
    ready = [e for e in events if e["action"] == "ready"]
    assert len(ready) == 1 and ready[0]["actor"] == "controller"
    table = {m["name"]: m for m in ready[0]["evidence"]["judgement"]["metrics"]}
    assert table["eval_score"]["n_canary"] >= 30  # paired scores were judged
    assert f"keel deploy promote triage {deployed.candidate[:12]}" in ready[0]["reason"]
    promoted = client.post("/api/deployments/triage/promote")
    assert promoted.status_code == 200 and promoted.json()["state"] == "promoted"


def test_two_replicas_controllers_roll_a_candidate_back_once(tmp_path: Path) -> None:
    """Two servers on one store, each running its controller every 0.2 s: the worse of two
    shadow candidates is rolled back by exactly one decision, and both replicas stop
    mirroring it within a second of that decision."""
    replicas = [build_runtime(tmp_path / "home", breaker=False) for _ in range(2)]
    for built in replicas:
        built.arms["candidate"].error_rate = 0.5
    first = replicas[0]
    try:
        with LiveServer(first.runtime) as one, LiveServer(replicas[1].runtime) as two:
            clients = [
                httpx.Client(base_url=live.url, headers=ADMIN, timeout=30) for live in (one, two)
            ]
            body = {
                "pipeline": "triage", "version": [first.candidate, first.second],
                "strategy": "shadow", "mirror": 100, "interval": "1h", "min_samples": 30,
            }  # fmt: skip
            created = clients[0].post("/api/deployments", json=body)
            assert created.status_code == 201, created.text
            deadline, status = time.monotonic() + 120, created.json()
            while time.monotonic() < deadline and not status["retired"]:
                for i in range(10):
                    for client in clients:
                        invoke(client, f"q{i}")
                status = clients[1].get("/api/deployments/triage").json()
            assert status["retired"] == [first.candidate], status
            decided_at = time.monotonic()
            applied = set()
            while time.monotonic() - decided_at < 1.0 and len(applied) < 2:
                for index, client in enumerate(clients):
                    seen = client.get("/api/deployments/triage/routing").json()["deployment"]
                    if seen and seen["retired"] == [first.candidate]:
                        applied.add(index)
                time.sleep(0.05)
            assert applied == {0, 1}
            time.sleep(1.0)  # both controllers have had several more rounds
            events = clients[0].get("/api/deployments/triage/history").json()
            actions = [e["action"] for e in events["deployments"][0]["events"]]
            assert actions.count("candidate_rolled_back") == 1, actions
            for client in clients:
                client.close()
    finally:
        for built in replicas:
            built.runtime.close()
