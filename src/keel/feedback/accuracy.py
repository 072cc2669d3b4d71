"""Accuracy of a pipeline estimated from its sampled review, with a Wilson interval.

Reviewers mark a random share of production answers correct or incorrect. Over the samples
of the last ``window`` (by when the answer was given), accuracy is ``correct / n`` with a
Wilson score interval at the configured confidence.

The status rule:

* ``no_data``: no reviewed sample in the window;
* ``below_target``: the interval's upper bound is under the target, i.e. the data make it
  implausible that the pipeline meets its target (the alert condition);
* ``meets_target``: the lower bound is at or above the target;
* ``inconclusive``: the target lies inside the interval (review more samples).

``review_accuracy`` is a pure read of the store, cheap enough for an alert manager to poll.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from keel.evals.stats import wilson

if TYPE_CHECKING:
    from keel.store import Store

DEFAULT_TARGET = 0.9
DEFAULT_CONFIDENCE = 0.95


@dataclass(frozen=True, slots=True)
class AccuracyEstimate:
    pipeline: str
    version: str | None  # None: all versions of the pipeline together
    n: int
    correct: int
    low: float | None
    high: float | None
    target: float
    below_target: bool
    status: str
    window_hours: float
    confidence: float

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.n if self.n else None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"accuracy": self.accuracy}


def estimate(
    pipeline: str,
    version: str | None,
    correct: int,
    n: int,
    *,
    target: float,
    window_hours: float,
    confidence: float = DEFAULT_CONFIDENCE,
) -> AccuracyEstimate:
    """The interval and status for ``correct`` out of ``n`` reviewed samples."""
    if n == 0:
        return AccuracyEstimate(
            pipeline, version, 0, 0, None, None, target, False, "no_data", window_hours, confidence
        )
    low, high = wilson(correct, n, confidence)
    if high < target:
        status = "below_target"
    elif low >= target:
        status = "meets_target"
    else:
        status = "inconclusive"
    return AccuracyEstimate(
        pipeline,
        version,
        n,
        correct,
        low,
        high,
        target,
        status == "below_target",
        status,
        window_hours,
        confidence,
    )


def _window(window: timedelta | float) -> timedelta:
    return window if isinstance(window, timedelta) else timedelta(hours=float(window))


def review_accuracy(
    store: Store,
    pipeline: str,
    window: timedelta | float,
    *,
    version: str | None = None,
    target: float = DEFAULT_TARGET,
    confidence: float = DEFAULT_CONFIDENCE,
    now: datetime | None = None,
) -> AccuracyEstimate:
    """Sampled-review accuracy of ``pipeline`` (one version, or all) over the last ``window``
    (a ``timedelta`` or hours)."""
    span = _window(window)
    since = (now or datetime.now(UTC)) - span
    verdicts = store.samples.verdicts(pipeline, since, version)
    correct = sum(1 for _, status in verdicts if status == "correct")
    return estimate(
        pipeline,
        version,
        correct,
        len(verdicts),
        target=target,
        window_hours=span.total_seconds() / 3600,
        confidence=confidence,
    )


def accuracy_by_version(
    store: Store,
    pipeline: str,
    window: timedelta | float,
    *,
    target: float = DEFAULT_TARGET,
    confidence: float = DEFAULT_CONFIDENCE,
    now: datetime | None = None,
) -> list[AccuracyEstimate]:
    """One estimate per pipeline version with reviewed samples in the window."""
    span = _window(window)
    since = (now or datetime.now(UTC)) - span
    total: Counter[str] = Counter()
    right: Counter[str] = Counter()
    for version, status in store.samples.verdicts(pipeline, since):
        total[version] += 1
        right[version] += status == "correct"
    hours = span.total_seconds() / 3600
    return [
        estimate(
            pipeline,
            v,
            right[v],
            total[v],
            target=target,
            window_hours=hours,
            confidence=confidence,
        )
        for v in sorted(total)
    ]
