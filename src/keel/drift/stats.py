"""Two-sample tests behind drift detection. Pure: arrays and counts in, a ``TestResult`` out.

Each test compares a *reference* window with a *current* window and answers with a p-value
under "both windows come from the same distribution":

* embeddings — a kernel two-sample test: the (biased) squared maximum mean discrepancy
  with a Gaussian kernel whose bandwidth is the median pairwise distance, its null
  distribution drawn by permuting the window labels (Gretton et al., JMLR 2012). It needs
  no training, has no free parameter besides the number of permutations, and sees any
  change of distribution, not just of the mean;
* lengths — Mann-Whitney U (two-sided, tie-corrected normal approximation): robust to the
  heavy tails of text lengths;
* categories (languages, labels) — Pearson's chi-square on the 2 x k contingency table, with
  categories too rare for the approximation pooled into one;
* proportions (refusal rate) — Fisher's exact test on the 2 x 2 table, valid at any count.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

OTHER = "(other)"
_BATCH = 256  # permutations evaluated per matrix product


@dataclass(frozen=True, slots=True)
class TestResult:
    """One metric's comparison of the two windows."""

    __test__ = False  # not a pytest class

    metric: str
    test: str
    p_value: float
    statistic: float
    n_reference: int
    n_current: int
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "test": self.test,
            "p_value": self.p_value,
            "statistic": self.statistic,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "details": self.details,
        }


def _gaussian_kernel(points: np.ndarray) -> tuple[np.ndarray, float]:
    sq = np.einsum("ij,ij->i", points, points)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * points @ points.T, 0.0)
    upper = d2[np.triu_indices_from(d2, k=1)]
    positive = upper[upper > 0]
    bandwidth2 = float(np.median(positive)) if positive.size else 1.0
    return np.exp(-d2 / bandwidth2), bandwidth2


def _mmd2(kernel: np.ndarray, in_first: np.ndarray) -> np.ndarray:
    """Biased squared MMD for each row of the boolean membership matrix ``in_first``."""
    a = in_first.astype(np.float64)
    b = 1.0 - a
    n_a = a.sum(axis=1)
    n_b = b.sum(axis=1)
    ka = a @ kernel
    kb = b @ kernel
    aa = np.einsum("ij,ij->i", ka, a) / (n_a * n_a)
    bb = np.einsum("ij,ij->i", kb, b) / (n_b * n_b)
    ab = np.einsum("ij,ij->i", ka, b) / (n_a * n_b)
    result: np.ndarray = aa + bb - 2.0 * ab
    return result


def mmd_test(
    reference: np.ndarray,
    current: np.ndarray,
    *,
    permutations: int = 200,
    seed: int = 0,
    metric: str = "input_embedding",
) -> TestResult:
    """Kernel two-sample (MMD) permutation test on two sets of vectors (rows)."""
    ref = np.asarray(reference, dtype=np.float64)
    cur = np.asarray(current, dtype=np.float64)
    n_ref, n_cur = len(ref), len(cur)
    if n_ref < 2 or n_cur < 2:
        raise ValueError("the MMD test needs at least two vectors per window")
    kernel, bandwidth2 = _gaussian_kernel(np.vstack([ref, cur]))
    total = n_ref + n_cur
    observed_mask = np.zeros((1, total), dtype=bool)
    observed_mask[0, :n_ref] = True
    observed = float(_mmd2(kernel, observed_mask)[0])
    rng = np.random.default_rng(seed)
    exceed = 0
    for start in range(0, permutations, _BATCH):
        rows = min(_BATCH, permutations - start)
        # Each row marks a random n_ref of the pooled points as the "reference" window.
        picks = np.argsort(rng.random((rows, total)), axis=1)[:, :n_ref]
        masks = np.zeros((rows, total), dtype=bool)
        np.put_along_axis(masks, picks, True, axis=1)
        exceed += int(np.sum(_mmd2(kernel, masks) >= observed - 1e-12))
    # The observed split counts as one of the permutations: p is never 0 and the test is exact.
    p_value = (exceed + 1) / (permutations + 1)
    details = {"mmd2": observed, "bandwidth2": bandwidth2, "permutations": permutations}
    return TestResult(metric, "mmd_permutation", p_value, observed, n_ref, n_cur, details)


