"""The A/B report: per-arm metrics, sample-ratio check, significance and a recommendation.

Two kinds of evidence sit side by side and must not be confused:

* fixed-horizon statistics (Mann-Whitney with the Hodges-Lehmann interval, Newcombe's
  interval with a two-proportion test) describe the data *as if* this were the only look;
* an always-valid test (normal-mixture mSPRT on the difference of means or rates, see
  ``sequential.py``) stays valid however often the report is read.

Only the always-valid test decides ``safe_to_promote``: an arm is safe when the split shows
no sample-ratio mismatch, no metric is worse and at least one is better. The sample-ratio
check is Pearson's chi-square of assigned requests against the expected split (any number
of arms, k - 1 degrees of freedom), flagged at p < 0.001 (Kohavi, Tang & Xu 2020).

With several treatment arms each metric is tested once per arm, so both kinds of p-value
are Holm-adjusted across the arms for each metric (Holm 1979: step-down, controls the
family-wise error at ``alpha``); ``significant`` and the always-valid direction use the
adjusted values. Always-valid p-values stay valid at any stopping time, so their Holm
adjustment does too. Intervals are shown unadjusted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from keel.core.errors import InvalidInputError
from keel.deploy.judge.ab_stats import (
    ArmComparison,
    ArmSummary,
    compare_arms,
    direction,
    summarise,
)
from keel.deploy.judge.spec import DATA_ERROR, ArmObservations, JudgePolicy

SRM_ALPHA = 0.001


@dataclass(frozen=True, slots=True)
class SampleRatio:
    """Pearson chi-square of observed arm sizes against the expected split."""

    observed: Mapping[str, int]
    expected_share: Mapping[str, float]
    chi2: float
    p_value: float
    flagged: bool

    def to_dict(self) -> dict[str, Any]:
        return {
            "observed": dict(self.observed),
            "expected_share": dict(self.expected_share),
            "chi2": self.chi2,
            "p_value": self.p_value,
            "flagged": self.flagged,
        }


def sample_ratio_check(
    observed: Mapping[str, int], expected_split: Mapping[str, float], alpha: float = SRM_ALPHA
) -> SampleRatio:
    """Chi-square goodness of fit of arm sizes to ``expected_split`` (any positive scale)."""
    from scipy import stats  # deferred: scipy is large and the server does not need it to start

    names = list(expected_split)
    total_share = float(sum(expected_split.values()))
    shares = {n: float(expected_split[n]) / total_share for n in names}
    counts = np.array([observed[n] for n in names], dtype=np.float64)
    total = counts.sum()
    if total <= 0 or len(names) < 2:
        return SampleRatio(dict(observed), shares, 0.0, 1.0, False)
    expected = np.array([shares[n] for n in names]) * total
    chi2, p_value = stats.chisquare(counts, expected)
    return SampleRatio(
        {n: int(observed[n]) for n in names},
        shares,
        float(chi2),
        float(p_value),
        bool(p_value < alpha),
    )


@dataclass(frozen=True, slots=True)
class ABReport:
    """Everything an experiment owner needs to decide, and whether promotion is safe."""

    control: str
    arms: tuple[str, ...]
    summaries: tuple[ArmSummary, ...]
    comparisons: tuple[ArmComparison, ...]
    sample_ratio: SampleRatio
    alpha: float
    safe_to_promote: bool
    promote_arm: str | None
    recommendation: str
    notes: tuple[str, ...] = field(default_factory=tuple)

    def comparison(self, arm: str, metric: str) -> ArmComparison:
        for c in self.comparisons:
            if c.arm == arm and c.metric == metric:
                return c
        raise KeyError((arm, metric))

    def to_dict(self) -> dict[str, Any]:
        return {
            "control": self.control,
            "arms": list(self.arms),
            "alpha": self.alpha,
            "sample_ratio": self.sample_ratio.to_dict(),
            "summaries": [s.to_dict() for s in self.summaries],
            "comparisons": [c.to_dict() for c in self.comparisons],
            "safe_to_promote": self.safe_to_promote,
            "promote_arm": self.promote_arm,
            "recommendation": self.recommendation,
            "notes": list(self.notes),
        }


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input's order (monotone, at most 1)."""
    clean = [p if math.isfinite(p) else 1.0 for p in p_values]
    order = sorted(range(len(clean)), key=lambda i: clean[i])
    adjusted = [1.0] * len(clean)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(clean) - rank) * clean[index]))
        adjusted[index] = running
    return adjusted


def _adjusted(
    comparisons: tuple[ArmComparison, ...], policy: JudgePolicy, alpha: float
) -> tuple[ArmComparison, ...]:
    """Holm across the treatment arms, per metric, for both kinds of p-value."""
    found = list(comparisons)
    for spec in policy.metrics:
        family = [i for i, c in enumerate(found) if c.metric == spec.name]
        fixed = holm([found[i].p_value for i in family])
        valid = [i for i in family if found[i].always_valid_p is not None]
        always = dict(
            zip(valid, holm([found[i].always_valid_p or 1.0 for i in valid]), strict=True)
        )
        for i, p_fixed in zip(family, fixed, strict=True):
            c = found[i]
            p_valid = always.get(i)
            found[i] = replace(
                c,
                p_adjusted=p_fixed,
                always_valid_p_adjusted=p_valid,
                significant=p_fixed < alpha,
                sequential=direction(spec, c.mean_difference, p_valid, alpha),
            )
    return tuple(found)


