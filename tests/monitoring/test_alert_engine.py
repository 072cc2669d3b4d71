"""The alert lifecycle on a real store: fire once, dedup while firing, resolve once, notify
each change, and keep going when one condition breaks."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from keel.alerts.condition import AccuracyBelowTarget, Condition, Signal
from keel.alerts.engine import AlertEngine
from keel.alerts.notify import Notifier, Target
from keel.store import Store

from ..webhook_receiver import receiver

T0 = datetime(2025, 3, 1, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'keel.db'}")
    yield opened
    opened.close()


@dataclass
class Switch:
    """A condition whose state the test flips."""

    firing: bool = False
    key: str = "custom:triage:switch"

    def evaluate(self, now: datetime) -> list[Signal]:
        return [Signal(self.key, self.firing, {"at": now.isoformat()}, f"switch is {self.firing}",
                       pipeline="triage")]  # fmt: skip


class Broken:
    def evaluate(self, now: datetime) -> list[Signal]:
        raise RuntimeError("this condition is broken")


def test_fire_dedup_resolve_and_refire(store: Store) -> None:
    switch = Switch()
    engine = AlertEngine(store, Notifier([]), [Broken(), switch])
    assert isinstance(switch, Condition)
    assert engine.evaluate(T0) == []  # not firing, nothing open
    switch.firing = True
    [fired] = engine.evaluate(T0 + timedelta(minutes=1))
    assert fired.event == "firing" and fired.alert.key == switch.key
    for minute in (2, 3, 4):  # still firing: no new episode, no new notification
        assert engine.evaluate(T0 + timedelta(minutes=minute)) == []
    [episode] = store.alerts.list()
    assert episode.last_seen_at == T0 + timedelta(minutes=4)
    switch.firing = False
    [resolved] = engine.evaluate(T0 + timedelta(minutes=5))
    assert resolved.event == "resolved" and resolved.alert.id == fired.alert.id
    assert engine.evaluate(T0 + timedelta(minutes=6)) == []
    switch.firing = True
    [again] = engine.evaluate(T0 + timedelta(minutes=7))
    assert again.alert.id != fired.alert.id
    assert [a.status for a in store.alerts.list()] == ["firing", "resolved"]


def test_two_replicas_open_and_resolve_an_episode_once(store: Store) -> None:
    switch = Switch(firing=True)
    first = AlertEngine(store, Notifier([]), [switch])
    second = AlertEngine(store, Notifier([]), [switch])
    assert len(first.evaluate(T0)) == 1
    assert second.evaluate(T0) == []
    switch.firing = False
    assert len(second.evaluate(T0)) == 1
    assert first.evaluate(T0) == []


def test_changes_are_notified_and_recorded(store: Store) -> None:
    switch = Switch(firing=True)
    with receiver() as hook:
        notifier = Notifier([Target(hook.url, "slack", "chat")], allow_private=True)
        engine = AlertEngine(store, notifier, [switch])
        asyncio.run(engine.tick(T0))
        asyncio.run(engine.tick(T0 + timedelta(minutes=1)))
        switch.firing = False
        asyncio.run(engine.tick(T0 + timedelta(minutes=2)))
        bodies = hook.wait_for(2)
    assert [b["text"].split("]")[0] for b in bodies] == ["[FIRING", "[RESOLVED"]
    [episode] = store.alerts.list()
    assert [(n["event"], n["ok"]) for n in episode.notifications] == [
        ("firing", True), ("resolved", True)
    ]  # fmt: skip


@dataclass(frozen=True)
class Estimate:
    """The shape review sampling exposes (n, correct, Wilson interval, target)."""

    n: int
    correct: int
    low: float
    high: float
    target: float

    @property
    def below_target(self) -> bool:
        return self.high < self.target


def test_review_accuracy_plugs_in_as_one_condition(store: Store) -> None:
    current = {"estimate": Estimate(200, 150, 0.686, 0.805, 0.9)}
    engine = AlertEngine(store, Notifier([]))
    engine.add(AccuracyBelowTarget("triage", lambda: current["estimate"]))
    [fired] = engine.evaluate(T0)
    assert fired.alert.key == "accuracy:triage" and fired.alert.kind == "review_accuracy"
    assert fired.alert.details["interval"] == [0.686, 0.805]
    current["estimate"] = Estimate(200, 185, 0.878, 0.953, 0.9)
    [resolved] = engine.evaluate(T0 + timedelta(hours=1))
    assert resolved.event == "resolved"
