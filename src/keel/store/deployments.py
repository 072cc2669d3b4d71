"""Deployments, their history and shadowed pairs.

Every change is one transaction: the conditional update of the deployment row (it must still
be at the revision the caller read), its history event with the evidence, its audit entry
and, for a promotion or a rollback after one, the ``production`` label move. A second active
deployment on one endpoint breaks the unique ``active_pipeline`` constraint and is refused
as a conflict; nothing of it is stored.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import IntegrityError

from keel.core.errors import ConflictError, NotFoundError
from keel.deploy.model import Deployment, State, StickyKey, Strategy
from keel.store.pipelines import move_label
from keel.store.schema import (
    audit_log,
    deployment_events,
    deployment_pairs,
    deployments,
    feedback,
    spans,
    traces,
)

PRODUCTION = "production"
# Span attributes the request path writes (see keel.deploy.router, keel.guardrails.stage).
DEPLOYMENT_ATTR = "keel.deploy.id"
ROLE_ATTR = "keel.deploy.role"
FIRED_ATTR = "keel.guardrail.fired"
TTFT_ATTR = "keel.ttft_ms"  # set on streamed runs (keel.core.tracing.TTFT_MS)
UNIT_ATTR = "keel.deploy.unit"  # a sticky request's pseudonymous user id
_CHUNK = 500
# Postgres NOTIFY channel: every committed change wakes the replicas listening on it.
NOTIFY_CHANNEL = "keel_deployments"


@dataclass(frozen=True, slots=True)
class DeploymentEvent:
    id: int
    deployment_id: str
    at: datetime
    actor: str
    action: str
    from_state: str | None
    to_state: str
    weights: dict[str, float]
    reason: str | None
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "deployment_id": self.deployment_id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "from_state": self.from_state,
            "to_state": self.to_state,
            "weights": self.weights,
            "reason": self.reason,
            "evidence": self.evidence,
        }


@dataclass(frozen=True, slots=True)
class Pair:
    """One shadowed request: stable's answer and the candidate's to the same input."""

    deployment_id: str
    pair_id: str
    at: datetime
    baseline_trace_id: str | None = None
    candidate_trace_id: str | None = None
    candidate_version: str | None = None  # None on pairs stored before deploy_2
    baseline_score: float | None = None
    candidate_score: float | None = None
    baseline_latency_ms: float | None = None
    candidate_latency_ms: float | None = None
    candidate_error: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """One request a deployment routed, as its trace recorded it."""

    trace_id: str
    role: str  # stable | candidate | shadow
    version: str | None  # the pipeline version that answered
    latency_ms: float
    error: bool
    guardrail: bool  # blocked, or any guardrail rule fired
    thumbs: int = 0  # thumbs feedback given on the request's answer
    thumbs_down: int = 0
    ttft_ms: float | None = None  # time to first token, when the request streamed
    unit: str | None = None  # the sticky user (pseudonymous) the request was assigned by


def _config(d: Deployment) -> dict[str, Any]:
    return {
        "steps": list(d.steps),
        "interval_s": d.interval_s,
        "mirror": d.mirror,
        "sticky": str(d.sticky) if d.sticky else None,
        "evaluator": d.evaluator,
        "min_samples": d.min_samples,
        "salt": d.salt,
        "extra": d.extra,
        "retired": list(d.retired),
        "then": d.then,
    }


def _values(d: Deployment) -> dict[str, Any]:
    return {
        "pipeline": d.pipeline,
        "active_pipeline": d.pipeline if d.active else None,
        "strategy": d.strategy.value,
        "state": d.state.value,
        "stable": d.stable,
        "candidate": d.candidate,
        "candidates": list(d.candidates),
        "weights": d.weights,
        "config": _config(d),
        "step_index": d.step_index,
        "step_started_at": d.step_started_at,
        "failed_checks": d.failed_checks,
        "revision": d.revision,
        "reason": d.reason,
        "updated_at": d.updated_at,
    }


def _deployment(row: Row[Any]) -> Deployment:
    config = row.config
    sticky = config.get("sticky")
    return Deployment(
        id=row.id,
        pipeline=row.pipeline,
        strategy=Strategy(row.strategy),
        state=State(row.state),
        stable=row.stable,
        candidates=tuple(row.candidates or (row.candidate,)),
        weights={k: float(v) for k, v in row.weights.items()},
        salt=config["salt"],
        created_at=row.created_at,
        updated_at=row.updated_at,
        step_started_at=row.step_started_at,
        steps=tuple(float(s) for s in config["steps"]),
        step_index=row.step_index,
        interval_s=float(config["interval_s"]),
        mirror=float(config["mirror"]),
        sticky=StickyKey.parse(sticky) if sticky else None,
        evaluator=config.get("evaluator"),
        min_samples=config.get("min_samples"),
        failed_checks=row.failed_checks,
        revision=row.revision,
        created_by=row.created_by,
        reason=row.reason,
        extra=dict(config.get("extra") or {}),
        retired=tuple(config.get("retired") or ()),
        then=config.get("then"),
    )


def _event(row: Row[Any]) -> DeploymentEvent:
    return DeploymentEvent(
        id=row.id,
        deployment_id=row.deployment_id,
        at=row.at,
        actor=row.actor,
        action=row.action,
        from_state=row.from_state,
        to_state=row.to_state,
        weights=dict(row.weights),
        reason=row.reason,
        evidence=dict(row.evidence or {}),
    )


class DeploymentRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(self, deployment: Deployment, actor: str) -> Deployment:
        """Store a new deployment; a conflict if its endpoint already has an active one."""
        values = _values(deployment) | {
            "id": deployment.id,
            "created_at": deployment.created_at,
            "created_by": deployment.created_by,
        }
        try:
            with self._engine.begin() as conn:
                conn.execute(sa.insert(deployments), values)
                _record(conn, None, deployment, actor, "created", {})
        except IntegrityError as exc:
            running = self.active(deployment.pipeline)
            raise ConflictError(
                f"pipeline {deployment.pipeline!r} already has an active deployment"
                + (f" ({running.id}, {running.state.value})" if running else "")
                + "; promote, roll back or wait for it first",
                code="deployment_active",
                pipeline=deployment.pipeline,
                deployment_id=running.id if running else None,
            ) from exc
        return deployment

    def apply(
        self,
        before: Deployment,
        after: Deployment,
        actor: str,
        action: str,
        evidence: dict[str, Any] | None = None,
        *,
        production: str | None = None,
        record: bool = True,
    ) -> Deployment:
        """Replace ``before`` with ``after`` if nobody changed it meanwhile; record why.

        ``production`` moves the pipeline's production label in the same transaction;
        ``record=False`` skips the history and audit entries (controller bookkeeping).
        """
        with self._engine.begin() as conn:
            updated = conn.execute(
                sa.update(deployments)
                .where(deployments.c.id == before.id, deployments.c.revision == before.revision)
                .values(**_values(after))
            )
            if updated.rowcount != 1:
                raise ConflictError(
                    f"deployment {before.id} changed while this request was deciding; "
                    "read its status and try again",
                    code="deployment_changed",
                )
            if production is not None:
                move_label(conn, after.pipeline, PRODUCTION, production)
            if record:
                _record(conn, before, after, actor, action, evidence or {})
            else:
                _notify(conn, after)
        return after

    def get(self, deployment_id: str) -> Deployment:
        query = sa.select(deployments).where(deployments.c.id == deployment_id)
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise NotFoundError(f"no deployment {deployment_id!r}", code="deployment_not_found")
        return _deployment(row)

    def active(self, pipeline: str) -> Deployment | None:
        query = sa.select(deployments).where(deployments.c.active_pipeline == pipeline)
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return _deployment(row) if row is not None else None

    def all_active(self) -> builtins.list[Deployment]:
        query = sa.select(deployments).where(deployments.c.active_pipeline.is_not(None))
        with self._engine.connect() as conn:
            return [_deployment(row) for row in conn.execute(query)]

    def list(self, pipeline: str | None = None, limit: int = 50) -> builtins.list[Deployment]:
        """Newest first."""
        query = sa.select(deployments).order_by(
            deployments.c.created_at.desc(), deployments.c.id.desc()
        )
        if pipeline is not None:
            query = query.where(deployments.c.pipeline == pipeline)
        with self._engine.connect() as conn:
            return [_deployment(row) for row in conn.execute(query.limit(limit))]

    def history(self, deployment_id: str) -> builtins.list[DeploymentEvent]:
        """Every transition of one deployment, oldest first."""
        query = (
            sa.select(deployment_events)
            .where(deployment_events.c.deployment_id == deployment_id)
            .order_by(deployment_events.c.id)
        )
        with self._engine.connect() as conn:
            return [_event(row) for row in conn.execute(query)]

    def outcomes(self, deployment: Deployment, since: datetime) -> builtins.list[Outcome]:
        """Requests the deployment routed since ``since``, from their stored traces."""
        since_ns = int(since.timestamp() * 1e9)
        with self._engine.connect() as conn:
            return _outcomes(conn, deployment, since_ns)

    def add_pairs(self, pairs: builtins.list[Pair]) -> None:
        if not pairs:
            return
        rows = [{key: getattr(p, key) for key in Pair.__slots__} for p in pairs]
        with self._engine.begin() as conn:
            conn.execute(sa.insert(deployment_pairs), rows)

    def pairs(self, deployment_id: str, since: datetime | None = None) -> builtins.list[Pair]:
        t = deployment_pairs
        query = sa.select(t).where(t.c.deployment_id == deployment_id).order_by(t.c.id)
        if since is not None:
            query = query.where(t.c.at >= since)
        with self._engine.connect() as conn:
            return [
                Pair(**{key: getattr(r, key) for key in Pair.__slots__})
                for r in conn.execute(query)
            ]


def _outcomes(conn: Connection, deployment: Deployment, since_ns: int) -> builtins.list[Outcome]:
    t, s = traces, spans
    roots = conn.execute(
        sa.select(
            t.c.trace_id,
            t.c.pipeline_version,
            t.c.status,
            t.c.error_code,
            t.c.start_ns,
            t.c.end_ns,
            s.c.attributes,
        )
        .join(
            s, sa.and_(s.c.trace_id == t.c.trace_id, s.c.name == t.c.name, s.c.layer == "pipeline")
        )
        .where(t.c.pipeline == deployment.pipeline, t.c.start_ns >= since_ns)
    ).all()
    mine = [r for r in roots if (r.attributes or {}).get(DEPLOYMENT_ATTR) == deployment.id]
    fired: set[str] = set()
    ids = [r.trace_id for r in mine]
    for start in range(0, len(ids), _CHUNK):
        rows = conn.execute(
            sa.select(s.c.trace_id, s.c.attributes).where(
                s.c.trace_id.in_(ids[start : start + _CHUNK]), s.c.layer.like("guardrail%")
            )
        )
        fired.update(r.trace_id for r in rows if (r.attributes or {}).get(FIRED_ATTR))
    thumbs = _thumbs(conn, ids)
    return [
        Outcome(
            trace_id=r.trace_id,
            role=str(r.attributes.get(ROLE_ATTR)),
            version=r.pipeline_version,
            latency_ms=(r.end_ns - r.start_ns) / 1e6,
            error=r.status == "error",
            guardrail=r.trace_id in fired or r.error_code == "guardrail_blocked",
            thumbs=len(thumbs.get(r.trace_id, ())),
            thumbs_down=thumbs.get(r.trace_id, []).count("down"),
            ttft_ms=_number(r.attributes.get(TTFT_ATTR)),
            unit=r.attributes.get(UNIT_ATTR),
        )
        for r in mine
    ]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _thumbs(conn: Connection, ids: builtins.list[str]) -> dict[str, builtins.list[str]]:
    """Thumbs given on these traces' answers, per trace (several users may rate one)."""
    found: dict[str, builtins.list[str]] = {}
    f = feedback
    for start in range(0, len(ids), _CHUNK):
        rows = conn.execute(
            sa.select(f.c.trace_id, f.c.value).where(
                f.c.trace_id.in_(ids[start : start + _CHUNK]), f.c.kind == "thumbs"
            )
        )
        for row in rows:
            found.setdefault(row.trace_id, []).append(str(row.value))
    return found


def _notify(conn: Connection, after: Deployment) -> None:
    if conn.dialect.name == "postgresql":  # delivered to listeners when the change commits
        conn.execute(
            sa.text("SELECT pg_notify(:channel, :payload)"),
            {"channel": NOTIFY_CHANNEL, "payload": after.pipeline},
        )


def _record(
    conn: Connection,
    before: Deployment | None,
    after: Deployment,
    actor: str,
    action: str,
    evidence: dict[str, Any],
) -> None:
    at = datetime.now(UTC)
    conn.execute(
        sa.insert(deployment_events),
        {
            "deployment_id": after.id,
            "at": at,
            "actor": actor,
            "action": action,
            "from_state": before.state.value if before else None,
            "to_state": after.state.value,
            "weights": after.weights,
            "reason": after.reason,
            "evidence": evidence,
        },
    )
    _notify(conn, after)
    conn.execute(
        sa.insert(audit_log),
        {
            "at": at,
            "actor": actor,
            "action": f"deployment.{action}",
            "target": f"{after.pipeline}/{after.id}",
            "details": {
                "from_state": before.state.value if before else None,
                "to_state": after.state.value,
                "weights": after.weights,
                "reason": after.reason,
            },
        },
    )
