"""The reads behind SLOs and drift checks, and alert episodes, on SQLite and Postgres."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import pytest

from keel.core.errors import InvalidInputError, NotFoundError
from keel.core.monitoring import TraceSample
from keel.drift.simulate import NS, Traffic, spread, store_runs
from keel.store import Store
from keel.store.alerts import Alert

NOW = 1_750_000_000 * NS
MIN = 60 * NS


def _samples(n: int, start_ns: int, end_ns: int, seed_: int = 0) -> list[TraceSample]:
    return spread(Traffic().samples(np.random.default_rng(seed_), n), start_ns, end_ns)


def test_counts_per_trailing_window_by_outcome(store: Store) -> None:
    # 40 fine runs over the last hour; in the last 5 minutes 6 provider errors, 2 bad inputs,
    # 3 guardrail blocks and 4 slow runs; one run older than every window.
    store_runs(
        store, _samples(40, NOW - 60 * MIN, NOW - 10 * MIN), "triage", cost_usd=Decimal("0.01")
    )
    recent = NOW - 4 * MIN
    store_runs(
        store, _samples(6, recent, NOW, 1), "triage", status="error", error_code="provider_timeout"
    )
    store_runs(
        store, _samples(2, recent, NOW, 2), "triage", status="error", error_code="input_invalid"
    )
    store_runs(
        store, _samples(3, recent, NOW, 3), "triage", status="error", error_code="guardrail_blocked"
    )
    store_runs(store, _samples(4, recent, NOW, 4), "triage", duration_ms=3000)
    store_runs(store, _samples(5, NOW - 200 * MIN, NOW - 190 * MIN, 5), "triage")
    store_runs(store, _samples(7, recent, NOW, 6), "other")
    counts = store.monitoring.counts("triage", NOW, [300, 3600], slow_ms=2000)
    five = counts[300]
    assert (five.total, five.errors, five.server_errors, five.guardrail_blocked, five.slow) == (
        15,
        8,
        6,
        3,
        4,
    )
    hour = counts[3600]
    assert hour.total == 55 and hour.errors == 8
    assert hour.cost_usd == Decimal("0.400000000")  # 40 x 0.01, exact on both backends
    assert store.monitoring.counts("triage", NOW, []) == {}
    assert store.monitoring.counts("nobody", NOW, [60])[60].total == 0


def test_samples_carry_input_label_answer_and_model_version(store: Store) -> None:
    samples = _samples(30, NOW - 30 * MIN, NOW)
    store_runs(store, samples, "triage")
    got = store.monitoring.samples("triage", NOW - 60 * MIN, NOW + 1)
    assert len(got) == 30
    by_text = {s.input_text: s for s in got}
    first = samples[0]
    stored = by_text[first.input_text]
    assert (stored.label, stored.answer, stored.model_version) == (
        first.label,
        first.answer,
        first.model_version,
    )
    newest = store.monitoring.samples("triage", NOW - 60 * MIN, NOW + 1, limit=10)
    assert len(newest) == 10
    assert min(s.start_ns for s in newest) == samples[20].start_ns  # the newest ten
    durations = store.monitoring.durations_ms("triage", NOW - 60 * MIN, NOW + 1)
    assert len(durations) == 30 and durations[0] == pytest.approx(50.0)


def _alert(key: str = "slo:triage:availability", at: datetime | None = None) -> Alert:
    at = at or datetime(2025, 3, 1, tzinfo=UTC)
    return Alert(key=key, kind="slo", severity="page", summary="burning", started_at=at,
                 last_seen_at=at, pipeline="triage", details={"burn": 20.0})  # fmt: skip


def test_alert_episodes_open_once_touch_and_resolve_once(store: Store) -> None:
    repo = store.alerts
    first = repo.open(_alert())
    assert first is not None
    assert repo.open(_alert()) is None  # a second replica cannot open the same key
    later = first.started_at + timedelta(minutes=1)
    repo.touch(first, later, "still burning", {"burn": 30.0})
    stored = repo.get_open(first.key)
    assert stored is not None and stored.last_seen_at == later and stored.details == {"burn": 30.0}
    resolved = repo.resolve(first, later + timedelta(minutes=1))
    assert resolved is not None and resolved.status == "resolved"
    assert repo.resolve(first, later) is None  # already resolved elsewhere
    assert repo.get_open(first.key) is None
    again = repo.open(_alert(at=later + timedelta(minutes=5)))  # a new episode of the key
    assert again is not None and again.id != first.id
    repo.add_notification(again.id, {"target": "ops", "ok": True})
    assert repo.get(again.id).notifications == [{"target": "ops", "ok": True}]
    history = repo.list()
    assert [a.id for a in history] == [again.id, first.id]
    assert [a.id for a in repo.list(status="resolved")] == [first.id]
    assert repo.list(pipeline="other") == []


def test_alert_lookups_reject_bad_input(store: Store) -> None:
    with pytest.raises(NotFoundError) as missing:
        store.alerts.get("nope")
    assert missing.value.code == "alert_not_found"
    with pytest.raises(InvalidInputError) as bad:
        store.alerts.list(status="open")
    assert bad.value.code == "alert_status_invalid"
