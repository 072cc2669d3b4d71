"""Stored usage: sums add up across writes, reports roll hours up by period and group."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from keel.core.errors import InvalidInputError
from keel.store import Store
from keel.store.usage import UsageRow


def row(hour: datetime, key: str, pipeline: str, cost: str, **counts: int) -> UsageRow:
    return UsageRow(
        hour,
        key,
        pipeline,
        "openai:gpt-4o-mini",
        requests=counts.get("requests", 1),
        cache_hits=counts.get("cache_hits", 0),
        input_tokens=counts.get("input_tokens", 10),
        output_tokens=counts.get("output_tokens", 5),
        cost_usd=Decimal(cost),
        saved_usd=Decimal(counts.get("saved", 0)) / 1000,
    )


H1 = datetime(2025, 1, 31, 22, tzinfo=UTC)
H2 = datetime(2025, 1, 31, 23, tzinfo=UTC)
H3 = datetime(2025, 2, 1, 0, tzinfo=UTC)


def test_writes_add_to_the_same_hour(store: Store) -> None:
    store.usage.add([row(H1, "k1", "", "0.000001500")])
    store.usage.add([row(H1, "k1", "", "0.000002000", requests=2, cache_hits=1, saved=3)])
    [stored] = store.usage.rows()
    assert stored.requests == 3 and stored.cache_hits == 1
    assert stored.input_tokens == 20 and stored.output_tokens == 10
    assert stored.cost_usd == Decimal("0.0000035")
    assert stored.saved_usd == Decimal("0.003")
    assert stored.hour == H1


def test_report_by_day_month_and_group(store: Store) -> None:
    store.usage.add(
        [
            row(H1, "k1", "triage", "0.10"),
            row(H2, "k1", "triage", "0.20"),
            row(H2, "k2", "", "1.00"),
            row(H3, "k1", "triage", "0.40", cache_hits=1, saved=50),
        ]
    )
    days = store.usage.report("day", ["key", "pipeline"])
    assert [(r["period"], r["key"], r["pipeline"], r["cost_usd"]) for r in days] == [
        ("2025-01-31", "k1", "triage", Decimal("0.30")),
        ("2025-01-31", "k2", "", Decimal("1.00")),
        ("2025-02-01", "k1", "triage", Decimal("0.40")),
    ]
    assert days[0]["requests"] == 2 and days[2]["saved_usd"] == Decimal("0.05")
    months = store.usage.report("month", ["pipeline"])
    assert [(r["period"], r["pipeline"], r["requests"]) for r in months] == [
        ("2025-01", "", 1),
        ("2025-01", "triage", 2),
        ("2025-02", "triage", 1),
    ]
    only_k2 = store.usage.report("hour", [], key_id="k2")
    assert [(r["period"], r["cost_usd"]) for r in only_k2] == [
        ("2025-01-31T23:00Z", Decimal("1.00"))
    ]
    since = store.usage.report("day", ["key"], since=datetime(2025, 2, 1, tzinfo=UTC))
    assert [r["period"] for r in since] == ["2025-02-01"]
    until = store.usage.report("day", ["key"], until=datetime(2025, 1, 31, 23, tzinfo=UTC))
    assert [(r["key"], r["requests"]) for r in until] == [("k1", 1)]


def test_bad_report_arguments_are_refused(store: Store) -> None:
    with pytest.raises(InvalidInputError) as period:
        store.usage.report("week")
    assert period.value.code == "period_invalid"
    with pytest.raises(InvalidInputError) as group:
        store.usage.report("day", ["team"])
    assert group.value.code == "group_invalid"
