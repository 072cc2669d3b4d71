"""Per-arm summaries and arm-versus-control comparisons for the A/B report."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from keel.deploy.judge.metrics import finite_or_none
from keel.deploy.judge.proportions import newcombe, two_proportion_p, wilson
from keel.deploy.judge.ranks import FloatArray, as_clean_array, mann_whitney
from keel.deploy.judge.sequential import SequentialTest, msprt
from keel.deploy.judge.spec import ArmObservations, MetricSpec

Sequential = Literal["better", "worse", "inconclusive"]


@dataclass(frozen=True, slots=True)
class ArmSummary:
    """One arm's value for one metric: mean (t interval) or rate (Wilson interval)."""

    arm: str
    metric: str
    n: int
    value: float
    low: float | None
    high: float | None
    method: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "arm": self.arm,
            "metric": self.metric,
            "n": self.n,
            "value": finite_or_none(self.value),
            "low": finite_or_none(self.low),
            "high": finite_or_none(self.high),
            "method": self.method,
        }


@dataclass(frozen=True, slots=True)
class ArmComparison:
    """One treatment arm against the control on one metric.

    ``difference``/``ci_low``/``ci_high``/``p_value`` are fixed-horizon (Hodges-Lehmann
    shift or difference of rates); ``mean_difference``, ``always_valid_p``,
    ``cs_low``/``cs_high`` and ``sequential`` come from the always-valid mSPRT. With
    several treatment arms the report fills ``p_adjusted`` and ``always_valid_p_adjusted``
    (Holm across the arms, per metric) and ``significant``/``sequential`` follow those.
    """

    arm: str
    control: str
    metric: str
    kind: str
    n_arm: int
    n_control: int
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    significant: bool
    mean_difference: float
    always_valid_p: float | None
    cs_low: float | None
    cs_high: float | None
    sequential: Sequential
    p_adjusted: float | None = None
    always_valid_p_adjusted: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "arm": self.arm,
            "control": self.control,
            "metric": self.metric,
            "kind": self.kind,
            "n_arm": self.n_arm,
            "n_control": self.n_control,
            "difference": finite_or_none(self.difference),
            "ci_low": finite_or_none(self.ci_low),
            "ci_high": finite_or_none(self.ci_high),
            "p_value": finite_or_none(self.p_value),
            "significant": self.significant,
            "mean_difference": finite_or_none(self.mean_difference),
            "always_valid_p": finite_or_none(self.always_valid_p),
            "cs_low": finite_or_none(self.cs_low),
            "cs_high": finite_or_none(self.cs_high),
            "sequential": self.sequential,
            "p_adjusted": finite_or_none(self.p_adjusted),
            "always_valid_p_adjusted": finite_or_none(self.always_valid_p_adjusted),
        }


def _values(obs: ArmObservations, name: str) -> FloatArray | None:
    if name not in obs.continuous:
        return None
    return as_clean_array(obs.continuous[name])


def summarise(
    arm: str, obs: ArmObservations, spec: MetricSpec, alpha: float
) -> tuple[ArmSummary, ...]:
    """The arm's summary for ``spec`` (empty when the arm has no data for it)."""
    from scipy import stats  # deferred: scipy is large and the server does not need it to start

    if spec.kind == "proportion":
        if spec.name not in obs.events or obs.events[spec.name][1] <= 0:
            return ()
        bad, total = (int(x) for x in obs.events[spec.name])
        low, high = wilson(bad, total, 1 - alpha)
        return (ArmSummary(arm, spec.name, total, bad / total, low, high, "wilson"),)
    values = _values(obs, spec.name)
    if values is None or values.size == 0:
        return ()
    mean = float(values.mean())
    if values.size < 2:
        return (ArmSummary(arm, spec.name, 1, mean, None, None, "mean"),)
    half = (
        float(stats.t.ppf(1 - alpha / 2, values.size - 1))
        * float(values.std(ddof=1))
        / math.sqrt(values.size)
    )
    return (ArmSummary(arm, spec.name, values.size, mean, mean - half, mean + half, "mean/t"),)


def _direction(spec: MetricSpec, test: SequentialTest | None, alpha: float) -> Sequential:
    if test is None:
        return "inconclusive"
    return direction(spec, test.estimate, test.always_valid_p, alpha)


