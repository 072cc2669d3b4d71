"""Paired comparison of two versions that answered the same (mirrored) inputs.

The evidence is the per-input difference ``canary - baseline``. Significance comes from the
Wilcoxon signed-rank test (Pratt's treatment of zero differences, which keeps ties at zero
in the ranking: eval scores are often discrete and many pairs agree). The size of the
change is the mean difference with a Student-t interval: for discrete scores the median
difference is usually 0 whatever happens, so the mean is the quantity a user cares about
(Miller 2024, "Adding Error Bars to Evals": paired differences of means).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True, slots=True)
class PairedTest:
    """Mean difference with its interval, the median difference and the signed-rank p."""

    mean: float
    low: float
    high: float
    median: float
    p_value: float


def paired_test(differences: NDArray[np.float64], confidence: float) -> PairedTest:
    """Wilcoxon signed-rank test and a t interval on the mean of ``differences``."""
    from scipy import stats  # deferred: scipy is large and the server does not need it to start

    n = differences.size
    if n < 2:
        raise ValueError("a paired test needs at least two differences")
    mean = float(differences.mean())
    median = float(np.median(differences))
    sd = float(differences.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    if np.all(differences == 0):
        p_value = 1.0
    else:
        result = stats.wilcoxon(differences, zero_method="pratt", method="approx")
        p_value = float(result.pvalue)
    return PairedTest(mean, mean - half, mean + half, median, p_value)
