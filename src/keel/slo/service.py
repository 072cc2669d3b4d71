"""SLOs from settings, evaluated against the trace store: statuses and alert signals."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from keel.alerts.condition import Signal
from keel.settings import MonitoringSettings, SLOSettings
from keel.slo.burn import DAY, BurnRule, Objective, SLOStatus, evaluate, windows
from keel.store import Store
from keel.store.monitoring import NS

P95_WINDOW_S = 3_600.0


def objectives(slo: SLOSettings) -> list[Objective]:
    """The objectives one SLO entry sets (each field left empty sets none)."""
    period = slo.period_days * DAY
    found = []
    if slo.availability is not None:
        found.append(Objective(slo.pipeline, "availability", slo.availability, period))
    if slo.latency_p95_ms is not None:
        found.append(Objective(slo.pipeline, "latency", 0.95, period, slo.latency_p95_ms))
    if slo.error_rate is not None:
        found.append(Objective(slo.pipeline, "error_rate", 1 - slo.error_rate, period))
    if slo.guardrail_violation_rate is not None:
        found.append(
            Objective(
                slo.pipeline, "guardrail_violations", 1 - slo.guardrail_violation_rate, period
            )
        )
    if slo.cost_per_day_usd is not None:
        found.append(Objective(slo.pipeline, "cost", float(slo.cost_per_day_usd), period))
    return found


def rules_from(settings: MonitoringSettings) -> tuple[BurnRule, ...]:
    return tuple(
        BurnRule(r.long_window_s, r.short_window_s, r.budget_share, r.severity)
        for r in settings.burn_rates
    )


def _now_ns(now: datetime | None) -> int:
    return int(now.timestamp() * NS) if now is not None else time.time_ns()


@dataclass(slots=True)
class SLOEvaluator:
    """Evaluates every configured objective; also the alert condition for them."""

    store: Store
    settings: MonitoringSettings

    def statuses(
        self,
        now: datetime | None = None,
        pipeline: str | None = None,
        *,
        with_period: bool = True,
    ) -> list[SLOStatus]:
        """Every objective's burn rates; ``with_period`` adds the whole SLO period's counts
        (the remaining budget), a longer scan the alert task leaves out."""
        now_ns = _now_ns(now)
        rules = rules_from(self.settings)
        out = []
        for slo in self.settings.slos:
            if pipeline is not None and slo.pipeline != pipeline:
                continue
            found = objectives(slo)
            if not found:
                continue
            slow_ms = slo.latency_p95_ms
            span = windows(rules) + ([slo.period_days * DAY] if with_period else [])
            counts = self.store.monitoring.counts(slo.pipeline, now_ns, span, slow_ms=slow_ms)
            p95 = self._p95(slo.pipeline, now_ns) if slow_ms is not None else None
            for objective in found:
                status = evaluate(objective, counts, rules, min_events=self.settings.min_events)
                if objective.kind == "latency":
                    status.extra["p95_ms_last_hour"] = p95
                out.append(status)
        return out

    def _p95(self, pipeline: str, now_ns: int) -> float | None:
        start = now_ns - int(P95_WINDOW_S * NS)
        durations = self.store.monitoring.durations_ms(pipeline, start, now_ns + 1)
        return float(np.percentile(durations, 95)) if durations else None

    def evaluate(self, now: datetime) -> Sequence[Signal]:
        return [
            Signal(
                status.objective.key,
                status.firing,
                status.to_dict(),
                status.summary(),
                kind="slo",
                severity=status.severity if status.firing else "page",
                pipeline=status.objective.pipeline,
            )
            for status in self.statuses(now, with_period=False)
        ]