def direction(spec: MetricSpec, estimate: float, p_value: float | None, alpha: float) -> Sequential:
    """Better, worse or inconclusive: a change shown at ``alpha``, judged by its sign."""
    if p_value is None or p_value >= alpha or estimate == 0:
        return "inconclusive"
    went_up = estimate > 0
    bad = went_up if spec.bad_direction == "increase" else not went_up
    return "worse" if bad else "better"


_PROPORTION_TAU_FLOOR = 0.01


def _default_tau(spec: MetricSpec, control_level: float, control_sd: float) -> float:
    """Mixture sd: the effect size worth detecting, from the metric's own tolerances.

    For proportions the floor is one percentage point: a control that has shown no bad
    events yet (an error rate of 0) must not shrink the mixture to nothing, which would
    leave the test blind even to a jump from 0 % to 40 %. Any fixed ``tau`` keeps the
    always-valid guarantee; it only moves where the test has its power.
    """
    if spec.kind == "proportion":
        return max(0.2 * control_level, spec.max_increase or 0.0, _PROPORTION_TAU_FLOOR)
    scale = abs(control_level) if control_level != 0 else control_sd
    return max((spec.allowed_ratio - 1) * scale, 0.05 * control_sd, 1e-12)


def _continuous(
    spec: MetricSpec, arm: FloatArray, control: FloatArray, alpha: float, tau: float | None
) -> tuple[float, float, float, float, SequentialTest | None]:
    fixed = mann_whitney(control, arm, 1 - alpha)
    theta = float(arm.mean() - control.mean())
    variance = float(arm.var(ddof=1) / arm.size + control.var(ddof=1) / control.size)
    enough = min(arm.size, control.size) >= spec.min_samples
    mix = tau or _default_tau(spec, float(control.mean()), float(control.std(ddof=1)))
    seq = msprt(theta, variance, mix, alpha) if enough else None
    return fixed.estimate, fixed.low, fixed.high, fixed.p_value, seq


def compare_arms(
    arm: str,
    obs: ArmObservations,
    control: str,
    control_obs: ArmObservations,
    spec: MetricSpec,
    alpha: float,
    tau: float | None = None,
) -> tuple[ArmComparison, ...]:
    """Fixed-horizon and always-valid comparison of ``arm`` with ``control`` on ``spec``."""
    if spec.kind == "proportion":
        if spec.name not in obs.events or spec.name not in control_obs.events:
            return ()
        bad_a, n_a = (int(x) for x in obs.events[spec.name])
        bad_c, n_c = (int(x) for x in control_obs.events[spec.name])
        if n_a <= 0 or n_c <= 0:
            return ()
        diff, low, high = newcombe(bad_a, n_a, bad_c, n_c, 1 - alpha)
        p_value = two_proportion_p(bad_a, n_a, bad_c, n_c)
        rate_a, rate_c = bad_a / n_a, bad_c / n_c
        variance = rate_a * (1 - rate_a) / n_a + rate_c * (1 - rate_c) / n_c
        mix = tau or _default_tau(spec, rate_c, 0.0)
        enough = min(n_a, n_c) >= spec.min_samples
        seq = msprt(diff, variance, mix, alpha) if enough else None
        theta = diff
    else:
        values_a, values_c = _values(obs, spec.name), _values(control_obs, spec.name)
        if values_a is None or values_c is None or min(values_a.size, values_c.size) < 2:
            return ()
        n_a, n_c = values_a.size, values_c.size
        diff, low, high, p_value, seq = _continuous(spec, values_a, values_c, alpha, tau)
        theta = float(values_a.mean() - values_c.mean())
    return (
        ArmComparison(
            arm=arm,
            control=control,
            metric=spec.name,
            kind=spec.kind,
            n_arm=n_a,
            n_control=n_c,
            difference=diff,
            ci_low=low,
            ci_high=high,
            p_value=p_value,
            significant=p_value < alpha,
            mean_difference=theta,
            always_valid_p=None if seq is None else seq.always_valid_p,
            cs_low=None if seq is None else seq.low,
            cs_high=None if seq is None else seq.high,
            sequential=_direction(spec, seq, alpha),
        ),
    )
