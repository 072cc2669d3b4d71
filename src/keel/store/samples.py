"""Sampled production traces: the review sample reviewers mark, and online evaluator scores."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import IntegrityError

from keel.core.errors import ConflictError, InvalidInputError, NotFoundError
from keel.store.dialects import insert_or_ignore
from keel.store.schema import audit_log, feedback, online_scores, review_samples

Verdict = Literal["correct", "incorrect"]
SAMPLE_STATUSES = ("pending", "correct", "incorrect")


@dataclass(frozen=True, slots=True)
class ReviewSample:
    id: str
    trace_id: str
    pipeline: str
    pipeline_version: str
    input: Any
    result: dict[str, Any]
    status: str
    created_at: datetime
    reviewed_by: str | None = None
    reviewed_at: datetime | None = None
    correction: Any = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["sample_id"] = body.pop("id")
        body["version"] = body.pop("pipeline_version")
        body["created_at"] = self.created_at.isoformat()
        body["reviewed_at"] = self.reviewed_at.isoformat() if self.reviewed_at else None
        return body


@dataclass(frozen=True, slots=True)
class OnlineScore:
    trace_id: str
    metric: str
    pipeline: str
    pipeline_version: str
    evaluator: str
    kind: str
    value: float | None
    created_at: datetime


def _sample(row: Row[Any]) -> ReviewSample:
    return ReviewSample(**{key: getattr(row, key) for key in ReviewSample.__slots__})


class SampleRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, sample: ReviewSample) -> None:
        """Queue a sampled trace for review; a trace already sampled is left as it is."""
        self.add_many([sample])

    def add_many(self, samples: Sequence[ReviewSample]) -> None:
        """Queue sampled traces in one transaction (traces already sampled are skipped)."""
        if not samples:
            return
        with self._engine.begin() as conn:
            conn.execute(
                insert_or_ignore(conn.dialect, review_samples), [asdict(s) for s in samples]
            )

    def get(self, sample_id: str) -> ReviewSample:
        with self._engine.connect() as conn:
            return _get(conn, sample_id)

    def list(
        self,
        *,
        status: str | None = "pending",
        pipeline: str | None = None,
        since: datetime | None = None,
        limit: int = 100,
    ) -> builtins.list[ReviewSample]:
        if status is not None and status not in SAMPLE_STATUSES:
            msg = f"unknown sample status {status!r}; use one of {', '.join(SAMPLE_STATUSES)}"
            raise InvalidInputError(msg, code="sample_status_invalid")
        s = review_samples.c
        query = sa.select(review_samples).order_by(s.created_at, s.id).limit(limit)
        if status is not None:
            query = query.where(s.status == status)
        if pipeline is not None:
            query = query.where(s.pipeline == pipeline)
        if since is not None:
            query = query.where(s.created_at >= since)
        with self._engine.connect() as conn:
            return [_sample(row) for row in conn.execute(query)]

    def verdicts(
        self, pipeline: str, since: datetime, version: str | None = None
    ) -> builtins.list[tuple[str, str]]:
        """``(version, status)`` of every reviewed sample of ``pipeline`` created since."""
        s = review_samples.c
        query = sa.select(s.pipeline_version, s.status).where(
            s.pipeline == pipeline, s.created_at >= since, s.status != "pending"
        )
        if version is not None:
            query = query.where(s.pipeline_version == version)
        with self._engine.connect() as conn:
            return [(row.pipeline_version, row.status) for row in conn.execute(query)]

    def reviewers(
        self, *, pipeline: str | None = None, since: datetime | None = None
    ) -> builtins.list[tuple[str, str]]:
        """``(reviewer, trace)`` of every reviewed sample."""
        s = review_samples.c
        query = sa.select(s.reviewed_by, s.trace_id).where(s.status != "pending")
        if pipeline is not None:
            query = query.where(s.pipeline == pipeline)
        if since is not None:
            query = query.where(s.created_at >= since)
        with self._engine.connect() as conn:
            return [(row.reviewed_by, row.trace_id) for row in conn.execute(query)]

    def mark(
        self,
        sample_id: str,
        verdict: Verdict,
        reviewer: str,
        *,
        correction: Any = None,
        note: str | None = None,
        feedback_row: dict[str, Any] | None = None,
    ) -> ReviewSample:
        """Record a reviewer's verdict once, audited (with ``feedback_row``, the correction as
        feedback, in the same transaction); a reviewed sample is a conflict."""
        if not reviewer.strip():
            raise InvalidInputError(
                "a verdict needs the reviewer's identity", code="reviewer_missing"
            )
        now = datetime.now(UTC)
        try:
            with self._engine.begin() as conn:
                return _mark(
                    conn, sample_id, verdict, reviewer, now, correction, note, feedback_row
                )
        except IntegrityError as exc:
            msg = f"{reviewer} already corrected this trace through feedback"
            raise ConflictError(msg, code="feedback_duplicate") from exc

    # --- online evaluation scores -------------------------------------------------------------

    def add_scores(self, scores: Sequence[OnlineScore]) -> None:
        if not scores:
            return
        with self._engine.begin() as conn:
            conn.execute(
                insert_or_ignore(conn.dialect, online_scores),
                [asdict(score) for score in scores],
            )

    def scores(
        self,
        *,
        trace_id: str | None = None,
        pipeline: str | None = None,
        version: str | None = None,
        since: datetime | None = None,
    ) -> builtins.list[OnlineScore]:
        o = online_scores.c
        query = sa.select(online_scores).order_by(o.created_at, o.trace_id, o.metric)
        for column, value in (
            (o.trace_id, trace_id),
            (o.pipeline, pipeline),
            (o.pipeline_version, version),
        ):
            if value is not None:
                query = query.where(column == value)
        if since is not None:
            query = query.where(o.created_at >= since)
        with self._engine.connect() as conn:
            return [
                OnlineScore(**{key: getattr(row, key) for key in OnlineScore.__slots__})
                for row in conn.execute(query)
            ]


def _get(conn: Connection, sample_id: str) -> ReviewSample:
    row = conn.execute(sa.select(review_samples).where(review_samples.c.id == sample_id)).first()
    if row is None:
        msg = f"no review sample {sample_id!r}; `keel review samples` lists them"
        raise NotFoundError(msg, code="sample_not_found")
    return _sample(row)


def _mark(
    conn: Connection,
    sample_id: str,
    verdict: Verdict,
    reviewer: str,
    now: datetime,
    correction: Any,
    note: str | None,
    feedback_row: dict[str, Any] | None,
) -> ReviewSample:
    before = _get(conn, sample_id)
    updated = conn.execute(
        sa.update(review_samples)
        .where(review_samples.c.id == sample_id, review_samples.c.status == "pending")
        .values(
            status=verdict, reviewed_by=reviewer, reviewed_at=now, correction=correction, note=note
        )
    )
    if updated.rowcount != 1:
        msg = f"sample {sample_id} was already reviewed ({before.status} by {before.reviewed_by})"
        raise ConflictError(msg, code="sample_reviewed")
    details = {
        "verdict": verdict,
        "pipeline": before.pipeline,
        "trace_id": before.trace_id,
        "corrected": correction is not None,
    }
    conn.execute(
        sa.insert(audit_log),
        {
            "at": now,
            "actor": reviewer,
            "action": f"sample.{verdict}",
            "target": sample_id,
            "details": details,
        },
    )
    if feedback_row is not None:
        conn.execute(sa.insert(feedback), feedback_row)
    return _get(conn, sample_id)
