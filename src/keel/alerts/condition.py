"""Alert conditions: anything that can say, at a given time, which alert keys fire.

A condition is any object with ``evaluate(now) -> list[Signal]``. SLO burn rates, drift
checks and scheduled golden-set evaluations are conditions; so is anything a feature adds
later, in one line — e.g. review-sampling accuracy::

    engine.add(AccuracyBelowTarget("support-triage", lambda: queue.accuracy("support-triage")))

Each signal names an alert key (stable across evaluations: the lifecycle deduplicates on
it), whether it fires now, and details shown in the alert and its notifications. A key that
a condition stops reporting is left as it is; only ``firing=False`` resolves it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Signal:
    key: str
    firing: bool
    details: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    kind: str = "custom"
    severity: str = "ticket"
    pipeline: str | None = None


@runtime_checkable
class Condition(Protocol):
    """Evaluated by the server's alert task, off the event loop (it may read the store)."""

    def evaluate(self, now: datetime) -> Sequence[Signal]: ...


class AccuracyEstimateLike(Protocol):
    """The shape of review-sampling accuracy (a Wilson interval against a target)."""

    @property
    def n(self) -> int: ...
    @property
    def correct(self) -> int: ...
    @property
    def low(self) -> float | None: ...
    @property
    def high(self) -> float | None: ...
    @property
    def target(self) -> float: ...
    @property
    def below_target(self) -> bool: ...


@dataclass(slots=True)
class AccuracyBelowTarget:
    """Fires while the reviewed accuracy's interval lies below its target."""

    pipeline: str
    estimate: Callable[[], AccuracyEstimateLike | None]
    severity: str = "ticket"

    def evaluate(self, now: datetime) -> list[Signal]:
        found = self.estimate()
        if found is None or found.low is None or found.high is None:
            return []
        details = {
            "reviewed": found.n,
            "correct": found.correct,
            "interval": [found.low, found.high],
            "target": found.target,
        }
        summary = (
            f"{self.pipeline}: reviewed accuracy {found.correct}/{found.n}, 95% interval "
            f"[{found.low:.3f}, {found.high:.3f}] vs target {found.target:.3f}"
        )
        return [
            Signal(
                f"accuracy:{self.pipeline}",
                found.below_target,
                details,
                summary,
                kind="review_accuracy",
                severity=self.severity,
                pipeline=self.pipeline,
            )
        ]