def _check_arms(arms: Mapping[str, ArmObservations], split: Mapping[str, float]) -> None:
    if len(split) < 2:
        raise InvalidInputError("an A/B report needs at least two arms", code=DATA_ERROR)
    if set(arms) != set(split):
        raise InvalidInputError(
            f"arms {sorted(arms)} do not match the expected split {sorted(split)}",
            code=DATA_ERROR,
        )
    bad = [n for n, share in split.items() if not (math.isfinite(share) and share > 0)]
    if bad:
        raise InvalidInputError(
            f"expected split must be positive for every arm; check {', '.join(bad)}",
            code=DATA_ERROR,
        )


def _verdicts(comparisons: tuple[ArmComparison, ...], arm: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {"better": [], "worse": []}
    for c in comparisons:
        if c.arm == arm and c.sequential in found:
            found[c.sequential].append(c.metric)
    return found


def _recommend(
    control: str, treatments: list[str], comparisons: tuple[ArmComparison, ...], srm: SampleRatio
) -> tuple[bool, str | None, str]:
    if srm.flagged:
        return (
            False,
            None,
            (
                f"sample ratio mismatch (chi-square p={srm.p_value:.2g}): the observed split "
                f"{dict(srm.observed)} does not match the expected one; assignment or logging is "
                "broken, so no result here can be trusted"
            ),
        )
    scored = [(arm, _verdicts(comparisons, arm)) for arm in treatments]
    safe = [(arm, v) for arm, v in scored if v["better"] and not v["worse"]]
    if safe:
        arm, v = max(safe, key=lambda item: len(item[1]["better"]))
        return (
            True,
            arm,
            (
                f"promote {arm}: better than {control} on {', '.join(v['better'])} "
                "by an always-valid test, and worse on none"
            ),
        )
    worse = [(arm, v["worse"]) for arm, v in scored if v["worse"]]
    if worse:
        parts = "; ".join(f"{arm} is worse on {', '.join(m)}" for arm, m in worse)
        return False, None, f"keep {control}: {parts}"
    fixed = sorted({c.metric for c in comparisons if c.significant})
    tail = (
        f" (fixed-horizon p-values are below alpha on {', '.join(fixed)}, but they are not "
        "valid under repeated looks)"
        if fixed
        else ""
    )
    return False, None, f"keep collecting: no difference shown by the always-valid test yet{tail}"


def ab_report(
    arms: Mapping[str, ArmObservations],
    expected_split: Mapping[str, float],
    policy: JudgePolicy,
    *,
    control: str | None = None,
    alpha: float | None = None,
    mixture_sd: Mapping[str, float] | None = None,
) -> ABReport:
    """Compare every arm with the control (the first arm of ``expected_split`` by default).

    ``alpha`` defaults to ``1 - policy.confidence``; it sets both the fixed-horizon
    intervals and the always-valid test's threshold. ``mixture_sd`` sets, per metric, the
    mSPRT's mixture standard deviation (the absolute effect size worth detecting); by
    default it follows the metric's tolerances (see ``ab_stats._default_tau``).
    """
    _check_arms(arms, expected_split)
    names = list(expected_split)
    control_name = names[0] if control is None else control
    if control_name not in arms:
        raise InvalidInputError(f"control arm {control_name!r} is not an arm", code=DATA_ERROR)
    level = 1 - policy.confidence if alpha is None else alpha
    if not 0 < level < 1:
        raise InvalidInputError("alpha must be in (0, 1)", code=DATA_ERROR)
    taus = dict(mixture_sd or {})
    srm = sample_ratio_check({n: arms[n].size() for n in names}, expected_split)
    summaries = tuple(
        s for n in names for spec in policy.metrics for s in summarise(n, arms[n], spec, level)
    )
    treatments = [n for n in names if n != control_name]
    comparisons = tuple(
        c
        for n in treatments
        for spec in policy.metrics
        for c in compare_arms(
            n, arms[n], control_name, arms[control_name], spec, level, taus.get(spec.name)
        )
    )
    comparisons = _adjusted(comparisons, policy, level)
    safe, arm, recommendation = _recommend(control_name, treatments, comparisons, srm)
    notes = (
        "safe_to_promote uses only the always-valid mSPRT; fixed-horizon p-values are shown "
        "for reading, never for deciding",
    )
    return ABReport(
        control=control_name,
        arms=tuple(names),
        summaries=summaries,
        comparisons=comparisons,
        sample_ratio=srm,
        alpha=level,
        safe_to_promote=safe,
        promote_arm=arm,
        recommendation=recommendation,
        notes=notes,
    )
