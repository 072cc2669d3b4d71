"""The audit log: who did what to which resource, for admin actions."""

from __future__ import annotations

import builtins
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from keel.core.errors import InvalidInputError
from keel.store.schema import audit_log


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One recorded admin action."""

    id: int
    at: datetime
    actor: str
    action: str
    target: str | None
    details: dict[str, Any] = field(default_factory=dict)


class AuditRepository:
    """Appends admin actions and lists them, newest first."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def record(
        self,
        actor: str,
        action: str,
        target: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditEntry:
        """Append one entry, e.g. ``record("key:ops", "label.set", "triage/production", {...})``."""
        at = datetime.now(UTC)
        body = dict(details or {})
        with self._engine.begin() as conn:
            result = conn.execute(
                sa.insert(audit_log).returning(audit_log.c.id),
                {"at": at, "actor": actor, "action": action, "target": target, "details": body},
            )
            entry_id = int(result.scalar_one())
        return AuditEntry(
            id=entry_id, at=at, actor=actor, action=action, target=target, details=body
        )

    def list(self, limit: int = 100) -> builtins.list[AuditEntry]:
        """The most recent ``limit`` entries, newest first."""
        if limit < 1:
            msg = f"limit must be at least 1, got {limit}"
            raise InvalidInputError(msg, code="limit_invalid", limit=limit)
        query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        with self._engine.connect() as conn:
            return [
                AuditEntry(
                    id=row.id,
                    at=row.at,
                    actor=row.actor,
                    action=row.action,
                    target=row.target,
                    details=row.details,
                )
                for row in conn.execute(query)
            ]
