"""The CI gate: each metric against the baseline run (paired) and against absolute thresholds.

A metric *regresses* when the paired comparison on the items both runs share is significant
at ``alpha`` and points the worse way (lower for higher-is-better metrics). A metric *fails
its threshold* when its mean is on the wrong side of the threshold. The gate fails when a
metric fails its threshold, or regresses and is gated (quality metrics are; latency and cost
are reported, and gated only through thresholds).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from keel.core.errors import InvalidInputError
from keel.core.trial import TrialResult
from keel.evals import stats
from keel.evals.evaluators.base import Metric
from keel.evals.summary import metric_from_dict, values_by_item
from keel.store.eval_runs import EvalRun

PASS = "pass"  # noqa: S105 (a verdict, not a password)
REGRESSED = "regressed"
IMPROVED = "improved"
BELOW_THRESHOLD = "below_threshold"
ABOVE_THRESHOLD = "above_threshold"  # for lower-is-better metrics


@dataclass(frozen=True, slots=True)
class MetricVerdict:
    metric: Metric
    estimate: dict[str, Any]
    comparison: stats.Comparison | None = None
    threshold: float | None = None
    verdicts: tuple[str, ...] = ()
    sample_size_hint: int | None = None
    adjusted_p: float | None = None

    @property
    def failed(self) -> bool:
        regressed = REGRESSED in self.verdicts and self.metric.gated
        return regressed or BELOW_THRESHOLD in self.verdicts or ABOVE_THRESHOLD in self.verdicts

    @property
    def status(self) -> str:
        if not self.verdicts:
            return PASS
        shown = [
            f"{v} (not gated)" if v == REGRESSED and not self.metric.gated else v
            for v in self.verdicts
        ]
        return ", ".join(shown)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric.name,
            "kind": self.metric.kind,
            "higher_is_better": self.metric.higher_is_better,
            "estimate": self.estimate,
            "comparison": self.comparison.to_dict() if self.comparison else None,
            "threshold": self.threshold,
            "status": self.status,
            "failed": self.failed,
            "sample_size_hint": self.sample_size_hint,
            "adjusted_p": self.adjusted_p,
        }


@dataclass(frozen=True, slots=True)
class GateReport:
    run: EvalRun
    baseline: EvalRun | None
    metrics: list[MetricVerdict] = field(default_factory=list)
    alpha: float = 0.05

    @property
    def failed(self) -> bool:
        return any(m.failed for m in self.metrics)

    def failures(self) -> list[str]:
        return [f"{m.metric.name} {m.status}" for m in self.metrics if m.failed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run.to_dict(),
            "baseline": self.baseline.run_id if self.baseline else None,
            "alpha": self.alpha,
            "failed": self.failed,
            "metrics": [m.to_dict() for m in self.metrics],
        }


def parse_thresholds(pairs: Sequence[str]) -> dict[str, float]:
    """``metric=value`` pairs, e.g. ``accuracy=0.8`` or ``latency_ms=2000``."""
    out: dict[str, float] = {}
    for pair in pairs:
        name, eq, value = pair.partition("=")
        try:
            out[name.strip()] = float(value)
        except ValueError:
            eq = ""
        if not eq or not name.strip():
            msg = f"--threshold {pair!r}: write METRIC=NUMBER, e.g. accuracy=0.8"
            raise InvalidInputError(msg, code="threshold_invalid")
    return out


def _hint(comparison: stats.Comparison) -> int | None:
    """Items needed to detect the observed difference (if it was not detected)."""
    if comparison.significant() or comparison.diff == 0 or comparison.effect_size is None:
        return None
    sd = abs(comparison.diff / comparison.effect_size)
    return stats.sample_size(comparison.diff, sd)


def _comparisons(
    metrics: Mapping[str, Metric],
    results: Sequence[TrialResult],
    baseline: EvalRun | None,
    baseline_results: Sequence[TrialResult],
    resamples: int,
) -> dict[str, stats.Comparison]:
    if baseline is None:
        return {}
    known = (baseline.summary or {}).get("metrics", {})
    return {
        name: stats.compare(
            values_by_item(baseline_results, metric),
            values_by_item(results, metric),
            resamples=resamples,
        )
        for name, metric in metrics.items()
        if name in known
    }


def evaluate_gate(
    run: EvalRun,
    results: Sequence[TrialResult],
    baseline: EvalRun | None = None,
    baseline_results: Sequence[TrialResult] = (),
    *,
    thresholds: Mapping[str, float] | None = None,
    alpha: float = 0.05,
    resamples: int = stats.RESAMPLES,
) -> GateReport:
    thresholds = dict(thresholds or {})
    summary = (run.summary or {}).get("metrics", {})
    unknown = sorted(set(thresholds) - set(summary))
    if unknown:
        msg = f"threshold on unknown metric(s) {', '.join(unknown)}; run has {', '.join(summary)}"
        raise InvalidInputError(msg, code="threshold_metric_unknown")
    metrics = {name: metric_from_dict(name, est) for name, est in summary.items()}
    comparisons = _comparisons(metrics, results, baseline, baseline_results, resamples)
    # Gated metrics are tested together: Holm's adjustment keeps the gate's overall false
    # alarm rate at alpha however many metrics it watches.
    adjusted = stats.holm({n: c.p_value for n, c in comparisons.items() if metrics[n].gated})
    report = GateReport(run, baseline, alpha=alpha)
    for name, estimate in summary.items():
        metric, comparison = metrics[name], comparisons.get(name)
        verdicts: list[str] = []
        p_value = adjusted.get(name, comparison.p_value if comparison else None)
        if (
            comparison is not None
            and p_value is not None
            and comparison.n_pairs
            and p_value < alpha
        ):
            worse = comparison.diff < 0 if metric.higher_is_better else comparison.diff > 0
            verdicts.append(REGRESSED if worse else IMPROVED)
        threshold = thresholds.get(name)
        mean = estimate.get("mean")
        if threshold is not None and mean is not None:
            below = mean < threshold if metric.higher_is_better else mean > threshold
            if below:
                verdicts.append(BELOW_THRESHOLD if metric.higher_is_better else ABOVE_THRESHOLD)
        hint = _hint(comparison) if comparison is not None else None
        report.metrics.append(
            MetricVerdict(metric, estimate, comparison, threshold, tuple(verdicts), hint, p_value)
        )
    return report
