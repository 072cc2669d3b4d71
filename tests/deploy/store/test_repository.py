"""Deployments in the store, on SQLite and Postgres: one active rollout per endpoint
(refused atomically, even under a race), optimistic updates, history and audit."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from keel.core.errors import ConflictError
from keel.deploy.service import DeploymentService
from keel.store import Store


def snapshot(store: Store, pipeline: str = "triage") -> dict[str, Any]:
    """Everything a refused request must leave untouched."""
    rows = store.deployments.list(pipeline)
    return {
        "deployments": [d.to_dict() for d in rows],
        "events": [[e.to_dict() for e in store.deployments.history(d.id)] for d in rows],
        "production": store.pipelines.labels(pipeline).get("production"),
        "audit": len(store.audit.list(limit=1000)),
    }


def test_start_records_history_and_audit(
    service: DeploymentService, store: Store, versions: tuple[str, str]
) -> None:
    stable, candidate = versions
    d = service.start("triage", candidate[:10], {"steps": (10.0, 100.0)}, "cli:alice")
    assert (d.stable, d.candidate, d.state.value) == (stable, candidate, "progressing")
    assert d.weights == {candidate: 10.0, stable: 90.0}
    assert store.deployments.active("triage") == d
    events = store.deployments.history(d.id)
    assert [(e.action, e.from_state, e.to_state) for e in events] == [
        ("created", None, "pending"),
        ("started", "pending", "progressing"),
    ]
    audit = store.audit.list()
    assert [a.action for a in audit[:2]] == ["deployment.started", "deployment.created"]
    assert audit[0].actor == "cli:alice"


def test_second_rollout_on_one_endpoint_is_refused(
    service: DeploymentService, store: Store, versions: tuple[str, str]
) -> None:
    _stable, candidate = versions
    service.start("triage", candidate, {}, "a")
    before = snapshot(store)
    with pytest.raises(ConflictError) as info:
        service.start("triage", candidate, {"strategy": "ab"}, "b")  # type: ignore[dict-item]
    assert info.value.code == "deployment_active"
    assert snapshot(store) == before


def test_concurrent_rollouts_race_and_exactly_one_wins(
    store: Store, versions: tuple[str, str]
) -> None:
    _, candidate = versions
    barrier = threading.Barrier(8)

    def attempt(i: int) -> str:
        barrier.wait()
        try:
            DeploymentService(store).start("triage", candidate, {}, f"racer{i}")
        except ConflictError as exc:
            return exc.code
        return "started"

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(attempt, range(8)))
    assert outcomes.count("started") == 1
    assert outcomes.count("deployment_active") == 7
    assert len(store.deployments.list("triage")) == 1


def test_stale_update_is_refused(
    service: DeploymentService, store: Store, versions: tuple[str, str]
) -> None:
    _, candidate = versions
    d = service.start("triage", candidate, {}, "a")
    service.pause("triage", "b")
    before = snapshot(store)
    with pytest.raises(ConflictError) as info:
        store.deployments.apply(d, d, "c", "weights")  # d is a revision behind
    assert info.value.code == "deployment_changed"
    assert snapshot(store) == before


def test_promote_moves_production_and_rollback_undoes_it(
    service: DeploymentService, store: Store, versions: tuple[str, str]
) -> None:
    stable, candidate = versions
    service.start("triage", candidate, {"strategy": "blue-green"}, "a")  # type: ignore[dict-item]
    assert store.deployments.active("triage").state.value == "pending"  # type: ignore[union-attr]
    promoted = service.promote("triage", "a")
    assert promoted.state.value == "promoted"
    assert store.pipelines.resolve_label("triage", "production") == candidate
    assert store.deployments.active("triage") is None
    back = service.rollback("triage", "a")
    assert back.state.value == "rolled_back"
    assert store.pipelines.resolve_label("triage", "production") == stable
    actions = [e.action for e in store.deployments.history(back.id)]
    assert actions == ["created", "promoted", "rolled_back"]
    with pytest.raises(ConflictError):
        service.rollback("triage", "a")  # nothing left to undo
