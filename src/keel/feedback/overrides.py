"""Users whose override rate is anomalous: a correction is not always a fix.

For each user, ``n`` is the number of traces they judged (thumbs, score, correction, or a
sampled-review verdict) and ``k`` the number they overrode (a correction that differs from
the automated answer). Users with at least ``min_decisions`` judged traces are tested.

The test, per user, against everyone else (leave-one-out, so an outlier does not mask
itself):

1. The others' pooled override rate ``p = Σk / Σn``.
2. Their over-dispersion: users differ in what they see, so override counts vary more than
   a binomial allows. A method-of-moments estimate of the intra-user correlation ``rho``
   solves ``Σ n_i (k_i/n_i - p)² = p(1-p) Σ (1 + (n_i - 1) rho)`` with ``m - 1`` degrees of
   freedom (``m`` others), clipped to ``[0, 0.99]``.
3. ``k`` is compared with a beta-binomial(``n``, ``p(1/rho - 1)``, ``(1-p)(1/rho - 1)``) — a
   plain binomial(``n``, ``p``) when ``rho`` is 0 or fewer than two others are tested — by an
   exact two-sided p-value: the probability of every count no more likely than ``k``.
4. The p-values are Holm-adjusted across tested users; a user is anomalous when the adjusted
   p-value is at most ``alpha``, ``high`` when they override more than the others, ``low``
   when less (rubber-stamping).
5. One outlier inflates the dispersion every other user is tested against (and can hide a
   second one), so steps 1-4 are repeated with the users flagged so far left out of the
   others, until the flagged set no longer changes (at most five passes).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from keel.store import Store

MAX_RHO = 0.99
MAX_PASSES = 5


@dataclass(frozen=True, slots=True)
class UserOverrides:
    user: str
    judged: int
    overrides: int
    rate: float
    others_rate: float | None
    dispersion: float | None
    p_value: float | None
    adjusted_p: float | None
    anomalous: bool
    direction: str | None  # "high" or "low" when anomalous
    tested: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def dispersion(counts: Iterable[tuple[int, int]], p: float) -> float:
    """Method-of-moments intra-user correlation rho of ``(k, n)`` counts around rate ``p``."""
    pairs = [(k, n) for k, n in counts if n > 0]
    if len(pairs) < 2 or p <= 0 or p >= 1:
        return 0.0
    spread = sum(n * (k / n - p) ** 2 for k, n in pairs) / (p * (1 - p))
    excess = spread - (len(pairs) - 1)
    weight = sum(n - 1 for _, n in pairs)
    if weight <= 0:
        return 0.0
    return float(min(max(excess / weight, 0.0), MAX_RHO))


def two_sided_p(k: int, n: int, p: float, rho: float) -> float:
    """Exact two-sided p-value of ``k`` under binomial(n, p), or beta-binomial when rho > 0."""
    from scipy import stats  # deferred: scipy is large and the server does not need it to start

    support = np.arange(n + 1)
    if rho > 0 and 0 < p < 1:
        scale = 1 / rho - 1
        pmf = stats.betabinom.pmf(support, n, p * scale, (1 - p) * scale)
    else:
        pmf = stats.binom.pmf(support, n, p)
    observed = pmf[k]
    return float(min(1.0, pmf[pmf <= observed * (1 + 1e-7)].sum()))


def holm(p_values: list[float]) -> list[float]:
    """Holm step-down adjusted p-values, in the input order."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [0.0] * len(p_values)
    running = 0.0
    m = len(p_values)
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def _p_values(
    tested: Mapping[str, tuple[int, int]], excluded: set[str]
) -> dict[str, tuple[float, float, float]]:
    """``{user: (others' rate, rho, p-value)}``, the others leaving out ``excluded`` users."""
    raw: dict[str, tuple[float, float, float]] = {}
    for user, (k, n) in tested.items():
        others = [kn for u, kn in tested.items() if u != user and u not in excluded]
        rest_k, rest_n = sum(k for k, _ in others), sum(n for _, n in others)
        if rest_n == 0:
            continue  # nobody to compare with
        p = rest_k / rest_n
        rho = dispersion(others, p)
        raw[user] = (p, rho, two_sided_p(k, n, p, rho))
    return raw


def assess_users(
    counts: Mapping[str, tuple[int, int]], *, min_decisions: int = 20, alpha: float = 0.01
) -> list[UserOverrides]:
    """The report for ``{user: (overrides, judged)}``, most anomalous first."""
    tested = {u: kn for u, kn in counts.items() if kn[1] >= min_decisions}
    flagged: set[str] = set()
    for _ in range(MAX_PASSES):  # re-fit without the users flagged so far, until stable
        raw = _p_values(tested, flagged)
        names = list(raw)
        adjusted = dict(zip(names, holm([raw[u][2] for u in names]), strict=True))
        now = {u for u in names if adjusted[u] <= alpha}
        if now == flagged:
            break
        flagged = now
    report = []
    for user, (k, n) in counts.items():
        if user not in raw:
            rate = k / n if n else 0.0
            report.append(
                UserOverrides(user, n, k, rate, None, None, None, None, False, None, False)
            )
            continue
        p, rho, p_value = raw[user]
        anomalous = adjusted[user] <= alpha
        direction = ("high" if k / n > p else "low") if anomalous else None
        report.append(
            UserOverrides(
                user, n, k, k / n, p, rho, p_value, adjusted[user], anomalous, direction, True
            )
        )
    return sorted(report, key=lambda r: (not r.anomalous, r.adjusted_p or 2.0, r.user))


def override_counts(
    store: Store, *, pipeline: str | None = None, since: datetime | None = None
) -> dict[str, tuple[int, int]]:
    """``{user: (overridden traces, judged traces)}`` from feedback and sampled review."""
    judged: dict[str, set[str]] = defaultdict(set)
    overridden: dict[str, set[str]] = defaultdict(set)
    for user, trace, overrode in store.feedback.judgements(pipeline=pipeline, since=since):
        judged[user].add(trace)
        if overrode:
            overridden[user].add(trace)
    for reviewer, trace in store.samples.reviewers(pipeline=pipeline, since=since):
        judged[reviewer].add(trace)
    return {user: (len(overridden[user]), len(traces)) for user, traces in judged.items()}
