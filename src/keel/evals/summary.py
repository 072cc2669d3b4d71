"""A run's results reduced to per-metric estimates, pass@k / pass^k, costs and aggregates."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from keel.core.dataset import DatasetItem
from keel.core.trial import TRIAL_TIMEOUT, TrialResult
from keel.evals import stats
from keel.evals.evaluators.base import Evaluator, Metric

SUCCESS = Metric("success", "pass", description="trial finished without error or timeout")


def _money(value: Decimal) -> str:
    return f"{value.normalize():f}"


def metrics_of(evaluators: Iterable[Evaluator]) -> dict[str, Metric]:
    """Every metric the evaluators produce, plus ``success``, by name."""
    found = {SUCCESS.name: SUCCESS}
    for evaluator in evaluators:
        for metric in evaluator.metrics:
            found[metric.name] = metric
    return found


def metric_from_dict(name: str, data: Mapping[str, Any]) -> Metric:
    return Metric(
        name,
        data.get("kind", "score"),
        bool(data.get("higher_is_better", True)),
        gated=bool(data.get("gated", True)),
    )


def values_by_item(results: Iterable[TrialResult], metric: Metric) -> dict[str, list[float]]:
    """Each item's trial values. A failed trial counts as 0 on pass metrics (a fault is a
    failure) and is left out of score metrics; None (not applicable) is left out."""
    values: dict[str, list[float]] = defaultdict(list)
    for result in results:
        if metric.name == SUCCESS.name:
            value: float | None = 1.0 if result.ok else 0.0
        elif not result.ok:
            value = 0.0 if metric.kind == "pass" else None
        else:
            value = result.scores.get(metric.name)
        if value is not None:
            values[result.item_id].append(float(value))
    return dict(values)


def _metric_summary(
    results: Sequence[TrialResult], metric: Metric, repeats: int, resamples: int
) -> dict[str, Any]:
    per_item = values_by_item(results, metric)
    est = stats.estimate(list(per_item.values()), binary=metric.kind == "pass", resamples=resamples)
    body: dict[str, Any] = est.to_dict() | {
        "kind": metric.kind,
        "higher_is_better": metric.higher_is_better,
        "gated": metric.gated,
    }
    if metric.kind == "pass" and repeats > 1:
        pk = stats.mean_pass_k(list(per_item.values()), repeats)
        if pk is not None:
            body["pass_at_k"], body["pass_hat_k"], body["k"] = pk[0], pk[1], repeats
    return body


def summarize(
    results: Sequence[TrialResult],
    evaluators: Sequence[Evaluator],
    items: Sequence[DatasetItem],
    *,
    repeats: int,
    resamples: int = stats.RESAMPLES,
) -> dict[str, Any]:
    metrics = metrics_of(evaluators)
    summary: dict[str, Any] = {
        "trials": len(results),
        "items": len({r.item_id for r in results}),
        "errors": sum(1 for r in results if not r.ok),
        "timeouts": sum(1 for r in results if r.status == TRIAL_TIMEOUT),
        "cost_usd": _money(sum((r.cost_usd for r in results), Decimal(0))),
        "judge_cost_usd": _money(
            sum((Decimal(str(r.details.get("judge_cost_usd", 0))) for r in results), Decimal(0))
        ),
        "judge_tokens": sum(
            int(r.details.get("judge_input_tokens", 0))
            + int(r.details.get("judge_output_tokens", 0))
            for r in results
        ),
        "metrics": {
            name: _metric_summary(results, metric, repeats, resamples)
            for name, metric in metrics.items()
        },
    }
    aggregates = {}
    for evaluator in evaluators:
        aggregate = getattr(evaluator, "aggregate", None)
        if callable(aggregate):
            aggregates[evaluator.name] = aggregate(items, results)
    summary["aggregates"] = aggregates
    return summary
