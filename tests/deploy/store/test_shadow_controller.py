"""The controller on shadow deployments against the real store (SQLite and Postgres):
traces as the request path writes them, a decision stored with its evidence in the
history and the audit log, the same decision taken once when two replicas' controllers
race, the follow-up stored and refused when invalid."""

from __future__ import annotations

import random
import secrets
import time
from typing import Any

import pytest

from keel.core.errors import ConflictError
from keel.core.tracing import SpanRecord, TraceRecord
from keel.deploy.controller import RolloutController
from keel.deploy.model import Deployment, Strategy
from keel.deploy.service import DeploymentService
from keel.server.routes.deployments import plan_args
from keel.settings import DeploySettings
from keel.store import Store

from .test_refusals import refused

SHADOW = {"strategy": "shadow", "mirror": 50, "interval": "50ms", "min_samples": 40}


def write_runs(
    store: Store, deployment: Deployment, role: str, version: str, n: int, error_rate: float
) -> None:
    """``n`` finished runs of ``version`` as the request path stores them."""
    rng = random.Random(f"{role}{version}")
    spans, traces = [], []
    now = time.time_ns()
    for _ in range(n):
        trace_id, error = secrets.token_hex(16), rng.random() < error_rate
        end = now + int(rng.uniform(80, 120) * 1e6)
        status: Any = "error" if error else "ok"
        attributes = {"keel.deploy.id": deployment.id, "keel.deploy.role": role}
        span_id = secrets.token_hex(8)
        spans.append(SpanRecord(trace_id, span_id, None, "triage", now, end, status=status,
                                layer="pipeline", attributes=attributes))  # fmt: skip
        traces.append(TraceRecord(trace_id, trace_id, "triage", now, end, status=status,
                                  pipeline="triage", pipeline_version=version))  # fmt: skip
    store.traces.write(spans, traces)


def controller(store: Store) -> RolloutController:
    return RolloutController(store, DeploymentService(store), DeploySettings())


def test_a_failing_shadow_candidate_is_rolled_back_once_with_evidence(
    service: DeploymentService, store: Store, versions: tuple[str, str]
) -> None:
    stable, candidate = versions
    started = service.start("triage", candidate, plan_args(SHADOW), "cli:ann")
    write_runs(store, started, "stable", stable, 120, 0.01)
    write_runs(store, started, "shadow", candidate, 60, 0.5)
    read = store.deployments.active("triage")
    assert read is not None
    first, second = controller(store), controller(store)
    assert first._shadow(read) == "triage: rolled_back"
    with pytest.raises(ConflictError) as info:  # a second replica decided on the same read
        second._shadow(read)
    assert info.value.code == "deployment_changed"
    assert second.run_once() == []  # nothing active any more
    after = service.current("triage")
    assert after.state.value == "rolled_back" and after.weights[stable] == 100
    events = store.deployments.history(after.id)
    decided = [e for e in events if e.actor == "controller"]
    assert [e.action for e in decided] == ["rolled_back"]
    table = {m["name"]: m for m in decided[0].evidence["judgement"]["metrics"]}
    assert table["error"]["outcome"] == "high" and table["error"]["critical"]
    assert "failed in shadow" in (decided[0].reason or "")
    audit = [a for a in store.audit.list(limit=50) if a.action == "deployment.rolled_back"]
    assert len(audit) == 1 and audit[0].actor == "controller"
    assert store.pipelines.resolve_label("triage", "production") == stable


def test_a_passing_candidate_with_then_canary_becomes_a_canary(
    service: DeploymentService, store: Store, versions: tuple[str, str]
) -> None:
    stable, candidate = versions
    args = plan_args(SHADOW | {"then": "canary", "steps": "20,100"})
    started = service.start("triage", candidate, args, "cli:ann")
    assert started.then == "canary" and service.current("triage").then == "canary"
    write_runs(store, started, "stable", stable, 120, 0.0)
    write_runs(store, started, "shadow", candidate, 60, 0.0)
    rounds = []
    for _ in range(6):
        time.sleep(0.06)
        rounds += controller(store).run_once()
        if service.current("triage").strategy == Strategy.CANARY:
            break
    after = service.current("triage")
    assert after.strategy == Strategy.CANARY, rounds
    assert after.weights == {candidate: 20.0, stable: 80.0}
    actions = [e.action for e in store.deployments.history(after.id)]
    assert actions == ["created", "started", "canary_started"]


@pytest.mark.parametrize(
    ("args", "code"),
    [
        ({"strategy": "shadow", "mirror": 10, "then": "promote"}, "deployment_then_invalid"),
        ({"strategy": "canary", "then": "canary"}, "deployment_then_invalid"),
        ({"strategy": "blue-green", "then": "canary"}, "deployment_then_invalid"),
    ],
)
def test_an_invalid_follow_up_is_refused(
    service: DeploymentService,
    store: Store,
    versions: tuple[str, str],
    args: dict[str, Any],
    code: str,
) -> None:
    _, candidate = versions
    found = refused(store, lambda: service.start("triage", candidate, plan_args(args), "a"))
    assert found.code == code and found.status == 422
    assert "then" in found.message
