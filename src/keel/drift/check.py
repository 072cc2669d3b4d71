"""One drift check: a reference window against a current window, every metric tested, the
family's false-alarm rate held at ``alpha``. Pure: features in, a report out.

False alarms are controlled in three ways:

* **Bonferroni over metrics** — a check runs up to seven tests (embedding, input length,
  language, label, refusal rate, output length, plus the version comparison, which is not a
  test); each is significant only below ``alpha / m`` where ``m`` is the number of tests the
  check actually ran, so the chance that a check with no drift flags anything is at most
  ``alpha``.
* **Enough permutations** - the embedding test's p-value cannot go below
  ``1 / (permutations + 1)``, so a check runs at least ``2 x 6 / alpha`` permutations (1,200 at
  ``alpha = 0.01``); otherwise the test could never reach its corrected level.
* **A minimum sample** — a metric is tested only when both windows hold at least
  ``min_samples`` observations of it; a thin window is reported as skipped, never as drift.
* **Repeated checks** — checks run on a schedule over sliding windows, so over many checks
  some false alarms are expected (about ``alpha`` per check). ``confirmations`` asks for
  that many consecutive drifting checks before an alert fires; because consecutive windows
  overlap this lowers the rate by less than a power of ``alpha``, so keep ``alpha`` itself
  at the rate of false pages you accept per check.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from keel.drift import stats

INPUT_METRICS = ("input_embedding", "input_length", "input_language")
OUTPUT_METRICS = ("output_label", "output_refusal", "output_length")
ALL_METRICS = INPUT_METRICS + OUTPUT_METRICS


@dataclass(frozen=True, slots=True)
class WindowFeatures:
    """What one window of traffic looks like, reduced to the features the tests compare."""

    embeddings: np.ndarray | None = None  # one row per input (unit vectors)
    input_lengths: Sequence[int] = ()
    languages: Sequence[str] = ()
    labels: Sequence[str] = ()
    refusals: Sequence[bool] = ()
    output_lengths: Sequence[int] = ()
    model_versions: Counter[str] = field(default_factory=Counter)
    traces: int = 0


@dataclass(frozen=True, slots=True)
class DriftPolicy:
    alpha: float = 0.01
    min_samples: int = 30
    permutations: int = 200
    min_version_count: int = 1
    seed: int = 0


@dataclass(frozen=True, slots=True)
class DriftReport:
    results: tuple[stats.TestResult, ...]
    skipped: dict[str, str]
    alpha: float
    new_versions: tuple[str, ...] = ()
    versions_reference: dict[str, int] = field(default_factory=dict)
    versions_current: dict[str, int] = field(default_factory=dict)

    @property
    def threshold(self) -> float:
        """The per-test level after Bonferroni's correction."""
        return self.alpha / max(len(self.results), 1)

    def drifted(self, metrics: Sequence[str] | None = None) -> list[stats.TestResult]:
        chosen = [r for r in self.results if metrics is None or r.metric in metrics]
        return [r for r in chosen if r.p_value < self.threshold]

    @property
    def input_drift(self) -> bool:
        return bool(self.drifted(INPUT_METRICS))

    @property
    def output_drift(self) -> bool:
        return bool(self.drifted(OUTPUT_METRICS))

    @property
    def version_changed(self) -> bool:
        return bool(self.new_versions)

    def to_dict(self) -> dict[str, Any]:
        drifted = {r.metric for r in self.drifted()}
        return {
            "alpha": self.alpha,
            "per_test_threshold": self.threshold,
            "input_drift": self.input_drift,
            "output_drift": self.output_drift,
            "model_version_changed": self.version_changed,
            "new_model_versions": list(self.new_versions),
            "model_versions": {
                "reference": self.versions_reference,
                "current": self.versions_current,
            },
            "metrics": [r.to_dict() | {"drifted": r.metric in drifted} for r in self.results],
            "skipped": self.skipped,
        }


def _sample(rows: np.ndarray, limit: int, seed: int) -> np.ndarray:
    if len(rows) <= limit:
        return rows
    picked = np.random.default_rng(seed).choice(len(rows), size=limit, replace=False)
    return rows[np.sort(picked)]


def new_versions(reference: Counter[str], current: Counter[str], min_count: int) -> list[str]:
    """Provider-reported model versions seen in the current window and never in the
    reference one (at least ``min_count`` times). No reference traffic, no verdict."""
    if not reference:
        return []
    return sorted(v for v, n in current.items() if n >= min_count and v not in reference)


class _Runner:
    def __init__(self, policy: DriftPolicy) -> None:
        self.policy = policy
        self.results: list[stats.TestResult] = []
        self.skipped: dict[str, str] = {}

    def enough(self, metric: str, n_ref: int, n_cur: int) -> bool:
        need = self.policy.min_samples
        if n_ref >= need and n_cur >= need:
            return True
        self.skipped[metric] = f"needs {need} per window, has {n_ref} reference / {n_cur} current"
        return False


def check_drift(
    reference: WindowFeatures,
    current: WindowFeatures,
    policy: DriftPolicy | None = None,
    *,
    max_embeddings: int = 300,
) -> DriftReport:
    """Run every test the windows have data for; see the module doc for the error control."""
    policy = policy or DriftPolicy()
    run = _Runner(policy)
    # A permutation p-value is at least 1 / (permutations + 1): enough of them that it can
    # fall below the Bonferroni level of the largest family (six tests), with room to spare.
    permutations = max(policy.permutations, math.ceil(2 * len(ALL_METRICS) / policy.alpha))
    ref_e, cur_e = reference.embeddings, current.embeddings
    n_ref_e = 0 if ref_e is None else len(ref_e)
    n_cur_e = 0 if cur_e is None else len(cur_e)
    if run.enough("input_embedding", n_ref_e, n_cur_e):
        assert ref_e is not None and cur_e is not None
        run.results.append(
            stats.mmd_test(
                _sample(ref_e, max_embeddings, policy.seed),
                _sample(cur_e, max_embeddings, policy.seed + 1),
                permutations=permutations,
                seed=policy.seed,
            )
        )
    lengths = (
        ("input_length", reference.input_lengths, current.input_lengths),
        ("output_length", reference.output_lengths, current.output_lengths),
    )
    for metric, ref_n, cur_n in lengths:
        if run.enough(metric, len(ref_n), len(cur_n)):
            run.results.append(stats.length_test(ref_n, cur_n, metric=metric))
    categories = (
        ("input_language", reference.languages, current.languages),
        ("output_label", reference.labels, current.labels),
    )
    for metric, ref_c, cur_c in categories:
        if run.enough(metric, len(ref_c), len(cur_c)):
            run.results.append(stats.categorical_test(ref_c, cur_c, metric=metric))
    ref_r, cur_r = reference.refusals, current.refusals
    if run.enough("output_refusal", len(ref_r), len(cur_r)):
        run.results.append(
            stats.proportion_test(
                sum(ref_r), len(ref_r), sum(cur_r), len(cur_r), metric="output_refusal"
            )
        )
    changed = new_versions(
        reference.model_versions, current.model_versions, policy.min_version_count
    )
    return DriftReport(
        tuple(run.results),
        run.skipped,
        policy.alpha,
        tuple(changed),
        dict(reference.model_versions),
        dict(current.model_versions),
    )
