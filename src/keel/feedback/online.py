"""Online evaluation: the eval runner's evaluators score sampled production answers.

Production traffic has no expected answers, so only reference-free metrics say something
(JSON-schema validity, regex, safety, judge rubrics, RAG faithfulness, latency, cost); a
metric that needs a reference scores None and is left out. Scores are stored per trace and
metric, and summarized per pipeline version: pass metrics as a rate with a Wilson interval,
score metrics as a mean with a BCa bootstrap interval.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from keel.core.dataset import DatasetItem
from keel.core.errors import ConfigError
from keel.evals.evaluators.base import Case, Evaluator
from keel.evals.stats import bca_mean, wilson
from keel.store.samples import OnlineScore

if TYPE_CHECKING:
    from keel.pipeline.runner import RunResult
    from keel.settings import OnlineEvalSettings
    from keel.store import Store

log = logging.getLogger("keel.online")
ONLINE_RESAMPLES = 1000


class OnlineScorer:
    """Scores runs of the configured pipelines; evaluators are built once, up front."""

    def __init__(
        self,
        configs: Sequence[OnlineEvalSettings],
        build: Callable[[str], Evaluator] | None = None,
    ) -> None:
        self._rates = {c.pipeline: c.sample_rate for c in configs}
        self._evaluators: dict[str, list[Evaluator]] = {}
        for config in configs:
            if build is None:
                raise ConfigError("online evaluators need an evaluator registry")
            self._evaluators[config.pipeline] = [build(spec) for spec in config.evaluators]

    def rate(self, pipeline: str) -> float:
        return self._rates.get(pipeline, 0.0)

    async def score(self, result: RunResult, data: Any) -> list[OnlineScore]:
        item = DatasetItem(item_id=result.trace_id, input=data)
        case = Case.of_run(item, result)
        now = datetime.now(UTC)
        scores: list[OnlineScore] = []
        for evaluator in self._evaluators.get(result.pipeline, ()):
            try:
                scored = await evaluator.evaluate(case)
            except Exception as exc:  # a broken evaluator loses its scores, not the others'
                log.warning("online evaluator %s failed: %s", evaluator.name, exc)
                continue
            for metric in evaluator.metrics:
                value = scored.scores.get(metric.name)
                scores.append(
                    OnlineScore(
                        result.trace_id,
                        metric.name,
                        result.pipeline,
                        result.version,
                        evaluator.name,
                        metric.kind,
                        None if value is None else float(value),
                        now,
                    )
                )
        return scores


@dataclass(frozen=True, slots=True)
class MetricSummary:
    version: str
    metric: str
    evaluator: str
    kind: str
    n: int
    mean: float | None
    low: float | None
    high: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize_scores(
    scores: Sequence[OnlineScore], confidence: float = 0.95
) -> list[MetricSummary]:
    """Per version and metric: how many traces scored, the mean and its interval."""
    groups: dict[tuple[str, str, str, str], list[float]] = defaultdict(list)
    for score in scores:
        key = (score.pipeline_version, score.metric, score.evaluator, score.kind)
        values = groups[key]
        if score.value is not None:
            values.append(score.value)
    summaries = []
    for (version, metric, evaluator, kind), values in sorted(groups.items()):
        n = len(values)
        mean = sum(values) / n if n else None
        low = high = None
        if n and kind == "pass":
            low, high = wilson(sum(values), n, confidence)
        elif n >= 2:
            low, high = bca_mean(values, confidence, resamples=ONLINE_RESAMPLES)
        summaries.append(MetricSummary(version, metric, evaluator, kind, n, mean, low, high))
    return summaries


def online_summary(
    store: Store,
    pipeline: str,
    *,
    version: str | None = None,
    since: datetime | None = None,
    confidence: float = 0.95,
) -> list[MetricSummary]:
    scores = store.samples.scores(pipeline=pipeline, version=version, since=since)
    return summarize_scores(scores, confidence)
