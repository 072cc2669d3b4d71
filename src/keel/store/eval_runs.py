"""Eval runs and their per-trial results.

A run row is written first (status ``running``); results are appended in batches as trials
finish, so a crash keeps every finished trial and a rerun with the same configuration
continues where it stopped. ``finish`` stores the computed summary.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row

from keel.core.errors import InvalidInputError, NotFoundError
from keel.core.trial import TrialResult
from keel.store.dialects import insert_or_ignore
from keel.store.schema import eval_results, eval_runs

RUNNING = "running"
FINISHED = "finished"
_MIN_PREFIX = 6


@dataclass(frozen=True, slots=True)
class EvalRun:
    run_id: str
    config_key: str
    pipeline: str
    pipeline_version: str
    dataset: str
    dataset_version: int
    repeats: int
    params: dict[str, Any]
    evaluators: dict[str, Any]
    models: dict[str, Any]
    status: str
    label: str | None
    summary: dict[str, Any] | None
    created_at: datetime
    finished_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "pipeline": self.pipeline,
            "pipeline_version": self.pipeline_version,
            "dataset": f"{self.dataset}@{self.dataset_version}",
            "repeats": self.repeats,
            "params": self.params,
            "evaluators": self.evaluators,
            "models": self.models,
            "status": self.status,
            "label": self.label,
            "created_at": self.created_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "summary": self.summary,
        }


def _to_run(row: Row[Any]) -> EvalRun:
    return EvalRun(**{c: getattr(row, c) for c in eval_runs.c.keys()})  # noqa: SIM118


def _to_result(row: Row[Any]) -> TrialResult:
    return TrialResult(
        item_id=row.item_id,
        trial=row.trial,
        status=row.status,
        scores=row.scores,
        output=row.output,
        error_code=row.error_code,
        trace_id=row.trace_id,
        details=row.details,
        latency_ms=row.latency_ms,
        input_tokens=row.input_tokens,
        output_tokens=row.output_tokens,
        cost_usd=row.cost_usd,
        model_version=row.model_version,
    )


def _result_row(run_id: str, r: TrialResult) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "item_id": r.item_id,
        "trial": r.trial,
        "status": r.status,
        "error_code": r.error_code,
        "trace_id": r.trace_id,
        "output": r.output,
        "scores": dict(r.scores),
        "details": dict(r.details),
        "latency_ms": r.latency_ms,
        "input_tokens": r.input_tokens,
        "output_tokens": r.output_tokens,
        "cost_usd": r.cost_usd,
        "model_version": r.model_version,
    }


class EvalRunRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(self, run: EvalRun) -> None:
        row = {c: getattr(run, c) for c in eval_runs.c.keys()}  # noqa: SIM118
        with self._engine.begin() as conn:
            conn.execute(sa.insert(eval_runs), row)

    def unfinished(self, config_key: str) -> EvalRun | None:
        """The newest run with this configuration that has not finished, if any."""
        query = (
            sa.select(eval_runs)
            .where(eval_runs.c.config_key == config_key, eval_runs.c.status == RUNNING)
            .order_by(eval_runs.c.created_at.desc())
            .limit(1)
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return _to_run(row) if row is not None else None

    def get(self, run_id: str) -> EvalRun:
        """A run by id or by a unique prefix of at least six characters."""
        with self._engine.connect() as conn:
            return _to_run(_resolve(conn, run_id))

    def find(self, ref: str) -> EvalRun | None:
        """A run by id/prefix, else the newest finished run carrying label ``ref``."""
        try:
            return self.get(ref)
        except (NotFoundError, InvalidInputError):
            pass
        query = (
            sa.select(eval_runs)
            .where(eval_runs.c.label == ref, eval_runs.c.status == FINISHED)
            .order_by(eval_runs.c.finished_at.desc())
            .limit(1)
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return _to_run(row) if row is not None else None

    def latest_finished(
        self, pipeline: str, version: str, dataset: str, *, exclude: str | None = None
    ) -> EvalRun | None:
        """The newest finished run of a pipeline version on (any version of) a dataset."""
        r = eval_runs.c
        query = (
            sa.select(eval_runs)
            .where(
                r.pipeline == pipeline,
                r.pipeline_version == version,
                r.dataset == dataset,
                r.status == FINISHED,
                r.run_id != (exclude or ""),
            )
            .order_by(r.finished_at.desc())
            .limit(1)
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).first()
        return _to_run(row) if row is not None else None

    def list(self, *, limit: int = 20, pipeline: str | None = None) -> builtins.list[EvalRun]:
        query = sa.select(eval_runs).order_by(eval_runs.c.created_at.desc()).limit(limit)
        if pipeline is not None:
            query = query.where(eval_runs.c.pipeline == pipeline)
        with self._engine.connect() as conn:
            return [_to_run(row) for row in conn.execute(query)]

    def add_results(self, run_id: str, results: Sequence[TrialResult]) -> None:
        """Append finished trials; a trial already stored is kept as it was."""
        if not results:
            return
        rows = [_result_row(run_id, r) for r in results]
        with self._engine.begin() as conn:
            conn.execute(insert_or_ignore(conn.dialect, eval_results), rows)

    def results(self, run_id: str) -> builtins.list[TrialResult]:
        query = (
            sa.select(eval_results)
            .where(eval_results.c.run_id == run_id)
            .order_by(eval_results.c.item_id, eval_results.c.trial)
        )
        with self._engine.connect() as conn:
            return [_to_result(row) for row in conn.execute(query)]

    def done(self, run_id: str) -> set[tuple[str, int]]:
        """``(item_id, trial)`` of every trial already stored for the run."""
        r = eval_results.c
        with self._engine.connect() as conn:
            rows = conn.execute(sa.select(r.item_id, r.trial).where(r.run_id == run_id))
            return {(row.item_id, row.trial) for row in rows}

    def finish(
        self, run_id: str, summary: dict[str, Any], models: dict[str, Any], label: str | None
    ) -> None:
        values: dict[str, Any] = {
            "status": FINISHED,
            "summary": summary,
            "models": models,
            "finished_at": datetime.now(UTC),
        }
        if label is not None:
            values["label"] = label
        with self._engine.begin() as conn:
            conn.execute(sa.update(eval_runs).where(eval_runs.c.run_id == run_id).values(values))

    def set_label(self, run_id: str, label: str) -> None:
        """Name a finished run, e.g. as the baseline later runs are compared with."""
        with self._engine.begin() as conn:
            conn.execute(
                sa.update(eval_runs).where(eval_runs.c.run_id == run_id).values(label=label)
            )

    def add_to_summary(self, run_id: str, key: str, value: Any) -> None:
        """Attach a derived report (e.g. a fairness audit) to a finished run's summary."""
        with self._engine.begin() as conn:
            current = _resolve(conn, run_id).summary or {}
            conn.execute(
                sa.update(eval_runs)
                .where(eval_runs.c.run_id == run_id)
                .values(summary=current | {key: value})
            )


def _resolve(conn: Connection, run_id: str) -> Row[Any]:
    row = conn.execute(sa.select(eval_runs).where(eval_runs.c.run_id == run_id)).first()
    if row is not None:
        return row
    if len(run_id) >= _MIN_PREFIX and run_id.isalnum():
        rows = conn.execute(
            sa.select(eval_runs).where(eval_runs.c.run_id.startswith(run_id)).limit(2)
        ).all()
        if len(rows) == 1:
            return rows[0]
        if len(rows) > 1:
            msg = f"run id prefix {run_id!r} is ambiguous; give more characters"
            raise InvalidInputError(msg, code="eval_run_ambiguous", run=run_id)
    msg = f"No eval run {run_id!r}; `keel eval list` shows recent runs"
    raise NotFoundError(msg, code="eval_run_not_found", run=run_id)
