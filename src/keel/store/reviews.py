"""Review items: held answers, the reviewer's decision, and its audit entry in one transaction."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row

from keel.core.errors import ConflictError, InvalidInputError, NotFoundError
from keel.store.schema import audit_log, review_items

Decision = Literal["approve", "edit", "reject"]
STATUSES = ("pending", "approved", "edited", "rejected")
_STATUS_OF: dict[str, str] = {"approve": "approved", "edit": "edited", "reject": "rejected"}


@dataclass(frozen=True, slots=True)
class ReviewItem:
    id: str
    pipeline: str
    pipeline_version: str
    trace_id: str
    request_id: str
    status: str
    reasons: builtins.list[str]
    result: dict[str, Any]
    created_at: datetime
    deadline: datetime
    default_action: str
    webhook: str | None = None
    decided_at: datetime | None = None
    decided_by: str | None = None
    note: str | None = None

    def to_dict(self, *, with_result: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {
            "review_id": self.id,
            "status": self.status,
            "pipeline": self.pipeline,
            "version": self.pipeline_version,
            "trace_id": self.trace_id,
            "request_id": self.request_id,
            "reasons": self.reasons,
            "created_at": self.created_at.isoformat(),
            "deadline": self.deadline.isoformat(),
            "default_action": self.default_action,
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "decided_by": self.decided_by,
            "note": self.note,
        }
        if with_result:
            body["result"] = self.result
        return body


def _item(row: Row[Any]) -> ReviewItem:
    return ReviewItem(**{key: getattr(row, key) for key in ReviewItem.__slots__})


class ReviewRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(self, item: ReviewItem) -> ReviewItem:
        values = {key: getattr(item, key) for key in ReviewItem.__slots__}
        with self._engine.begin() as conn:
            conn.execute(sa.insert(review_items), values)
        return item

    def get(self, review_id: str) -> ReviewItem:
        with self._engine.connect() as conn:
            return _get(conn, review_id)

    def list(
        self, *, status: str | None = None, pipeline: str | None = None, limit: int = 100
    ) -> builtins.list[ReviewItem]:
        if status is not None and status not in STATUSES:
            raise InvalidInputError(
                f"unknown review status {status!r}; use one of {', '.join(STATUSES)}",
                code="review_status_invalid",
            )
        query = sa.select(review_items).order_by(review_items.c.created_at).limit(limit)
        if status:
            query = query.where(review_items.c.status == status)
        if pipeline:
            query = query.where(review_items.c.pipeline == pipeline)
        with self._engine.connect() as conn:
            return [_item(row) for row in conn.execute(query)]

    def decide(
        self,
        review_id: str,
        decision: Decision,
        reviewer: str,
        *,
        result: dict[str, Any] | None = None,
        note: str | None = None,
    ) -> ReviewItem:
        """Apply a decision to a pending item and audit it; a decided item is a conflict."""
        if not reviewer.strip():
            raise InvalidInputError(
                "a decision needs the reviewer's identity", code="reviewer_missing"
            )
        now = datetime.now(UTC)
        values: dict[str, Any] = {
            "status": _STATUS_OF[decision], "decided_at": now, "decided_by": reviewer, "note": note
        }  # fmt: skip
        if result is not None:
            values["result"] = result
        with self._engine.begin() as conn:
            before = _get(conn, review_id)
            updated = conn.execute(
                sa.update(review_items)
                .where(review_items.c.id == before.id, review_items.c.status == "pending")
                .values(**values)
            )
            if updated.rowcount != 1:
                raise ConflictError(
                    f"review {review_id} was already decided ({before.status} by "
                    f"{before.decided_by})",
                    code="review_decided",
                )
            details: dict[str, Any] = {
                "decision": decision,
                "pipeline": before.pipeline,
                "note": note,
            }
            if result is not None:
                details["edited"] = True
            conn.execute(
                sa.insert(audit_log),
                {"at": now, "actor": reviewer, "action": f"review.{decision}",
                 "target": before.id, "details": details},
            )  # fmt: skip
            return _get(conn, before.id)

    def due(self, now: datetime | None = None) -> builtins.list[ReviewItem]:
        """Pending items whose deadline has passed."""
        query = sa.select(review_items).where(
            review_items.c.status == "pending",
            review_items.c.deadline <= (now or datetime.now(UTC)),
        )
        with self._engine.connect() as conn:
            return [_item(row) for row in conn.execute(query)]

    def expire(self, now: datetime | None = None) -> builtins.list[ReviewItem]:
        """Apply each overdue item's default action, audited as ``system:timeout``."""
        done = []
        for item in self.due(now):
            decision: Decision = "approve" if item.default_action == "approve" else "reject"
            try:
                done.append(self.decide(item.id, decision, "system:timeout", note="timed out"))
            except ConflictError:
                continue  # a reviewer (or another replica) decided it meanwhile
        return done


def _get(conn: Connection, review_id: str) -> ReviewItem:
    row = conn.execute(sa.select(review_items).where(review_items.c.id == review_id)).first()
    if row is None:
        raise NotFoundError(f"no review item {review_id!r}", code="review_not_found")
    return _item(row)
