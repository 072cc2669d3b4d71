"""The selection matrix: pipeline (prompt) versions x models x temperatures on one dataset.

Every cell is an ordinary eval run (resumable, traced, stored). Cells are ranked by the
primary metric's mean; each cell is also compared, paired on items, with the best one, so
the table says which cells are *significantly* worse than the leader and which are within
noise of it. Cost and latency per trial are reported beside the metric.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from keel.core.errors import InvalidInputError
from keel.evals import stats
from keel.evals.service import RunRequest, execute, plan_run
from keel.evals.summary import metric_from_dict, values_by_item
from keel.store.eval_runs import EvalRun

if TYPE_CHECKING:
    from keel.runtime import Runtime


@dataclass(frozen=True, slots=True)
class Cell:
    pipeline: str
    model: str | None
    temperature: float | None
    run: EvalRun
    estimate: dict[str, Any]
    cost_per_trial: Decimal
    latency_ms: float | None
    versus_best: stats.Comparison | None = None
    rank: int = 0

    @property
    def worse_than_best(self) -> bool:
        return self.versus_best is not None and self.versus_best.significant()

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "pipeline": self.pipeline,
            "version": self.run.pipeline_version,
            "model": self.model or "(spec)",
            "temperature": self.temperature,
            "run_id": self.run.run_id,
            "estimate": self.estimate,
            "cost_per_trial_usd": f"{self.cost_per_trial.normalize():f}",
            "latency_ms": self.latency_ms,
            "versus_best": self.versus_best.to_dict() if self.versus_best else None,
            "worse_than_best": self.worse_than_best,
        }


def _cell(runtime: Runtime, run: EvalRun, metric: str, request: RunRequest) -> Cell:
    summary = run.summary or {}
    metrics = summary.get("metrics", {})
    if metric not in metrics:
        msg = f"metric {metric!r} not produced; this run has {', '.join(metrics)}"
        raise InvalidInputError(msg, code="matrix_metric_unknown")
    trials = max(1, int(summary.get("trials", 0)))
    latency = metrics.get("latency_ms", {}).get("mean")
    return Cell(
        request.pipeline,
        request.model,
        request.temperature,
        run,
        metrics[metric],
        Decimal(summary.get("cost_usd", "0")) / trials,
        latency,
    )


def _rank(runtime: Runtime, cells: list[Cell], metric: str) -> list[Cell]:
    higher = metric_from_dict(metric, cells[0].estimate).higher_is_better
    ordered = sorted(cells, key=lambda c: c.estimate["mean"], reverse=higher)
    best = ordered[0]
    kind = metric_from_dict(metric, best.estimate)
    best_values = values_by_item(runtime.store.eval_runs.results(best.run.run_id), kind)
    ranked = []
    for rank, cell in enumerate(ordered, start=1):
        comparison = None
        if cell is not best:
            values = values_by_item(runtime.store.eval_runs.results(cell.run.run_id), kind)
            comparison = stats.compare(best_values, values)
        ranked.append(
            Cell(
                cell.pipeline,
                cell.model,
                cell.temperature,
                cell.run,
                cell.estimate,
                cell.cost_per_trial,
                cell.latency_ms,
                comparison,
                rank,
            )
        )
    return ranked


async def run_matrix(
    runtime: Runtime,
    pipelines: Sequence[str],
    dataset: str,
    *,
    models: Sequence[str | None] = (None,),
    temperatures: Sequence[float | None] = (None,),
    metric: str,
    evaluators: Sequence[str] = (),
    repeats: int = 1,
    on_cell: Callable[[RunRequest], None] | None = None,
) -> list[Cell]:
    if not pipelines:
        raise InvalidInputError("name at least one pipeline", code="matrix_empty")
    specs = list(evaluators)
    if specs and not any(s.split(":")[0] == "latency" for s in specs):
        specs.append("latency")
    cells = []
    for pipeline, model, temperature in itertools.product(pipelines, models, temperatures):
        request = RunRequest(
            pipeline, dataset, repeats, specs, temperature=temperature, model=model
        )
        if on_cell is not None:
            on_cell(request)
        run = await execute(runtime, plan_run(runtime, request))
        cells.append(_cell(runtime, run, metric, request))
    return _rank(runtime, cells, metric)
