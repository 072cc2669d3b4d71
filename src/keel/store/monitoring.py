"""Reads behind drift checks and SLOs: trace samples of a window, and event counts per window.

Both use the ``traces (pipeline, start_ns)`` index. Counts for every burn-rate window come
from one aggregate query (a ``CASE`` per window over the longest one).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from keel.core.monitoring import TraceSample, WindowCounts
from keel.core.tracing import payload_value
from keel.store.column_types import ExactDecimal
from keel.store.schema import spans, traces

# Outcomes that are not failures of the service: the caller sent bad input, or a policy
# decided (a guardrail blocked the request, an answer waits for review).
CALLER_ERROR_CODES = (
    "invalid_input",
    "input_invalid",
    "input_schema_violation",
    "input_not_json",
    "pipeline_input_missing",
)
GUARDRAIL_CODES = ("guardrail_blocked",)
POLICY_CODES = (*GUARDRAIL_CODES, "held_for_review")
NS = 1_000_000_000


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def input_text(payload: str | None) -> str | None:
    """The text of a run's input: the string leaves of its JSON, one per line."""
    parts = _strings(payload_value(payload))
    return "\n".join(parts) if parts else None


def _label(payload: str | None, decision: str | None) -> str | None:
    if payload:
        try:
            value = orjson.loads(payload)
        except orjson.JSONDecodeError:
            value = None
        if isinstance(value, dict) and "decision" in value and value.get("label"):
            return str(value["label"])
    return decision


def _answer(payload: str | None) -> str | None:
    value = payload_value(payload)
    return value if isinstance(value, str) else payload


def _count(condition: Any, since: int) -> Any:
    return sa.func.sum(sa.case((sa.and_(traces.c.start_ns >= since, condition), 1), else_=0))


class MonitoringRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def samples(
        self, pipeline: str, start_ns: int, end_ns: int, *, limit: int = 2000
    ) -> list[TraceSample]:
        """The newest ``limit`` runs of a pipeline started in ``[start_ns, end_ns)``."""
        t, s = traces.c, spans.c
        recent = (
            sa.select(t.trace_id, t.start_ns, t.decision)
            .where(t.pipeline == pipeline, t.start_ns >= start_ns, t.start_ns < end_ns)
            .order_by(t.start_ns.desc())
            .limit(limit)
            .subquery()
        )
        query = (
            sa.select(recent, s.layer, s.input, s.output, s.model_version)
            .join(spans, s.trace_id == recent.c.trace_id)
            .where(s.layer.in_(("pipeline", "model")))
            .order_by(recent.c.start_ns, s.start_ns)
        )
        rows: dict[str, dict[str, Any]] = {}
        with self._engine.connect() as conn:
            for row in conn.execute(query):
                entry = rows.setdefault(
                    row.trace_id,
                    {"trace_id": row.trace_id, "start_ns": row.start_ns, "input_text": None,
                     "label": row.decision, "answer": None, "model_version": None},
                )  # fmt: skip
                if row.layer == "pipeline":
                    entry["input_text"] = input_text(row.input)
                    entry["label"] = _label(row.output, row.decision)
                else:
                    entry["answer"] = _answer(row.output)
                    entry["model_version"] = row.model_version
        return [TraceSample(**entry) for entry in rows.values()]

    def counts(
        self,
        pipeline: str,
        now_ns: int,
        windows_s: Sequence[float],
        *,
        slow_ms: float | None = None,
    ) -> dict[float, WindowCounts]:
        """Outcome counts of a pipeline's runs in each trailing window (seconds) up to now."""
        if not windows_s:
            return {}
        t = traces.c
        failed = t.status == "error"
        error = sa.and_(failed, sa.func.coalesce(t.error_code, "").not_in(POLICY_CODES))
        server = sa.and_(error, sa.func.coalesce(t.error_code, "").not_in(CALLER_ERROR_CODES))
        blocked = t.error_code.in_(GUARDRAIL_CODES)
        slow = (t.end_ns - t.start_ns) > int(slow_ms * 1e6) if slow_ms is not None else sa.false()
        columns = []
        for window in windows_s:
            since = now_ns - int(window * NS)
            columns += [
                _count(sa.true(), since),
                _count(error, since),
                _count(server, since),
                _count(blocked, since),
                _count(slow, since),
                sa.type_coerce(
                    sa.func.sum(sa.case((t.start_ns >= since, t.cost_usd), else_=0)),
                    ExactDecimal(),
                ),
            ]
        earliest = now_ns - int(max(windows_s) * NS)
        query = sa.select(*columns).where(
            t.pipeline == pipeline, t.start_ns >= earliest, t.start_ns <= now_ns
        )
        with self._engine.connect() as conn:
            row = conn.execute(query).one()
        out: dict[float, WindowCounts] = {}
        for index, window in enumerate(windows_s):
            values = row[index * 6 : index * 6 + 6]
            n_all, n_err, n_server, n_blocked, n_slow = (int(v or 0) for v in values[:5])
            out[window] = WindowCounts(
                n_all, n_err, n_server, n_blocked, n_slow, values[5] or Decimal(0)
            )
        return out

    def durations_ms(
        self, pipeline: str, start_ns: int, end_ns: int, *, limit: int = 100_000
    ) -> list[float]:
        """Run durations of a window (newest first, at most ``limit``), for percentiles."""
        t = traces.c
        query = (
            sa.select(t.end_ns - t.start_ns)
            .where(t.pipeline == pipeline, t.start_ns >= start_ns, t.start_ns < end_ns)
            .order_by(t.start_ns.desc())
            .limit(limit)
        )
        with self._engine.connect() as conn:
            return [int(ns) / 1e6 for (ns,) in conn.execute(query)]
