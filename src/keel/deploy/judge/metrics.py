"""Classifying one metric of a canary against its baseline: pass, high, low or nodata.

Kayenta's rule, per kind (see :class:`~keel.deploy.judge.spec.MetricSpec`): a metric is
*high* only if its interval for the change (canary - baseline) lies above the dead zone,
``dead_zone x |estimate|``, *and* the size of the change passes the kind's effect gate
(ratio of means for continuous metrics, the absolute increase for proportions, the mean
difference for paired scores). *Low* is symmetric. Only the bad direction can fail: a
faster canary passes. Too few observations on either side is *nodata*.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import numpy as np

from keel.deploy.judge.paired import paired_test
from keel.deploy.judge.proportions import newcombe, two_proportion_p, wilson
from keel.deploy.judge.ranks import FloatArray, as_clean_array, mann_whitney, trim_outliers
from keel.deploy.judge.spec import ArmObservations, MetricSpec, Values

Outcome = Literal["pass", "high", "low", "nodata"]


def finite_or_none(value: float | None) -> float | None:
    """A float for JSON: NaN and infinities become None."""
    if value is None or not math.isfinite(value):
        return None
    return float(value)


@dataclass(frozen=True, slots=True)
class MetricResult:
    """One metric's classification with the evidence behind it.

    ``baseline``/``canary`` summarise each arm (mean for continuous metrics, rate for
    proportions; None for paired scores, whose evidence is the differences). ``estimate``
    and ``ci_low``/``ci_high`` describe the change canary - baseline: the Hodges-Lehmann
    shift, the difference in rates, or the mean paired difference. ``cap_confirmed`` is
    set for capped proportions: True when the interval shows the canary within its caps.
    """

    name: str
    kind: str
    outcome: Outcome
    critical: bool
    group: str
    n_baseline: int
    n_canary: int
    baseline: float | None = None
    canary: float | None = None
    ratio: float | None = None
    estimate: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    method: str = ""
    reason: str = ""
    required: bool = True
    cap_confirmed: bool | None = None
    details: Mapping[str, float | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))

    @property
    def failed(self) -> bool:
        return self.outcome in ("high", "low")

    @property
    def counted(self) -> bool:
        return self.outcome != "nodata"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "outcome": self.outcome,
            "critical": self.critical,
            "group": self.group,
            "required": self.required,
            "n_baseline": self.n_baseline,
            "n_canary": self.n_canary,
            "baseline": finite_or_none(self.baseline),
            "canary": finite_or_none(self.canary),
            "ratio": finite_or_none(self.ratio),
            "estimate": finite_or_none(self.estimate),
            "ci_low": finite_or_none(self.ci_low),
            "ci_high": finite_or_none(self.ci_high),
            "p_value": finite_or_none(self.p_value),
            "method": self.method,
            "reason": self.reason,
            "cap_confirmed": self.cap_confirmed,
            "details": {k: finite_or_none(v) for k, v in self.details.items()},
        }


def _nodata(spec: MetricSpec, n_baseline: int, n_canary: int, why: str) -> MetricResult:
    return MetricResult(
        spec.name,
        spec.kind,
        "nodata",
        spec.critical,
        spec.group,
        n_baseline,
        n_canary,
        reason=why,
        required=spec.required,
    )


def _too_few(spec: MetricSpec, n_baseline: int, n_canary: int) -> MetricResult | None:
    if min(n_baseline, n_canary) >= spec.min_samples:
        return None
    why = (
        f"too little data: {n_baseline} baseline and {n_canary} canary observations, "
        f"{spec.min_samples} needed on each side"
    )
    return _nodata(spec, n_baseline, n_canary, why)


def _direction(
    spec: MetricSpec, low: float, high: float, estimate: float, gate_up: bool, gate_down: bool
) -> Outcome:
    """High/low per Kayenta: the interval clears the dead zone and the effect gate holds."""
    zone = spec.dead_zone * abs(estimate)
    if spec.bad_direction == "increase" and low > zone and gate_up:
        return "high"
    if spec.bad_direction == "decrease" and high < -zone and gate_down:
        return "low"
    return "pass"


def _outcome_reason(outcome: Outcome, what: str) -> str:
    if outcome == "pass":
        return f"no change beyond tolerance ({what})"
    return f"canary is significantly {'higher' if outcome == 'high' else 'lower'} ({what})"


def _continuous(
    spec: MetricSpec, base: FloatArray, can: FloatArray, confidence: float, trim: bool
) -> MetricResult:
    if trim:
        base, can = trim_outliers(base), trim_outliers(can)
    short = _too_few(spec, base.size, can.size)
    if short is not None:
        return short
    test = mann_whitney(base, can, confidence)
    base_mean, can_mean = float(base.mean()), float(can.mean())
    ratio = can_mean / base_mean if base_mean != 0 else 1.0
    outcome = _direction(
        spec,
        test.low,
        test.high,
        test.estimate,
        gate_up=ratio >= spec.allowed_ratio,
        gate_down=ratio <= 1 / spec.allowed_ratio,
    )
    what = f"shift {test.estimate:+.4g} [{test.low:+.4g}, {test.high:+.4g}], mean ratio {ratio:.3f}"
    return MetricResult(
        spec.name,
        spec.kind,
        outcome,
        spec.critical,
        spec.group,
        base.size,
        can.size,
        baseline=base_mean,
        canary=can_mean,
        ratio=ratio,
        estimate=test.estimate,
        ci_low=test.low,
        ci_high=test.high,
        p_value=test.p_value,
        method="mann-whitney/hodges-lehmann",
        reason=_outcome_reason(outcome, what),
        required=spec.required,
        details={"baseline_median": float(np.median(base)), "canary_median": float(np.median(can))},
    )


def _cap_check(
    spec: MetricSpec, can_wilson: tuple[float, float], diff_ci: tuple[float, float]
) -> tuple[bool, bool | None, str]:
    """Whether a cap is breached (with evidence), whether all caps are confirmed, and why."""
    breached, confirmed, why = False, None, ""
    if spec.max_rate is not None:
        breached = can_wilson[0] > spec.max_rate
        confirmed = can_wilson[1] <= spec.max_rate
        if breached:
            why = f"canary rate above the cap {spec.max_rate:g} (Wilson low {can_wilson[0]:.4g})"
    if spec.max_increase is not None:
        over = diff_ci[0] > spec.max_increase
        breached = breached or over
        confirmed = (confirmed is not False) and diff_ci[1] <= spec.max_increase
        if over and not why:
            why = f"increase above the allowed {spec.max_increase:g} (low {diff_ci[0]:+.4g})"
    return breached, confirmed, why


def _proportion(
    spec: MetricSpec, base: tuple[int, int], can: tuple[int, int], confidence: float
) -> MetricResult:
    (bad_b, n_b), (bad_c, n_c) = base, can
    short = _too_few(spec, n_b, n_c)
    if short is not None:
        return short
    diff, low, high = newcombe(bad_c, n_c, bad_b, n_b, confidence)
    rate_b, rate_c = bad_b / n_b, bad_c / n_c
    wilson_b, wilson_c = wilson(bad_b, n_b, confidence), wilson(bad_c, n_c, confidence)
    tolerance = spec.max_increase if spec.max_increase is not None else 0.0
    outcome = _direction(spec, low, high, diff, gate_up=diff > 0, gate_down=diff < 0)
    if outcome == "high" and low <= tolerance:
        outcome = "pass"  # significant, but within the allowed absolute increase
    breached, confirmed, cap_why = _cap_check(spec, wilson_c, (low, high))
    what = f"rate {rate_b:.4g} -> {rate_c:.4g}, difference {diff:+.4g} [{low:+.4g}, {high:+.4g}]"
    reason = _outcome_reason(outcome, what)
    if breached:
        outcome, reason = "high", f"{cap_why}; {what}"
    return MetricResult(
        spec.name,
        spec.kind,
        outcome,
        spec.critical,
        spec.group,
        n_b,
        n_c,
        baseline=rate_b,
        canary=rate_c,
        ratio=rate_c / rate_b if rate_b > 0 else None,
        estimate=diff,
        ci_low=low,
        ci_high=high,
        p_value=two_proportion_p(bad_c, n_c, bad_b, n_b),
        method="wilson/newcombe",
        reason=reason,
        required=spec.required,
        cap_confirmed=confirmed,
        details={
            "baseline_low": wilson_b[0],
            "baseline_high": wilson_b[1],
            "canary_low": wilson_c[0],
            "canary_high": wilson_c[1],
        },
    )


def _paired(spec: MetricSpec, diffs: FloatArray, confidence: float) -> MetricResult:
    short = _too_few(spec, diffs.size, diffs.size)
    if short is not None:
        return short
    test = paired_test(diffs, confidence)
    significant = test.p_value < 1 - confidence
    outcome = _direction(
        spec,
        test.low,
        test.high,
        test.mean,
        gate_up=significant and test.mean >= spec.min_effect,
        gate_down=significant and test.mean <= -spec.min_effect,
    )
    what = f"mean difference {test.mean:+.4g} [{test.low:+.4g}, {test.high:+.4g}]"
    return MetricResult(
        spec.name,
        spec.kind,
        outcome,
        spec.critical,
        spec.group,
        diffs.size,
        diffs.size,
        estimate=test.mean,
        ci_low=test.low,
        ci_high=test.high,
        p_value=test.p_value,
        method="wilcoxon-signed-rank/mean-t",
        reason=_outcome_reason(outcome, what),
        required=spec.required,
        details={"median_difference": test.median},
    )


def evaluate_metric(
    spec: MetricSpec,
    baseline: ArmObservations,
    canary: ArmObservations,
    paired: Mapping[str, Values],
    *,
    confidence: float,
    drop_outliers: bool,
) -> MetricResult:
    """Classify one metric from the two arms' observations (and paired differences)."""
    if spec.kind == "continuous":
        if spec.name not in baseline.continuous or spec.name not in canary.continuous:
            return _nodata(spec, 0, 0, "no values recorded for this metric")
        base = as_clean_array(baseline.continuous[spec.name])
        can = as_clean_array(canary.continuous[spec.name])
        return _continuous(spec, base, can, confidence, drop_outliers)
    if spec.kind == "proportion":
        if spec.name not in baseline.events or spec.name not in canary.events:
            return _nodata(spec, 0, 0, "no events recorded for this metric")
        bad_b, n_b = baseline.events[spec.name]
        bad_c, n_c = canary.events[spec.name]
        return _proportion(spec, (int(bad_b), int(n_b)), (int(bad_c), int(n_c)), confidence)
    if spec.name not in paired:
        return _nodata(spec, 0, 0, "no paired observations (is shadow traffic mirrored?)")
    return _paired(spec, as_clean_array(paired[spec.name]), confidence)
