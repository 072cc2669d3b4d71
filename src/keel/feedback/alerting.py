"""Sampled-review accuracy as an alert condition: one alert per pipeline, firing while the
Wilson interval of reviewed accuracy lies wholly below the pipeline's target.

Which pipelines are watched: those named in ``review_sample_rates`` or ``accuracy_targets``,
and every stored pipeline when ``review_sample_rate`` samples all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING

from keel.alerts.condition import AccuracyBelowTarget, Signal
from keel.feedback.accuracy import AccuracyEstimate, review_accuracy

if TYPE_CHECKING:
    from keel.settings import FeedbackSettings
    from keel.store import Store


def _known(found: AccuracyEstimate | None) -> AccuracyEstimate | None:
    return found


@dataclass(slots=True)
class ReviewAccuracyCondition:
    store: Store
    settings: FeedbackSettings

    def pipelines(self) -> list[str]:
        names = set(self.settings.review_sample_rates) | set(self.settings.accuracy_targets)
        if self.settings.review_sample_rate > 0:
            names |= {p.name for p in self.store.pipelines.list_pipelines()}
        return sorted(names)

    def estimate(self, pipeline: str, now: datetime) -> AccuracyEstimate | None:
        found = review_accuracy(
            self.store,
            pipeline,
            self.settings.accuracy_window_hours,
            target=self.settings.target(pipeline),
            confidence=self.settings.confidence,
            now=now,
        )
        return found if found.n else None  # nothing reviewed yet: no evidence either way

    def evaluate(self, now: datetime) -> list[Signal]:
        signals: list[Signal] = []
        for pipeline in self.pipelines():
            found = self.estimate(pipeline, now)
            signals += AccuracyBelowTarget(pipeline, partial(_known, found)).evaluate(now)
        return signals
