"""Latency and cost of each trial, as lower-is-better scores."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from keel.evals.evaluators.base import (
    Case,
    EvalContext,
    EvaluatorPlugin,
    Metric,
    Scored,
    check_options,
)


@dataclass(frozen=True, slots=True)
class Latency:
    name: str = "latency"
    version: str = "1"
    metrics: tuple[Metric, ...] = (
        Metric(
            "latency_ms",
            "score",
            higher_is_better=False,
            description="pipeline run time",
            gated=False,
        ),
    )

    async def evaluate(self, case: Case) -> Scored:
        return Scored({"latency_ms": case.latency_ms})


@dataclass(frozen=True, slots=True)
class Cost:
    name: str = "cost"
    version: str = "1"
    metrics: tuple[Metric, ...] = (
        Metric(
            "cost_usd",
            "score",
            higher_is_better=False,
            description="model cost per run",
            gated=False,
        ),
    )

    async def evaluate(self, case: Case) -> Scored:
        return Scored({"cost_usd": float(case.cost_usd)})


def _latency(options: Mapping[str, Any], context: EvalContext) -> Latency:
    check_options(options, set(), "latency")
    return Latency()


def _cost(options: Mapping[str, Any], context: EvalContext) -> Cost:
    check_options(options, set(), "cost")
    return Cost()


latency = EvaluatorPlugin("latency", _latency, "Pipeline latency per trial (ms).")
cost = EvaluatorPlugin("cost", _cost, "Model cost per trial (USD).")
