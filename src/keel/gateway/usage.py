"""The usage ledger: what each answer billed and what the cache saved, summed per hour,
API key, pipeline and model in memory and written to the store in batches.

Recording is a dict update on the request path; :meth:`UsageLedger.flush` hands the sums to
the store off the event loop. The server flushes every ``gateway.usage_flush_seconds`` and
once more at shutdown, after the last request has finished.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from keel.core.errors import InvalidInputError
from keel.core.usage import Usage
from keel.store.usage import UsageRepository, UsageRow

if TYPE_CHECKING:
    from keel.store import Store

_Key = tuple[int, str, str, str]  # hour number since the epoch, key id, pipeline, model


class UsageLedger:
    def __init__(self, repository: UsageRepository, clock: Callable[[], float] = time.time) -> None:
        self._repository = repository
        self._clock = clock
        self._pending: dict[_Key, UsageRow] = {}
        self._lock = threading.Lock()  # flushes run in a worker thread

    def record(
        self,
        key_id: str,
        model: str,
        usage: Usage,
        cost: Decimal,
        *,
        pipeline: str = "",
        saved: Decimal | None = None,
    ) -> None:
        """One answer; ``saved`` is set for a cache hit (what the original answer cost)."""
        hour = int(self._clock() // 3600)
        key = (hour, key_id, pipeline, model)
        with self._lock:
            row = self._pending.get(key)
            if row is None:
                start = datetime.fromtimestamp(hour * 3600, UTC)
                row = self._pending[key] = UsageRow(start, key_id, pipeline, model)
            row.requests += 1
            row.input_tokens += usage.input_tokens
            row.output_tokens += usage.output_tokens
            row.cost_usd += cost
            if saved is not None:
                row.cache_hits += 1
                row.saved_usd += saved

    @property
    def pending(self) -> int:
        """Rows summed in memory and not yet written."""
        return len(self._pending)

    def flush_now(self) -> int:
        """Write the pending sums (blocking); returns the rows written. On a store error the
        sums are put back, so a later flush writes them."""
        with self._lock:
            rows, self._pending = self._pending, {}
        if not rows:
            return 0
        try:
            self._repository.add(rows.values())
        except BaseException:
            with self._lock:
                for key, row in rows.items():
                    self._merge(key, row)
            raise
        return len(rows)

    async def flush(self) -> int:
        return await asyncio.to_thread(self.flush_now)

    def _merge(self, key: _Key, row: UsageRow) -> None:
        found = self._pending.get(key)
        if found is None:
            self._pending[key] = row
            return
        found.requests += row.requests
        found.cache_hits += row.cache_hits
        found.input_tokens += row.input_tokens
        found.output_tokens += row.output_tokens
        found.cost_usd += row.cost_usd
        found.saved_usd += row.saved_usd


def parse_when(value: str | None, name: str) -> datetime | None:
    """An ISO date or date-time (UTC unless it says otherwise), for report bounds."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInputError(
            f"{name} must be an ISO date or date-time such as 2025-01-31 or "
            f"2025-01-31T12:00; got {value!r}",
            code="time_invalid",
        ) from exc
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def usage_report(
    store: Store,
    *,
    period: str = "day",
    group_by: Sequence[str] = ("key", "pipeline"),
    since: datetime | None = None,
    until: datetime | None = None,
    key_id: str | None = None,
) -> list[dict[str, Any]]:
    """The stored usage summed per period and group, with key names, amounts as strings."""
    rows = store.usage.report(period, group_by, since, until, key_id)
    names = {"settings": "admin (settings)"}
    if "key" in group_by:
        names |= {key.id: key.name for key in store.keys.list(include_revoked=True)}
    for row in rows:
        if "key" in row:
            row["key_name"] = names.get(row["key"], "")
        row["cost_usd"] = str(row["cost_usd"])
        row["saved_usd"] = str(row["saved_usd"])
    return rows
