"""Intervals and tests for proportions: Wilson, Newcombe's difference, two-proportion test.

* Wilson score interval for one proportion (Wilson 1927; Brown, Cai & DasGupta 2001).
* Newcombe's hybrid score interval for a difference p1 - p2 ("method 10", Newcombe 1998):
  it combines the two Wilson intervals and, unlike the Wald interval, stays inside [-1, 1]
  and behaves at rates near 0, which is where error rates live.
* A two-sided p-value: the pooled two-proportion z-test, or Fisher's exact test when an
  expected cell count is below 5.
"""

from __future__ import annotations

import math
from statistics import NormalDist


def z_for(confidence: float) -> float:
    """Two-sided normal quantile for a confidence level (0.95 -> 1.96)."""
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson(successes: int, n: int, confidence: float) -> tuple[float, float]:
    """Wilson score interval for ``successes / n``."""
    if n <= 0:
        raise ValueError("n must be positive")
    if not 0 <= successes <= n:
        raise ValueError("successes must be in [0, n]")
    z = z_for(confidence)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def newcombe(
    bad1: int, n1: int, bad2: int, n2: int, confidence: float
) -> tuple[float, float, float]:
    """Difference ``p1 - p2`` with Newcombe's hybrid score interval: (estimate, low, high)."""
    p1, p2 = bad1 / n1, bad2 / n2
    l1, u1 = wilson(bad1, n1, confidence)
    l2, u2 = wilson(bad2, n2, confidence)
    diff = p1 - p2
    low = diff - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = diff + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    return diff, max(-1.0, low), min(1.0, high)


def two_proportion_p(bad1: int, n1: int, bad2: int, n2: int) -> float:
    """Two-sided p-value for equal proportions (z-test, or Fisher's exact test when small)."""
    from scipy import stats  # deferred: scipy is large and the server does not need it to start

    total_bad = bad1 + bad2
    total = n1 + n2
    if total_bad in (0, total):
        return 1.0
    expected = [
        n1 * total_bad / total,
        n1 * (total - total_bad) / total,
        n2 * total_bad / total,
        n2 * (total - total_bad) / total,
    ]
    if min(expected) < 5:
        table = [[bad1, n1 - bad1], [bad2, n2 - bad2]]
        return float(stats.fisher_exact(table).pvalue)
    pooled = total_bad / total
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    z = (bad1 / n1 - bad2 / n2) / se
    return float(2 * stats.norm.sf(abs(z)))
