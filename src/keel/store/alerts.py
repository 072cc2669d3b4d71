"""Alert episodes: opened once per key while firing, touched while they keep firing, resolved.

Replicas evaluating the same conditions race safely: ``open_key`` is unique and set only
while an episode fires, so exactly one replica opens it (and notifies), and the conditional
update in :meth:`AlertRepository.resolve` lets exactly one replica resolve it.
"""

from __future__ import annotations

import builtins
import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, Row
from sqlalchemy.exc import IntegrityError

from keel.core.errors import InvalidInputError, NotFoundError
from keel.store.schema import alerts

FIRING = "firing"
RESOLVED = "resolved"
STATUSES = (FIRING, RESOLVED)


@dataclass(frozen=True, slots=True)
class Alert:
    key: str
    kind: str
    severity: str
    summary: str
    started_at: datetime
    last_seen_at: datetime
    pipeline: str | None = None
    status: str = FIRING
    details: dict[str, Any] = field(default_factory=dict)
    resolved_at: datetime | None = None
    notifications: builtins.list[dict[str, Any]] = field(default_factory=list)
    id: str = field(default_factory=lambda: secrets.token_hex(8))

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "key": self.key,
            "kind": self.kind,
            "pipeline": self.pipeline,
            "severity": self.severity,
            "status": self.status,
            "summary": self.summary,
            "details": self.details,
            "started_at": self.started_at.isoformat(),
            "last_seen_at": self.last_seen_at.isoformat(),
            "resolved_at": self.resolved_at.isoformat() if self.resolved_at else None,
            "notifications": self.notifications,
        }


_FIELDS = tuple(Alert.__dataclass_fields__)


def _alert(row: Row[Any]) -> Alert:
    return Alert(**{name: getattr(row, name) for name in _FIELDS})


class AlertRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def open(self, alert: Alert) -> Alert | None:
        """Store a new firing episode; None when one with this key is already open."""
        values = {name: getattr(alert, name) for name in _FIELDS}
        values["open_key"] = alert.key
        try:
            with self._engine.begin() as conn:
                conn.execute(sa.insert(alerts), values)
        except IntegrityError:
            return None
        return alert

    def open_alerts(self) -> builtins.list[Alert]:
        query = sa.select(alerts).where(alerts.c.status == FIRING).order_by(alerts.c.started_at)
        with self._engine.connect() as conn:
            return [_alert(row) for row in conn.execute(query)]

    def get_open(self, key: str) -> Alert | None:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(alerts).where(alerts.c.open_key == key)).first()
        return _alert(row) if row is not None else None

    def touch(self, alert: Alert, at: datetime, summary: str, details: dict[str, Any]) -> Alert:
        """Record that a firing episode is still firing (no new episode, no notification)."""
        values = {"last_seen_at": at, "summary": summary, "details": details}
        with self._engine.begin() as conn:
            conn.execute(sa.update(alerts).where(alerts.c.id == alert.id).values(values))
        return replace(alert, last_seen_at=at, summary=summary, details=details)

    def resolve(self, alert: Alert, at: datetime) -> Alert | None:
        """Close a firing episode; None when another replica closed it first."""
        with self._engine.begin() as conn:
            result = conn.execute(
                sa.update(alerts)
                .where(alerts.c.id == alert.id, alerts.c.status == FIRING)
                .values(status=RESOLVED, resolved_at=at, open_key=None)
            )
        if result.rowcount != 1:
            return None
        return replace(alert, status=RESOLVED, resolved_at=at)

    def add_notification(self, alert_id: str, record: dict[str, Any]) -> None:
        with self._engine.begin() as conn:
            current = conn.execute(
                sa.select(alerts.c.notifications).where(alerts.c.id == alert_id)
            ).scalar_one()
            conn.execute(
                sa.update(alerts)
                .where(alerts.c.id == alert_id)
                .values(notifications=[*current, record])
            )

    def get(self, alert_id: str) -> Alert:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(alerts).where(alerts.c.id == alert_id)).first()
        if row is None:
            msg = f"No alert {alert_id!r}; `keel alerts list --status all` shows the history"
            raise NotFoundError(msg, code="alert_not_found", alert=alert_id)
        return _alert(row)

    def list(
        self,
        *,
        status: str | None = None,
        pipeline: str | None = None,
        kind: str | None = None,
        limit: int = 100,
    ) -> builtins.list[Alert]:
        """Episodes, newest first."""
        if status is not None and status not in STATUSES:
            msg = f"unknown alert status {status!r}; use {', '.join(STATUSES)} or leave it out"
            raise InvalidInputError(msg, code="alert_status_invalid", status=status)
        if limit < 1:
            raise InvalidInputError(f"limit must be at least 1, got {limit}", code="limit_invalid")
        query = (
            sa.select(alerts).order_by(alerts.c.started_at.desc(), alerts.c.id.desc()).limit(limit)
        )
        if status is not None:
            query = query.where(alerts.c.status == status)
        if pipeline is not None:
            query = query.where(alerts.c.pipeline == pipeline)
        if kind is not None:
            query = query.where(alerts.c.kind == kind)
        with self._engine.connect() as conn:
            return [_alert(row) for row in conn.execute(query)]
