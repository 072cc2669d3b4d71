"""Several candidates in the store, on SQLite and Postgres, and the upgrade that carries
one-candidate deployments stored before them over without loss."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command

from keel.catalog import PipelineCatalog
from keel.core.errors import KeelError
from keel.deploy.model import State
from keel.deploy.service import DeploymentService
from keel.store import Store
from keel.store.deployments import Pair
from keel.store.migrate import alembic_config, upgrade
from tests.deploy.conftest import spec

from .test_repository import snapshot


@pytest.fixture
def three(store: Store) -> tuple[str, str, str]:
    """(stable, first candidate, second candidate); stable is labelled production."""
    catalog = PipelineCatalog(store, label_ttl=0)
    found = tuple(catalog.push(spec(note=f"v{i}")).version for i in (1, 2, 3))
    catalog.set_label("triage", "production", found[0])
    return found  # type: ignore[return-value]


def test_several_candidates_are_stored_and_moved(
    service: DeploymentService, store: Store, three: tuple[str, str, str]
) -> None:
    stable, first, second = three
    args = {"strategy": "ab", "split": (34.0, 33.0, 33.0)}
    d = service.start("triage", [first[:10], second[:10]], args, "cli:ann")
    assert store.deployments.active("triage") == d
    assert d.candidates == (first, second) and d.stable == stable
    assert d.weights == {stable: 34.0, first: 33.0, second: 33.0}
    # one candidate rolled back on its own: its share returns to stable, the other stays
    fewer = service.rollback("triage", "cli:ann", version=first[:8])
    assert fewer.state == State.PROGRESSING and fewer.retired == (first,)
    assert fewer.weights == {stable: 67.0, first: 0.0, second: 33.0}
    assert store.deployments.active("triage") == fewer
    promoted = service.promote("triage", "cli:ann", version=second)
    assert promoted.winner == second
    assert store.pipelines.resolve_label("triage", "production") == second
    actions = [e.action for e in store.deployments.history(d.id)]
    assert actions == ["created", "started", "candidate_rolled_back", "promoted"]


def test_invalid_requests_on_several_candidates_change_nothing(
    service: DeploymentService, store: Store, three: tuple[str, str, str]
) -> None:
    stable, first, second = three
    service.start("triage", [first, second], {"strategy": "ab"}, "a")
    cases = {
        "deployment_version_required": lambda: service.promote("triage", "a"),
        "deployment_version_invalid": lambda: service.promote("triage", "a", version="ffff"),
        "deployment_weights_invalid": lambda: service.set_weights(
            "triage", {stable: 50, first: 30, second: 30}, "a"
        ),
    }
    for code, call in cases.items():
        before = snapshot(store)
        with pytest.raises(KeelError) as info:
            call()
        assert info.value.code == code and snapshot(store) == before


def _old_shape_tables() -> tuple[sa.TableClause, sa.TableClause]:
    """The deployment tables as deploy_1 created them (one candidate, no pair version)."""
    deployments = sa.table(
        "deployments",
        *(sa.column(c) for c in ("id", "pipeline", "active_pipeline", "strategy", "state")),
        *(sa.column(c) for c in ("stable", "candidate", "step_index", "failed_checks")),
        *(sa.column(c) for c in ("revision", "reason", "created_by")),
        sa.column("weights", sa.JSON),
        sa.column("config", sa.JSON),
        *(sa.column(c, sa.DateTime(timezone=True)) for c in ("step_started_at", "created_at")),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    pairs = sa.table(
        "deployment_pairs",
        *(sa.column(c) for c in ("deployment_id", "pair_id", "baseline_score")),
        sa.column("candidate_score"),
        sa.column("at", sa.DateTime(timezone=True)),
    )
    return deployments, pairs


def test_upgrade_keeps_one_candidate_deployments(fresh_url: str) -> None:
    store = Store.open(fresh_url, migrate=False)
    try:
        upgrade(store.engine, "deploy_1")
        deployments, pairs = _old_shape_tables()
        now = datetime.now(UTC).replace(tzinfo=None)
        config = {
            "steps": [10, 100], "interval_s": 60.0, "mirror": 20.0, "sticky": "header:X-U",
            "evaluator": None, "min_samples": None, "salt": "pepper",
            "extra": {"rollout": {"step_index": 0, "started_at": 1.0, "step_started_at": 1.0}},
        }  # fmt: skip
        with store.engine.begin() as conn:
            conn.execute(
                sa.insert(deployments),
                {
                    "id": "old1", "pipeline": "triage", "active_pipeline": "triage",
                    "strategy": "canary", "state": "progressing", "stable": "s" * 64,
                    "candidate": "c" * 64, "weights": {"c" * 64: 10.0, "s" * 64: 90.0},
                    "config": config, "step_index": 0, "failed_checks": 1, "revision": 3,
                    "reason": "started", "created_by": "cli:old", "step_started_at": now,
                    "created_at": now, "updated_at": now,
                },
            )  # fmt: skip
            conn.execute(
                sa.insert(pairs),
                {"deployment_id": "old1", "pair_id": "p1", "baseline_score": 0.5,
                 "candidate_score": 0.75, "at": now},
            )  # fmt: skip
        store.upgrade()
        found = store.deployments.get("old1")
        assert found.candidates == ("c" * 64,) and found.candidate == "c" * 64
        assert found.retired == () and found.live == ("c" * 64,)
        assert found.weights == {"c" * 64: 10.0, "s" * 64: 90.0}
        assert (found.revision, found.failed_checks, found.mirror) == (3, 1, 20.0)
        assert str(found.sticky) == "header:X-U" and found.salt == "pepper"
        assert store.deployments.active("triage") == found
        [pair] = store.deployments.pairs("old1")
        assert pair.candidate_version == "c" * 64 and isinstance(pair, Pair)
        # and the upgraded deployment moves like any other
        ended = DeploymentService(store).rollback("triage", "a")
        assert ended.state == State.ROLLED_BACK
        assert store.deployments.get("old1").weights == {"c" * 64: 0.0, "s" * 64: 100.0}
    finally:
        store.close()


def test_downgrade_drops_the_columns_and_keeps_the_rows(fresh_url: str) -> None:
    store = Store.open(fresh_url)
    try:
        catalog = PipelineCatalog(store, label_ttl=0)
        found = [catalog.push(spec(note=f"v{i}")).version for i in (1, 2, 3)]
        catalog.set_label("triage", "production", found[0])
        DeploymentService(store).start("triage", found[1:], {"strategy": "ab"}, "a")
        with store.engine.connect() as conn:
            command.downgrade(alembic_config(conn), "deploy_1")
            conn.commit()
        inspector = sa.inspect(store.engine)
        assert "candidates" not in {c["name"] for c in inspector.get_columns("deployments")}
        with store.engine.connect() as conn:
            row = conn.execute(sa.text("SELECT candidate, state FROM deployments")).one()
        assert tuple(row) == (found[1], "progressing")  # the first candidate remains
        store.upgrade()
        assert store.deployments.active("triage").candidates == (found[1],)  # type: ignore[union-attr]
    finally:
        store.close()
