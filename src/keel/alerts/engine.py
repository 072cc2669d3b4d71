"""The alert lifecycle: conditions evaluated, episodes opened, kept and resolved, and each
change announced once.

An evaluation turns every condition's signals into at most one transition per key:

* firing, and no open episode → open one (``firing`` notification);
* firing, and an episode is open → note that it is still firing (no notification: dedup);
* not firing, and an episode is open → resolve it (``resolved`` notification);
* not firing, nothing open → nothing.

Episodes live in the store, so a restart or a second replica sees the same open alerts
and does not announce them again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from keel.alerts.condition import Condition, Signal
from keel.alerts.notify import Event, Notifier
from keel.store import Store
from keel.store.alerts import Alert

log = logging.getLogger("keel.alerts")


@dataclass(frozen=True, slots=True)
class Transition:
    alert: Alert
    event: Event


class AlertEngine:
    def __init__(
        self, store: Store, notifier: Notifier, conditions: Iterable[Condition] = ()
    ) -> None:
        self._store = store
        self.notifier = notifier
        self.conditions: list[Condition] = list(conditions)

    def add(self, condition: Condition) -> None:
        self.conditions.append(condition)

    def signals(self, now: datetime) -> list[Signal]:
        found: list[Signal] = []
        for condition in self.conditions:
            try:
                found.extend(condition.evaluate(now))
            except Exception:  # one broken condition must not silence the others
                log.exception("alert condition %r failed", condition)
        return found

    def apply(self, signals: Sequence[Signal], now: datetime) -> list[Transition]:
        """Move episodes along; returns the transitions to announce."""
        out = []
        for signal in signals:
            transition = self._apply_one(signal, now)
            if transition is not None:
                out.append(transition)
        return out

    def _apply_one(self, signal: Signal, now: datetime) -> Transition | None:
        repo = self._store.alerts
        current = repo.get_open(signal.key)
        if signal.firing:
            if current is not None:
                repo.touch(current, now, signal.summary or current.summary, signal.details)
                return None
            alert = Alert(
                key=signal.key,
                kind=signal.kind,
                severity=signal.severity,
                summary=signal.summary or signal.key,
                started_at=now,
                last_seen_at=now,
                pipeline=signal.pipeline,
                details=signal.details,
            )
            opened = repo.open(alert)
            return Transition(opened, "firing") if opened is not None else None
        if current is None:
            return None
        resolved = repo.resolve(current, now)
        return Transition(resolved, "resolved") if resolved is not None else None

    def evaluate(self, now: datetime | None = None) -> list[Transition]:
        now = now or datetime.now(UTC)
        return self.apply(self.signals(now), now)

    async def announce(self, transitions: Sequence[Transition]) -> None:
        for t in transitions:
            records = await self.notifier.send(t.alert, t.event)
            for record in records:
                await asyncio.to_thread(self._store.alerts.add_notification, t.alert.id, record)

    async def tick(self, now: datetime | None = None) -> list[Transition]:
        """One evaluation off the event loop, then the announcements."""
        transitions = await asyncio.to_thread(self.evaluate, now)
        await self.announce(transitions)
        return transitions

    async def report(self, signals: Sequence[Signal], now: datetime | None = None) -> None:
        """Apply signals computed elsewhere (a scheduled golden-set run) and announce them."""
        transitions = await asyncio.to_thread(self.apply, signals, now or datetime.now(UTC))
        await self.announce(transitions)
