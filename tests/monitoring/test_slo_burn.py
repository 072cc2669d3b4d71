"""Burn rates and multi-window rules, checked against hand computations."""

from __future__ import annotations

from decimal import Decimal

import pytest

from keel.core.monitoring import WindowCounts
from keel.settings import SLOSettings
from keel.slo.burn import DAY, WORKBOOK_RULES, BurnRule, Objective, evaluate, windows
from keel.slo.service import objectives


def test_workbook_factors_follow_from_budget_share_and_period() -> None:
    factors = [round(rule.factor(30 * DAY), 4) for rule in WORKBOOK_RULES]
    assert factors == [14.4, 6.0, 3.0, 1.0]
    assert windows(WORKBOOK_RULES) == [259200, 86400, 21600, 7200, 3600, 1800, 300]


def test_burn_rate_is_the_bad_share_over_the_budget() -> None:
    o = Objective("triage", "availability", 0.995)
    # 10 service failures in 1,000 runs: 1 % bad against a 0.5 % budget = burning 2x.
    assert o.burn_rate(WindowCounts(total=1000, server_errors=10), 3600) == pytest.approx(2.0)
    assert o.burn_rate(WindowCounts(), 3600) is None  # no traffic, no rate
    latency = Objective("triage", "latency", 0.95, threshold_ms=800)
    assert latency.burn_rate(WindowCounts(total=200, slow=30), 60) == pytest.approx(3.0)
    cost = Objective("triage", "cost", 24.0)
    # $2 in one hour is $48 a day against a $24 budget: 2x.
    assert cost.burn_rate(WindowCounts(cost_usd=Decimal(2)), 3600) == pytest.approx(2.0)


def _counts(**by_window: tuple[int, int]) -> dict[float, WindowCounts]:
    seconds = {"m5": 300, "m30": 1800, "h1": 3600, "h2": 7200, "h6": 21600, "d1": 86400,
               "d3": 259200}  # fmt: skip
    out = {w: WindowCounts(total=1000) for w in seconds.values()}
    for name, (total, bad) in by_window.items():
        out[seconds[name]] = WindowCounts(total=total, server_errors=bad)
    return out


def test_a_rule_fires_only_when_both_of_its_windows_burn() -> None:
    o = Objective("triage", "availability", 0.99)  # budget 1 %
    # 1h at 20 % bad (burn 20 >= 14.4) but the last 5 min are clean: already recovering.
    status = evaluate(o, _counts(h1=(1000, 200), m5=(100, 0)))
    assert not status.firing
    status = evaluate(o, _counts(h1=(1000, 200), m5=(100, 20)))
    assert status.firing and status.severity == "page"
    page = status.rules[0]
    assert page.long_burn == pytest.approx(20.0) and page.short_burn == pytest.approx(20.0)
    assert "20.0x" in status.summary()
    # Only the slow rule (3d / 6h at 1x): a ticket.
    slow = evaluate(o, _counts(d3=(10_000, 150), h6=(1000, 15)))
    assert slow.firing and slow.severity == "ticket"


def test_thin_traffic_cannot_page() -> None:
    o = Objective("triage", "availability", 0.999)
    counts = _counts(h1=(3, 3), m5=(1, 1))
    status = evaluate(o, counts, min_events=10)
    assert not status.firing
    assert "fewer than 10" in (status.rules[0].reason or "")
    assert evaluate(o, counts, min_events=1).firing


def test_cost_objective_uses_spending_rate() -> None:
    o = Objective("triage", "cost", 10.0)  # $10 a day
    rules = [BurnRule(3600, 300, 0.02, "page")]  # factor 14.4 with a 30-day period
    # $6.5 in the last hour is $156/day (15.6x); $0.6 in 5 min is $172.8/day (17.3x).
    counts = {
        3600: WindowCounts(cost_usd=Decimal("6.5")),
        300: WindowCounts(cost_usd=Decimal("0.6")),
    }
    assert evaluate(o, counts, rules).firing
    counts[300] = WindowCounts(cost_usd=Decimal("0.1"))
    assert not evaluate(o, counts, rules).firing


def test_objectives_from_settings() -> None:
    slo = SLOSettings(
        pipeline="triage",
        availability=0.999,
        latency_p95_ms=1500,
        error_rate=0.02,
        guardrail_violation_rate=0.05,
        cost_per_day_usd=Decimal(20),
        period_days=7,
    )
    found = {o.kind: o for o in objectives(slo)}
    assert set(found) == {"availability", "latency", "error_rate", "guardrail_violations", "cost"}
    assert found["error_rate"].target == pytest.approx(0.98)
    assert found["latency"].threshold_ms == 1500 and found["latency"].target == 0.95
    assert found["cost"].period_s == 7 * DAY
    assert objectives(SLOSettings(pipeline="x", availability=None)) == []
