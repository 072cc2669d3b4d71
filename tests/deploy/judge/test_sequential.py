"""The always-valid test: its formula, and type-I error under repeated peeking."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from keel.deploy.judge.sequential import msprt


def test_msprt_likelihood_ratio_by_hand() -> None:
    v, tau, theta = 0.04, 0.3, 0.5
    expected = math.sqrt(v / (v + tau**2)) * math.exp(tau**2 * theta**2 / (2 * v * (v + tau**2)))
    result = msprt(theta, v, tau, 0.05)
    assert result.log_likelihood_ratio == pytest.approx(math.log(expected))
    assert result.always_valid_p == pytest.approx(min(1.0, 1 / expected))
    # the confidence sequence is where the test would not reject
    for edge in (result.low, result.high):
        shifted = msprt(theta - edge, v, tau, 0.05)
        assert shifted.log_likelihood_ratio == pytest.approx(math.log(20.0))


def _peeking_rejections(always_valid: bool, runs: int, rng: np.random.Generator) -> float:
    alpha, rejected = 0.05, 0
    looks = np.arange(100, 4001, 100)  # forty looks
    for _ in range(runs):
        a = rng.normal(0.0, 1.0, 4000)
        b = rng.normal(0.0, 1.0, 4000)  # A/A: no difference at all
        theta = (np.cumsum(b)[looks - 1] - np.cumsum(a)[looks - 1]) / looks
        variance = 2.0 / looks  # both arms have unit variance
        for t, v in zip(theta, variance, strict=True):
            if always_valid:
                reject = msprt(float(t), float(v), 0.1, alpha).always_valid_p < alpha
            else:
                reject = 2 * stats.norm.sf(abs(t) / math.sqrt(v)) < alpha
            if reject:
                rejected += 1
                break
    return rejected / runs


def test_msprt_stays_under_alpha_when_peeked_at_forty_times() -> None:
    rng = np.random.default_rng(17)
    naive = _peeking_rejections(False, 200, rng)
    always_valid = _peeking_rejections(True, 200, rng)
    assert naive > 0.12  # repeated fixed-horizon tests: far above 5 %
    assert always_valid <= 0.05
