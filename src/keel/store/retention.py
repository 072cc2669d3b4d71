"""Retention: purge whole traces, or one layer's payloads, older than a cutoff."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from keel.store.schema import spans, traces


@dataclass(frozen=True, slots=True)
class RetentionRule:
    """Traces of ``pipeline@version`` (all versions when None) older than ``days``: if
    ``layer`` is None the traces go; else that layer's span payloads are cleared."""

    pipeline: str | None
    version: str | None
    days: float
    layer: str | None = None


def _cutoff_ns(now: datetime, days: float) -> int:
    return int((now - timedelta(days=days)).timestamp() * 1_000_000_000)


class RetentionRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def purge(self, rule: RetentionRule, now: datetime) -> int:
        """Apply one rule; returns the number of traces deleted or spans cleared."""
        old = sa.select(traces.c.trace_id).where(traces.c.start_ns < _cutoff_ns(now, rule.days))
        if rule.pipeline is not None:
            old = old.where(traces.c.pipeline == rule.pipeline)
        if rule.version is not None:
            old = old.where(traces.c.pipeline_version == rule.version)
        with self._engine.begin() as conn:
            if rule.layer is None:
                conn.execute(sa.delete(spans).where(spans.c.trace_id.in_(old)))
                return conn.execute(sa.delete(traces).where(traces.c.trace_id.in_(old))).rowcount
            layer = (spans.c.layer == rule.layer) | spans.c.layer.like(f"{rule.layer}.%")
            cleared = conn.execute(
                sa.update(spans)
                .where(spans.c.trace_id.in_(old), layer)
                .where(spans.c.input.is_not(None) | spans.c.output.is_not(None))
                .values(input=None, output=None)
            )
            return cleared.rowcount
