"""Statistics for evals: intervals on metric means, pass@k / pass^k, paired comparisons.

Items, not trials, are the unit of evidence (Miller 2024, "Adding Error Bars to Evals"):
repeated trials of one item are correlated, so every estimate first averages an item's
trials and then treats the item means as the sample ("clustered by item").

* continuous metrics: mean with a BCa bootstrap interval over item means;
* pass/fail metrics: Wilson interval; with repeats, on the effective sample size implied by
  the clustered standard error (n_eff = p(1-p)/se²);
* two runs on the same items: per-item differences, a BCa interval on their mean, a sign-flip
  permutation test for the p-value (exact under "no difference"), and Cohen's d_z;
* a sample-size hint: items needed to detect a difference with given power.

Everything here is pure computation over numbers; nothing touches the store.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 20240917  # fixed, so that the same results always give the same interval


@dataclass(frozen=True, slots=True)
class Estimate:
    """A metric's mean over items with its interval; bounds are None with under 2 items."""

    mean: float
    low: float | None
    high: float | None
    n_items: int
    n_trials: int
    method: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "mean": self.mean,
            "low": self.low,
            "high": self.high,
            "n_items": self.n_items,
            "n_trials": self.n_trials,
            "method": self.method,
        }


@dataclass(frozen=True, slots=True)
class Comparison:
    """Run B against run A on the items both answered; ``diff`` is mean(B - A)."""

    n_pairs: int
    mean_a: float
    mean_b: float
    diff: float
    low: float | None
    high: float | None
    p_value: float
    effect_size: float | None

    def significant(self, alpha: float = 1 - CONFIDENCE) -> bool:
        return self.n_pairs > 0 and self.p_value < alpha

    def to_dict(self) -> dict[str, Any]:
        return {
            "n_pairs": self.n_pairs,
            "mean_a": self.mean_a,
            "mean_b": self.mean_b,
            "diff": self.diff,
            "low": self.low,
            "high": self.high,
            "p_value": self.p_value,
            "effect_size": self.effect_size,
        }


