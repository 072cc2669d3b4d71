"""Stored usage: requests, tokens, cost and cache savings per hour, API key, pipeline and model.

The gateway adds up its answers in memory and writes the sums here now and then; each write
adds to the hour's row (``INSERT … ON CONFLICT DO UPDATE SET x = x + excluded.x``), so
several replicas and repeated flushes sum correctly. Reports roll the hours up by hour, day
or month and by any of key, pipeline and model.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from keel.core.errors import InvalidInputError
from keel.store.dialects import upsert_adding
from keel.store.schema import usage_hourly

PERIODS = ("hour", "day", "month")
GROUPS = ("key", "pipeline", "model")
_SUMMED = (
    "requests",
    "cache_hits",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "saved_usd",
)
_COLUMN = {"key": "key_id", "pipeline": "pipeline", "model": "model"}


@dataclass(slots=True)
class UsageRow:
    """Sums for one hour, key, pipeline (``""`` for direct model calls) and model."""

    hour: datetime
    key_id: str
    pipeline: str
    model: str
    requests: int = 0
    cache_hits: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = field(default_factory=Decimal)
    saved_usd: Decimal = field(default_factory=Decimal)

    def values(self) -> dict[str, Any]:
        return {
            "hour": self.hour,
            "key_id": self.key_id,
            "pipeline": self.pipeline,
            "model": self.model,
            **{name: getattr(self, name) for name in _SUMMED},
        }


def hour_of(when: datetime) -> datetime:
    """The start of the UTC hour ``when`` falls in."""
    return when.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _period(hour: datetime, period: str) -> str:
    if period == "hour":
        return hour.strftime("%Y-%m-%dT%H:00Z")
    if period == "day":
        return hour.strftime("%Y-%m-%d")
    return hour.strftime("%Y-%m")


def check_report(period: str, group_by: Sequence[str]) -> None:
    if period not in PERIODS:
        raise InvalidInputError(
            f"period must be one of {', '.join(PERIODS)}; got {period!r}", code="period_invalid"
        )
    unknown = [g for g in group_by if g not in GROUPS]
    if unknown:
        raise InvalidInputError(
            f"usage can be grouped by {', '.join(GROUPS)}; got {', '.join(unknown)}",
            code="group_invalid",
        )


class UsageRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def add(self, rows: Iterable[UsageRow]) -> None:
        """Add the sums to the stored rows of the same hour, key, pipeline and model."""
        values = [row.values() for row in rows]
        if not values:
            return
        with self._engine.begin() as conn:
            statement = upsert_adding(
                conn.dialect, usage_hourly, ["hour", "key_id", "pipeline", "model"], _SUMMED
            )
            conn.execute(statement, values)

    def rows(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        key_id: str | None = None,
    ) -> builtins.list[UsageRow]:
        query = sa.select(usage_hourly).order_by(usage_hourly.c.hour)
        if key_id is not None:
            query = query.where(usage_hourly.c.key_id == key_id)
        if since is not None:
            query = query.where(usage_hourly.c.hour >= hour_of(since))
        if until is not None:
            query = query.where(usage_hourly.c.hour < until)
        with self._engine.connect() as conn:
            return [
                UsageRow(
                    row.hour,
                    row.key_id,
                    row.pipeline,
                    row.model,
                    **{name: getattr(row, name) for name in _SUMMED},
                )
                for row in conn.execute(query)
            ]

    def report(
        self,
        period: str = "day",
        group_by: Sequence[str] = ("key", "pipeline"),
        since: datetime | None = None,
        until: datetime | None = None,
        key_id: str | None = None,
    ) -> builtins.list[dict[str, Any]]:
        """Sums per period and group, oldest period first, then by the group's names; only
        one key's usage when ``key_id`` is given."""
        check_report(period, group_by)
        totals: dict[tuple[str, ...], dict[str, Any]] = {}
        for row in self.rows(since, until, key_id):
            names = tuple(getattr(row, _COLUMN[g]) for g in group_by)
            key = (_period(row.hour, period), *names)
            found = totals.get(key)
            if found is None:
                found = totals[key] = {"period": key[0]}
                found.update(dict(zip(group_by, names, strict=True)))
                found.update(dict.fromkeys(_SUMMED[:4], 0))
                found.update(cost_usd=Decimal(0), saved_usd=Decimal(0))
            for name in _SUMMED:
                found[name] += getattr(row, name)
        return [totals[key] for key in sorted(totals)]