def length_test(reference: Iterable[float], current: Iterable[float], *, metric: str) -> TestResult:
    """Two-sided Mann-Whitney U on lengths; reports both medians."""
    ref = np.asarray(list(reference), dtype=np.float64)
    cur = np.asarray(list(current), dtype=np.float64)
    if ref.size == 0 or cur.size == 0:
        raise ValueError("the length test needs values in both windows")
    if np.all(ref == ref[0]) and np.all(cur == ref[0]):
        p_value, statistic = 1.0, float(ref.size * cur.size) / 2.0  # identical constants
    else:
        from scipy import stats as sps  # deferred: scipy is slow to import

        result = sps.mannwhitneyu(cur, ref, alternative="two-sided", method="asymptotic")
        p_value, statistic = float(result.pvalue), float(result.statistic)
    details = {
        "median_reference": float(np.median(ref)),
        "median_current": float(np.median(cur)),
    }
    return TestResult(metric, "mann_whitney_u", p_value, statistic, ref.size, cur.size, details)


def pooled_table(
    reference: Mapping[str, int], current: Mapping[str, int], *, min_expected: float = 5.0
) -> tuple[list[str], np.ndarray]:
    """The 2 x k table with categories whose smallest expected count is under ``min_expected``
    pooled into ``(other)`` (Cochran's rule for the chi-square approximation)."""
    categories = sorted(set(reference) | set(current))
    n_ref, n_cur = sum(reference.values()), sum(current.values())
    total = n_ref + n_cur
    kept: list[str] = []
    other = np.zeros(2)
    for name in categories:
        row = np.array([reference.get(name, 0), current.get(name, 0)], dtype=np.float64)
        expected_min = row.sum() * min(n_ref, n_cur) / total if total else 0.0
        if expected_min >= min_expected and name != OTHER:
            kept.append(name)
        else:
            other += row
    columns = [np.array([reference.get(n, 0), current.get(n, 0)], dtype=np.float64) for n in kept]
    if other.sum() > 0:
        kept.append(OTHER)
        columns.append(other)
    table = np.array(columns).T if columns else np.zeros((2, 0))
    return kept, table


def categorical_test(
    reference: Iterable[str], current: Iterable[str], *, metric: str
) -> TestResult:
    """Chi-square test of homogeneity of two category distributions."""
    ref_counts, cur_counts = Counter(reference), Counter(current)
    n_ref, n_cur = sum(ref_counts.values()), sum(cur_counts.values())
    if n_ref == 0 or n_cur == 0:
        raise ValueError("the category test needs values in both windows")
    names, table = pooled_table(ref_counts, cur_counts)
    details: dict[str, Any] = {
        "reference": dict(ref_counts.most_common(10)),
        "current": dict(cur_counts.most_common(10)),
        "categories": names,
    }
    if table.shape[1] < 2:  # one category in all: nothing can differ
        return TestResult(metric, "chi_square", 1.0, 0.0, n_ref, n_cur, details)
    from scipy import stats as sps

    result = sps.chi2_contingency(table, correction=False)
    return TestResult(
        metric, "chi_square", float(result.pvalue), float(result.statistic), n_ref, n_cur, details
    )


def proportion_test(
    reference_hits: int, reference_n: int, current_hits: int, current_n: int, *, metric: str
) -> TestResult:
    """Fisher's exact test of two proportions (two-sided)."""
    if reference_n == 0 or current_n == 0:
        raise ValueError("the proportion test needs observations in both windows")
    table = [
        [current_hits, current_n - current_hits],
        [reference_hits, reference_n - reference_hits],
    ]
    from scipy import stats as sps

    result = sps.fisher_exact(table, alternative="two-sided")
    details = {
        "rate_reference": reference_hits / reference_n,
        "rate_current": current_hits / current_n,
    }
    statistic = float(result.statistic) if np.isfinite(result.statistic) else 0.0
    return TestResult(
        metric, "fisher_exact", float(result.pvalue), statistic, reference_n, current_n, details
    )
