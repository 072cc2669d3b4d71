"""Feedback on traces and the queue of shared conversations waiting for human approval.

A feedback row and its queue item (when shared) are written in one transaction, so a
duplicate or a failure stores neither. Approving a queue item writes the next version of the
target dataset, marks the item and audits the reviewer in one transaction as well.
"""

from __future__ import annotations

import builtins
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import IntegrityError

from keel.core.dataset import DatasetItem
from keel.core.errors import ConflictError, InvalidInputError, NotFoundError
from keel.store.datasets import append_version
from keel.store.schema import audit_log, feedback, feedback_queue

QUEUE_STATUSES = ("pending", "filtered", "approved", "rejected")


@dataclass(frozen=True, slots=True)
class FeedbackRecord:
    id: str
    trace_id: str
    pipeline: str | None
    pipeline_version: str | None
    kind: str
    value: Any
    comment: str | None
    user_id: str
    caller: str
    end_user: str | None
    overrides: bool | None
    automated: Any
    share: bool
    created_at: datetime

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["feedback_id"] = body.pop("id")
        body["version"] = body.pop("pipeline_version")
        body["created_at"] = self.created_at.isoformat()
        return body


@dataclass(frozen=True, slots=True)
class QueueItem:
    id: str
    feedback_id: str
    trace_id: str
    pipeline: str | None
    pipeline_version: str | None
    input: Any
    output: Any
    label: str | None
    expected: Any
    comment: str | None
    status: str
    flags: builtins.list[str]
    pii: builtins.list[str]
    submitted_by: str
    created_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    note: str | None = None
    dataset: str | None = None
    dataset_version: int | None = None

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["queue_id"] = body.pop("id")
        body["version"] = body.pop("pipeline_version")
        body["created_at"] = self.created_at.isoformat()
        body["decided_at"] = self.decided_at.isoformat() if self.decided_at else None
        return body


@dataclass(frozen=True, slots=True)
class Approval:
    """What approving a queue item adds: the dataset item, where, and who approved it."""

    dataset: str
    item: DatasetItem
    reviewer: str
    note: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _record(row: Row[Any]) -> FeedbackRecord:
    return FeedbackRecord(**{key: getattr(row, key) for key in FeedbackRecord.__slots__})


def _queue_item(row: Row[Any]) -> QueueItem:
    return QueueItem(**{key: getattr(row, key) for key in QueueItem.__slots__})


class FeedbackRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, record: FeedbackRecord, queued: QueueItem | None = None) -> FeedbackRecord:
        """Store feedback (and its queue item); the same trace, user and kind twice is a 409."""
        try:
            with self._engine.begin() as conn:
                conn.execute(sa.insert(feedback), asdict(record))
                if queued is not None:
                    conn.execute(sa.insert(feedback_queue), asdict(queued))
        except IntegrityError as exc:
            msg = (
                f"{record.user_id} already gave {record.kind} feedback on trace "
                f"{record.trace_id}; feedback is recorded once per trace, user and kind"
            )
            raise ConflictError(
                msg, code="feedback_duplicate", trace_id=record.trace_id, kind=record.kind
            ) from exc
        return record

    def get(self, feedback_id: str) -> FeedbackRecord:
        with self._engine.connect() as conn:
            row = conn.execute(sa.select(feedback).where(feedback.c.id == feedback_id)).first()
        if row is None:
            raise NotFoundError(f"no feedback {feedback_id!r}", code="feedback_not_found")
        return _record(row)

    def list(
        self,
        *,
        trace_id: str | None = None,
        pipeline: str | None = None,
        user_id: str | None = None,
        kind: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> builtins.list[FeedbackRecord]:
        """Feedback, newest first."""
        f = feedback.c
        query = sa.select(feedback).order_by(f.created_at.desc(), f.id).limit(limit)
        for column, value in (
            (f.trace_id, trace_id),
            (f.pipeline, pipeline),
            (f.user_id, user_id),
            (f.kind, kind),
        ):
            if value is not None:
                query = query.where(column == value)
        if since is not None:
            query = query.where(f.created_at >= since)
        with self._engine.connect() as conn:
            return [_record(row) for row in conn.execute(query)]

    def count_corrections(self, user_id: str, since: datetime) -> int:
        f = feedback.c
        query = sa.select(sa.func.count()).where(
            f.user_id == user_id, f.kind == "correction", f.created_at >= since
        )
        with self._engine.connect() as conn:
            return int(conn.scalar(query) or 0)

    def judgements(
        self, *, pipeline: str | None = None, since: datetime | None = None
    ) -> builtins.list[tuple[str, str, bool]]:
        """``(user, trace, overrode)`` for every thumbs, score and correction."""
        f = feedback.c
        query = sa.select(f.user_id, f.trace_id, f.kind, f.overrides).where(
            f.kind.in_(("thumbs", "score", "correction"))
        )
        if pipeline is not None:
            query = query.where(f.pipeline == pipeline)
        if since is not None:
            query = query.where(f.created_at >= since)
        with self._engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            (r.user_id, r.trace_id, r.kind == "correction" and r.overrides is not False)
            for r in rows
        ]

    # --- the queue of shared conversations ---------------------------------------------------

    def queue(
        self, *, status: str | None = "pending", pipeline: str | None = None, limit: int = 100
    ) -> builtins.list[QueueItem]:
        if status is not None and status not in QUEUE_STATUSES:
            msg = f"unknown queue status {status!r}; use one of {', '.join(QUEUE_STATUSES)}"
            raise InvalidInputError(msg, code="queue_status_invalid")
        q = feedback_queue.c
        query = sa.select(feedback_queue).order_by(q.created_at, q.id).limit(limit)
        if status is not None:
            query = query.where(q.status == status)
        if pipeline is not None:
            query = query.where(q.pipeline == pipeline)
        with self._engine.connect() as conn:
            return [_queue_item(row) for row in conn.execute(query)]

    def queued(self, queue_id: str) -> QueueItem:
        with self._engine.connect() as conn:
            return _get_queued(conn, queue_id)

    def reject(self, queue_id: str, reviewer: str, note: str | None = None) -> QueueItem:
        with self._engine.begin() as conn:
            item = _claim(conn, queue_id, reviewer, ("pending", "filtered"), "rejected", note)
            _audit(conn, reviewer, "feedback.reject", item, {"note": note})
            return _get_queued(conn, queue_id)

    def approve(self, queue_id: str, approval: Approval) -> QueueItem:
        """Add the item to the next version of the dataset, mark it approved, audit it."""
        try:
            with self._engine.begin() as conn:
                item = _claim(
                    conn, queue_id, approval.reviewer, ("pending",), "approved", approval.note
                )
                version = append_version(
                    conn,
                    approval.dataset,
                    [approval.item],
                    source=f"feedback:{item.id}",
                    created_by=approval.reviewer,
                )
                conn.execute(
                    sa.update(feedback_queue)
                    .where(feedback_queue.c.id == item.id)
                    .values(dataset=approval.dataset, dataset_version=version)
                )
                details = {"dataset": f"{approval.dataset}@{version}", "note": approval.note}
                _audit(conn, approval.reviewer, "feedback.approve", item, details | approval.extra)
                return _get_queued(conn, queue_id)
        except IntegrityError as exc:
            msg = f"dataset {approval.dataset!r} changed at the same time; retry the approval"
            raise ConflictError(msg, code="dataset_version_race") from exc


def _get_queued(conn: Connection, queue_id: str) -> QueueItem:
    row = conn.execute(sa.select(feedback_queue).where(feedback_queue.c.id == queue_id)).first()
    if row is None:
        msg = f"no queued feedback {queue_id!r}; `keel feedback queue` lists them"
        raise NotFoundError(msg, code="queue_item_not_found")
    return _queue_item(row)


def _claim(
    conn: Connection,
    queue_id: str,
    reviewer: str,
    allowed: tuple[str, ...],
    status: str,
    note: str | None,
) -> QueueItem:
    if not reviewer.strip():
        raise InvalidInputError("a decision needs the reviewer's identity", code="reviewer_missing")
    item = _get_queued(conn, queue_id)
    updated = conn.execute(
        sa.update(feedback_queue)
        .where(feedback_queue.c.id == queue_id, feedback_queue.c.status.in_(allowed))
        .values(status=status, decided_by=reviewer, decided_at=datetime.now(UTC), note=note)
    )
    if updated.rowcount != 1:
        if item.status == "filtered":
            msg = (
                f"queued feedback {queue_id} was flagged by the abuse filter "
                f"({', '.join(item.flags)}); it can only be rejected"
            )
            raise ConflictError(msg, code="queue_item_flagged", flags=item.flags)
        msg = f"queued feedback {queue_id} was already decided ({item.status} by {item.decided_by})"
        raise ConflictError(msg, code="queue_item_decided")
    return item


def _audit(
    conn: Connection, actor: str, action: str, item: QueueItem, details: dict[str, Any]
) -> None:
    body = {"trace_id": item.trace_id, "pipeline": item.pipeline, **details}
    conn.execute(
        sa.insert(audit_log),
        {
            "at": datetime.now(UTC),
            "actor": actor,
            "action": action,
            "target": item.id,
            "details": body,
        },
    )
