"""Runs the counterfactual fairness audit as an ordinary (stored, traced, resumable) eval run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from keel.core.errors import InvalidInputError
from keel.evals.fairness import TermSets, counterfactuals, fairness_report
from keel.evals.service import RunRequest, execute, plan_run
from keel.evals.summary import metric_from_dict
from keel.store.eval_runs import EvalRun

if TYPE_CHECKING:
    from keel.runtime import Runtime


async def run_fairness(
    runtime: Runtime,
    pipeline: str,
    dataset: str,
    terms: TermSets,
    *,
    metric: str = "success",
    evaluators: Sequence[str] = (),
    repeats: int = 1,
) -> tuple[EvalRun, dict[str, Any]]:
    plan = plan_run(runtime, RunRequest(pipeline, dataset, repeats, evaluators))
    variants = counterfactuals(plan.items, terms)
    params = plan.params | {"counterfactual": {k: [list(r) for r in v] for k, v in terms.items()}}
    plan = replace(plan, items=variants, params=params)
    run = await execute(runtime, plan)
    metrics = (run.summary or {}).get("metrics", {})
    if metric not in metrics:
        msg = f"metric {metric!r} not produced; this run has {', '.join(metrics)}"
        raise InvalidInputError(msg, code="fairness_metric_unknown")
    report = fairness_report(
        runtime.store.eval_runs.results(run.run_id),
        metric_from_dict(metric, metrics[metric]),
        terms,
    )
    runtime.store.eval_runs.add_to_summary(run.run_id, "fairness", report)
    return runtime.store.eval_runs.get(run.run_id), report | {"run_id": run.run_id}
