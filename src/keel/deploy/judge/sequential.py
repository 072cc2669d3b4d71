"""Tests that stay valid when an experiment is looked at again and again.

The mixture sequential probability ratio test (mSPRT) with a normal mixture, as deployed
for A/B testing by Johari, Koomen, Pekelis & Walsh ("Peeking at A/B tests", KDD 2017).
For a difference of means estimated as ``theta_hat ~ N(theta, V)``, mixing the alternative
over ``theta ~ N(0, tau^2)`` gives the likelihood ratio against ``theta = 0``:

    Lambda = sqrt(V / (V + tau^2)) * exp(tau^2 * theta_hat^2 / (2 V (V + tau^2)))

Lambda is a nonnegative martingale under the null, so by Ville's inequality the chance it
*ever* reaches 1/alpha is at most alpha: rejecting whenever it does, at any peek, keeps
the type-I error at alpha. The always-valid p-value is ``min(1, 1/Lambda)`` (a caller that
keeps history may take the running minimum). Inverting the test gives a confidence
sequence for theta. Variances are plugged in (normal approximation), so arms need a few
dozen observations before the guarantee is close to exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SequentialTest:
    """Always-valid p-value and confidence sequence for theta (treatment - control)."""

    estimate: float
    always_valid_p: float
    low: float
    high: float
    log_likelihood_ratio: float


def msprt(estimate: float, variance: float, tau: float, alpha: float) -> SequentialTest:
    """Normal-mixture mSPRT for ``theta = 0`` given ``theta_hat`` and its variance."""
    if tau <= 0:
        raise ValueError("the mixture standard deviation tau must be positive")
    if not 0 < alpha < 1:
        raise ValueError("alpha must be in (0, 1)")
    if variance <= 0:
        # no noise left: any nonzero difference is certain, zero is no evidence at all
        p = 1.0 if estimate == 0 else 0.0
        return SequentialTest(estimate, p, estimate, estimate, 0.0 if p else math.inf)
    t2 = tau * tau
    log_lr = 0.5 * math.log(variance / (variance + t2)) + t2 * estimate**2 / (
        2 * variance * (variance + t2)
    )
    p = 1.0 if log_lr <= 0 else math.exp(-log_lr)
    radius_sq = (
        2
        * variance
        * (variance + t2)
        / t2
        * (math.log(1 / alpha) + 0.5 * math.log((variance + t2) / variance))
    )
    radius = math.sqrt(radius_sq)
    return SequentialTest(estimate, min(1.0, p), estimate - radius, estimate + radius, log_lr)