def wilson(successes: float, n: float, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval for a proportion; ``successes`` and ``n`` may be fractional."""
    if n <= 0:
        raise ValueError("n must be positive")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def bca_mean(
    values: Sequence[float] | Any,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> tuple[float, float]:
    """BCa bootstrap interval for the mean of ``values`` (at least two)."""
    from scipy import stats  # deferred: scipy is large and the server does not need it to start

    data = np.asarray(values, dtype=float)
    if data.size < 2:
        raise ValueError("a bootstrap interval needs at least two values")
    if np.all(data == data[0]):
        return float(data[0]), float(data[0])  # no spread: the bootstrap has nothing to say
    result = stats.bootstrap(
        (data,),
        np.mean,
        confidence_level=confidence,
        n_resamples=resamples,
        method="BCa",
        vectorized=True,
        rng=np.random.default_rng(seed),
    )
    low, high = result.confidence_interval
    return float(low), float(high)


def estimate(
    per_item: Sequence[Sequence[float]],
    *,
    binary: bool = False,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
) -> Estimate:
    """Mean over items of each item's mean trial value, with a clustered interval."""
    groups = [list(g) for g in per_item if len(g) > 0]
    trials = sum(len(g) for g in groups)
    if not groups:
        return Estimate(math.nan, None, None, 0, 0, "none")
    means = np.array([np.mean(g) for g in groups], dtype=float)
    mean = float(means.mean())
    if len(groups) < 2:
        return Estimate(mean, None, None, 1, trials, "none")
    if binary:
        low, high = _clustered_wilson(means, trials, confidence)
        method = "wilson" if trials == len(groups) else "wilson-clustered"
        return Estimate(mean, low, high, len(groups), trials, method)
    low, high = bca_mean(means, confidence, resamples)
    return Estimate(mean, low, high, len(groups), trials, "bca")


def _clustered_wilson(means: Any, trials: int, confidence: float) -> tuple[float, float]:
    n_items = len(means)
    p = float(np.mean(means))
    if trials == n_items:
        return wilson(p * n_items, n_items, confidence)
    se2 = float(np.var(means, ddof=1)) / n_items
    n_eff = float(trials) if se2 <= 0 or p in (0.0, 1.0) else p * (1 - p) / se2
    n_eff = min(max(n_eff, float(n_items) / 2), float(trials))
    return wilson(p * n_eff, n_eff, confidence)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Chance that at least one of k trials drawn from n (c passed) passes (Chen et al. 2021)."""
    _check_k(n, c, k)
    if n - c < k:
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def pass_hat_k(n: int, c: int, k: int) -> float:
    """pass^k: chance that all of k trials drawn from n (c passed) pass (Yao et al. 2024)."""
    _check_k(n, c, k)
    return math.comb(c, k) / math.comb(n, k)


def _check_k(n: int, c: int, k: int) -> None:
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")


def mean_pass_k(per_item: Sequence[Sequence[float]], k: int) -> tuple[float, float] | None:
    """(pass@k, pass^k) averaged over items with at least k trials; None if none has."""
    eligible = [g for g in per_item if len(g) >= k]
    if not eligible:
        return None
    at = [pass_at_k(len(g), sum(1 for v in g if v >= 0.5), k) for g in eligible]
    hat = [pass_hat_k(len(g), sum(1 for v in g if v >= 0.5), k) for g in eligible]
    return float(np.mean(at)), float(np.mean(hat))


def _mean_diff(x: Any, y: Any, axis: int = -1) -> Any:
    return np.mean(x - y, axis=axis)


def compare(
    a: Mapping[str, Sequence[float]],
    b: Mapping[str, Sequence[float]],
    *,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> Comparison:
    """Paired comparison of B against A on the items both have values for."""
    from scipy import stats  # deferred: scipy is large and the server does not need it to start

    keys = sorted(k for k in a.keys() & b.keys() if len(a[k]) and len(b[k]))
    if not keys:
        return Comparison(0, math.nan, math.nan, math.nan, None, None, 1.0, None)
    xa = np.array([np.mean(a[k]) for k in keys], dtype=float)
    xb = np.array([np.mean(b[k]) for k in keys], dtype=float)
    d = xb - xa
    diff = float(d.mean())
    low: float | None = None
    high: float | None = None
    if len(keys) >= 2:
        low, high = bca_mean(d, confidence, resamples, seed)
    p_value = 1.0  # with one pair, both sign patterns are as extreme as the one observed
    if len(keys) >= 2 and np.any(d != 0):
        test = stats.permutation_test(
            (xb, xa),
            _mean_diff,
            permutation_type="samples",
            vectorized=True,
            n_resamples=resamples,
            rng=np.random.default_rng(seed),
        )
        p_value = float(test.pvalue)
    sd = float(np.std(d, ddof=1)) if len(keys) >= 2 else 0.0
    effect = diff / sd if sd > 0 else None
    return Comparison(
        len(keys), float(xa.mean()), float(xb.mean()), diff, low, high, p_value, effect
    )


def holm(p_values: Mapping[str, float]) -> dict[str, float]:
    """Holm-Bonferroni adjusted p-values: comparing several metrics at once keeps the chance
    of any false alarm at alpha (Holm 1979)."""
    ordered = sorted(p_values.items(), key=lambda kv: kv[1])
    m = len(ordered)
    adjusted: dict[str, float] = {}
    running = 0.0
    for i, (name, p) in enumerate(ordered):
        running = max(running, min(1.0, (m - i) * p))
        adjusted[name] = running
    return adjusted


def sample_size(delta: float, sd: float, *, alpha: float = 0.05, power: float = 0.8) -> int | None:
    """Items needed for a two-sided paired test to detect a mean difference ``delta``.

    ``sd`` is the standard deviation of per-item differences (from a previous comparison);
    None when ``delta`` is zero.
    """
    from scipy import stats  # deferred: scipy is large and the server does not need it to start

    if delta == 0:
        return None
    z = float(stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power))
    return max(2, math.ceil((z * sd / abs(delta)) ** 2))
