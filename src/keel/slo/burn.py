"""Service-level objectives and multi-window, multi-burn-rate alerting. Pure: counts in.

An objective allows an *error budget*: ``1 - target`` of a pipeline's runs may be bad
(failed, too slow, blocked) over the SLO period. The *burn rate* of a window is how fast
that window spends the budget: ``bad fraction / (1 - target)``; 1 spends it exactly over
the period. Following the Google SRE workbook (chapter 5), a rule fires when both a long
and a short window burn faster than the rule's factor: the long window proves the burn is
significant, the short one that it is still going on, so alerts also resolve quickly.

A rule is written as the share of the budget it guards against losing within its long
window; its factor is ``share x period / long window``. With a 30-day period the defaults
are the workbook's: 2 % in 1 h (factor 14.4, short window 5 min) and 5 % in 6 h (6, 30 min)
page; 10 % in 1 day (3, 2 h) and 10 % in 3 days (1, 6 h) open a ticket.

A cost objective is a daily budget in dollars; its burn rate is the window's spending rate
over the budget's (dollars per day), checked by the same rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from keel.core.monitoring import WindowCounts

DAY = 86_400.0
Kind = Literal["availability", "latency", "error_rate", "guardrail_violations", "cost"]
SEVERITY_ORDER = {"page": 2, "ticket": 1}


@dataclass(frozen=True, slots=True)
class BurnRule:
    long_s: float
    short_s: float
    budget_share: float
    severity: str

    def factor(self, period_s: float) -> float:
        return self.budget_share * period_s / self.long_s


WORKBOOK_RULES = (
    BurnRule(3_600, 300, 0.02, "page"),
    BurnRule(21_600, 1_800, 0.05, "page"),
    BurnRule(86_400, 7_200, 0.10, "ticket"),
    BurnRule(259_200, 21_600, 0.10, "ticket"),
)


@dataclass(frozen=True, slots=True)
class Objective:
    pipeline: str
    kind: Kind
    target: float  # good fraction for ratio objectives; dollars per day for cost
    period_s: float = 30 * DAY
    threshold_ms: float | None = None  # latency: a run slower than this is bad

    @property
    def key(self) -> str:
        return f"slo:{self.pipeline}:{self.kind}"

    def describe(self) -> str:
        if self.kind == "cost":
            return f"spend at most ${self.target:g} per day"
        if self.kind == "latency":
            return f"{self.target:.2%} of runs faster than {self.threshold_ms:g} ms"
        if self.kind == "availability":
            return f"{self.target:.3%} of runs succeed (failures of the service)"
        if self.kind == "error_rate":
            return f"at most {1 - self.target:.3%} of runs fail"
        return f"at most {1 - self.target:.3%} of runs blocked by guardrails"

    def bad(self, counts: WindowCounts) -> int:
        return {
            "availability": counts.server_errors,
            "latency": counts.slow,
            "error_rate": counts.errors,
            "guardrail_violations": counts.guardrail_blocked,
            "cost": 0,
        }[self.kind]

    def burn_rate(self, counts: WindowCounts, window_s: float) -> float | None:
        """How fast the window spends the budget; None without traffic (ratio objectives)."""
        if self.kind == "cost":
            per_day = float(counts.cost_usd) * DAY / window_s
            return per_day / self.target if self.target > 0 else None
        if counts.total == 0:
            return None
        budget = 1.0 - self.target
        return (self.bad(counts) / counts.total) / budget if budget > 0 else None


@dataclass(frozen=True, slots=True)
class RuleResult:
    rule: BurnRule
    factor: float
    long_burn: float | None
    short_burn: float | None
    firing: bool
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "long_window_s": self.rule.long_s,
            "short_window_s": self.rule.short_s,
            "factor": round(self.factor, 4),
            "severity": self.rule.severity,
            "long_burn_rate": self.long_burn,
            "short_burn_rate": self.short_burn,
            "firing": self.firing,
            "reason": self.reason,
        }


@dataclass(frozen=True, slots=True)
class SLOStatus:
    objective: Objective
    rules: tuple[RuleResult, ...]
    period: WindowCounts
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def firing(self) -> bool:
        return any(r.firing for r in self.rules)

    @property
    def severity(self) -> str:
        fired = [r.rule.severity for r in self.rules if r.firing]
        return max(fired, key=lambda s: SEVERITY_ORDER.get(s, 0)) if fired else "none"

    def budget_remaining(self) -> float | None:
        """Share of the period's error budget left (negative once overspent)."""
        if self.objective.kind == "cost":
            return None
        burn = self.objective.burn_rate(self.period, self.objective.period_s)
        return None if burn is None else 1.0 - burn

    def summary(self) -> str:
        o = self.objective
        if not self.firing:
            return f"{o.pipeline} {o.kind}: within objective ({o.describe()})"
        worst = max((r for r in self.rules if r.firing), key=lambda r: r.long_burn or 0)
        return (
            f"{o.pipeline} {o.kind}: burning the error budget {worst.long_burn:.1f}x "
            f"(threshold {worst.factor:.1f}x over {worst.rule.long_s / 3600:g} h and "
            f"{worst.rule.short_s / 60:g} min) - objective: {o.describe()}"
        )

    def to_dict(self) -> dict[str, Any]:
        o = self.objective
        return {
            "key": o.key,
            "pipeline": o.pipeline,
            "objective": o.kind,
            "description": o.describe(),
            "target": o.target,
            "threshold_ms": o.threshold_ms,
            "period_days": o.period_s / DAY,
            "firing": self.firing,
            "severity": self.severity,
            "budget_remaining": self.budget_remaining(),
            "period": {
                "runs": self.period.total,
                "bad": o.bad(self.period),
                "cost_usd": str(self.period.cost_usd),
            },
            "rules": [r.to_dict() for r in self.rules],
            **self.extra,
        }


def windows(rules: Sequence[BurnRule]) -> list[float]:
    """Every window the rules read, longest first."""
    return sorted({w for r in rules for w in (r.long_s, r.short_s)}, reverse=True)


def evaluate(
    objective: Objective,
    counts: Mapping[float, WindowCounts],
    rules: Sequence[BurnRule] = WORKBOOK_RULES,
    *,
    min_events: int = 10,
) -> SLOStatus:
    """Each rule against its two windows. Ratio objectives need ``min_events`` runs in the
    long window: one failure out of two runs is not a 50 % error rate worth a page."""
    results = []
    for rule in rules:
        long_c, short_c = counts[rule.long_s], counts[rule.short_s]
        long_burn = objective.burn_rate(long_c, rule.long_s)
        short_burn = objective.burn_rate(short_c, rule.short_s)
        factor = rule.factor(objective.period_s)
        reason = None
        if objective.kind != "cost" and long_c.total < min_events:
            reason = f"{long_c.total} runs in the long window, fewer than {min_events}"
        firing = (
            reason is None
            and long_burn is not None
            and short_burn is not None
            and long_burn >= factor
            and short_burn >= factor
        )
        results.append(RuleResult(rule, factor, long_burn, short_burn, firing, reason))
    period = counts.get(objective.period_s) or WindowCounts(cost_usd=Decimal(0))
    return SLOStatus(objective, tuple(results), period)
