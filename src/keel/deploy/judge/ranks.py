"""Two-sample rank statistics: Mann-Whitney U, the Hodges-Lehmann shift and its interval.

The shift of the canary over the baseline is estimated by the Hodges-Lehmann estimator, the
median of all m x n differences ``canary_j - baseline_i``. Its distribution-free confidence
interval comes from the U statistic: the k-th smallest and k-th largest differences, with
``k = floor(mn/2 - z * sd(U))`` (normal approximation, tie-corrected), as in Hollander &
Wolfe and R's ``wilcox.test(conf.int=TRUE)``.

The m x n differences are never materialised: order statistics of ``Y - X`` are found by
bisection on the value, counting differences below a threshold with one ``searchsorted``
per step (O((m + n) log m) each) until few enough remain to list and select exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
_BISECTION_STEPS = 200
_LIST_LIMIT = 1 << 16  # differences listed at most once the bracket is narrow


@dataclass(frozen=True, slots=True)
class ShiftTest:
    """Mann-Whitney comparison of canary against baseline; shift = canary - baseline."""

    estimate: float
    low: float
    high: float
    p_value: float
    u_statistic: float


def as_clean_array(values: object) -> FloatArray:
    """Values as a float array with NaN and infinities dropped (Kayenta's NaN removal)."""
    data = np.asarray(values, dtype=np.float64).ravel()
    return np.asarray(data[np.isfinite(data)], dtype=np.float64)


def trim_outliers(values: FloatArray) -> FloatArray:
    """Drop values outside [min(P1, Q1 - 3 IQR), max(P99, Q3 + 3 IQR)] (Kayenta)."""
    if values.size < 4:
        return values
    p1, q1, q3, p99 = np.percentile(values, [1, 25, 75, 99])
    iqr = q3 - q1
    low = min(p1, q1 - 3 * iqr)
    high = max(p99, q3 + 3 * iqr)
    kept: FloatArray = values[(values >= low) & (values <= high)]
    return kept


def _count_at_most(baseline: FloatArray, canary: FloatArray, t: float) -> int:
    """Number of pairs with ``canary_j - baseline_i <= t``; ``baseline`` is sorted."""
    below = np.searchsorted(baseline, canary - t, side="left")
    return int(baseline.size * canary.size - below.sum())


def _between(baseline: FloatArray, canary: FloatArray, low: float, high: float) -> FloatArray:
    """Every difference ``canary_j - baseline_i`` in (low, high] (``baseline`` sorted)."""
    first = np.searchsorted(baseline, canary - high, side="left")
    stop = np.searchsorted(baseline, canary - low, side="left")
    counts = stop - first
    rows = np.repeat(np.arange(canary.size), counts)
    offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    return np.asarray(canary[rows] - baseline[np.repeat(first, counts) + offsets])


def _smallest_above(baseline: FloatArray, canary: FloatArray, low: float) -> float:
    """The smallest difference ``canary_j - baseline_i`` counted above ``low``."""
    index = np.searchsorted(baseline, canary - low, side="left") - 1
    valid = index >= 0
    return float((canary[valid] - baseline[index[valid]]).min())


def kth_difference(baseline: FloatArray, canary: FloatArray, k: int) -> float:
    """The k-th smallest (1-based) of all differences ``canary_j - baseline_i``.

    ``baseline`` must be sorted ascending. Bisection on the value narrows (low, high] until
    it holds few enough differences to list, then the k-th is selected among them.
    """
    total = baseline.size * canary.size
    if not 1 <= k <= total:
        raise ValueError(f"k must be in [1, {total}], got {k}")
    high = float(canary.max() - baseline.min())
    low = float(canary.min() - baseline.max())
    high += max(1.0, abs(high))  # at or above every difference, whatever the rounding
    low -= max(1.0, abs(low))  # strictly below every difference
    below, at_most_high = 0, total
    for _ in range(_BISECTION_STEPS):
        if at_most_high - below <= _LIST_LIMIT:
            break
        middle = low + (high - low) / 2
        if middle <= low or middle >= high:
            # adjacent floats: the differences in (low, high] are ties; take one of them
            return _smallest_above(baseline, canary, low)
        count = _count_at_most(baseline, canary, middle)
        if count >= k:
            high, at_most_high = middle, count
        else:
            low, below = middle, count
    inside = _between(baseline, canary, low, high)
    rank = k - below - 1
    return float(np.partition(inside, rank)[rank])


def hodges_lehmann(baseline: FloatArray, canary: FloatArray) -> float:
    """Median of all pairwise differences canary - baseline (``baseline`` sorted)."""
    total = baseline.size * canary.size
    if total % 2:
        return kth_difference(baseline, canary, (total + 1) // 2)
    lower = kth_difference(baseline, canary, total // 2)
    upper = kth_difference(baseline, canary, total // 2 + 1)
    return (lower + upper) / 2


def _u_sd(baseline: FloatArray, canary: FloatArray) -> float:
    """Standard deviation of U under the null, corrected for ties."""
    m, n = baseline.size, canary.size
    pooled = np.concatenate([baseline, canary])
    _, counts = np.unique(pooled, return_counts=True)
    ties = float(np.sum(counts.astype(np.float64) ** 3 - counts))
    big_n = m + n
    variance = m * n / 12.0 * ((big_n + 1) - ties / (big_n * (big_n - 1)))
    return math.sqrt(max(variance, 0.0))


def shift_interval_rank(m: int, n: int, sd: float, confidence: float) -> int:
    """The rank k of the interval's lower bound among the m x n ordered differences."""
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    k = math.floor(m * n / 2 - z * sd)
    return min(max(k, 1), (m * n + 1) // 2)


def mann_whitney(baseline: FloatArray, canary: FloatArray, confidence: float) -> ShiftTest:
    """Two-sided Mann-Whitney U test with the Hodges-Lehmann shift and its interval."""
    from scipy import stats  # deferred: scipy is large and the server does not need it to start

    if baseline.size == 0 or canary.size == 0:
        raise ValueError("both samples need at least one value")
    base, canary = np.sort(baseline), np.sort(canary)  # sorted queries search faster
    estimate = hodges_lehmann(base, canary)
    sd = _u_sd(base, canary)
    if sd == 0.0:  # every value equal: no evidence of any shift
        return ShiftTest(estimate, estimate, estimate, 1.0, base.size * canary.size / 2)
    k = shift_interval_rank(base.size, canary.size, sd, confidence)
    low = kth_difference(base, canary, k)
    high = kth_difference(base, canary, base.size * canary.size + 1 - k)
    result = stats.mannwhitneyu(canary, base, alternative="two-sided", method="asymptotic")
    return ShiftTest(estimate, low, high, float(result.pvalue), float(result.statistic))
