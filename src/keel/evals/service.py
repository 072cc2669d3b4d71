"""Eval use cases the CLI (and later the server) call: plan a run, run it, gate it, compare.

Parameter overrides (temperature, seed) make a different pipeline: the overridden spec is
pushed as its own version (created by ``eval``), so the traces and the run name a version
that exists in the catalog and can be reproduced.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keel.catalog import PipelineRef
from keel.core.errors import InvalidInputError, NotFoundError
from keel.evals.evaluators.base import EvalContext, Evaluator
from keel.evals.gate import GateReport, evaluate_gate
from keel.evals.registry import EvaluatorRegistry
from keel.evals.runner import EvalPlan, EvalRunner
from keel.pipeline.compiled import CompiledPipeline
from keel.pipeline.loader import spec_from_data
from keel.store.datasets import parse_ref
from keel.store.eval_runs import EvalRun

if TYPE_CHECKING:
    from keel.catalog import PipelineCatalog
    from keel.runtime import Runtime
    from keel.store import Store

DEFAULT_EVALUATORS = ("latency", "cost")


@dataclass(frozen=True, slots=True)
class RunRequest:
    pipeline: str
    dataset: str
    repeats: int = 1
    evaluators: Sequence[str] = ()
    temperature: float | None = None
    seed: int | None = None
    concurrency: int | None = None
    timeout_s: float | None = None
    label: str | None = None
    fresh: bool = False
    model: str | None = None


def with_params(
    catalog: PipelineCatalog, compiled: CompiledPipeline, overrides: dict[str, Any]
) -> CompiledPipeline:
    """The pipeline with model parameters (and ``model`` id) overridden, pushed as its own
    version."""
    if not overrides:
        return compiled
    params = {k: v for k, v in overrides.items() if k != "model"}
    data = compiled.spec.model_dump(mode="json", by_alias=True)
    data["model"]["params"] = dict(data["model"].get("params") or {}) | params
    if "model" in overrides:
        data["model"]["id"] = overrides["model"]
    spec = spec_from_data(data, source=f"{compiled.name} with {overrides}")
    pushed = catalog.push(spec, created_by="eval")
    return catalog.compiled(pushed.name, pushed.version)


def default_evaluators(items_have_labels: bool, items_have_expected: bool) -> list[str]:
    chosen = []
    if items_have_labels:
        chosen.append("classification")
    if items_have_expected:
        chosen.append("exact")
    return [*chosen, *DEFAULT_EVALUATORS]


def build_evaluators(runtime: Runtime, specs: Sequence[str]) -> list[Evaluator]:
    registry = EvaluatorRegistry.from_entry_points()
    context = EvalContext(runtime.registry, runtime.settings.evals.judge_model)
    evaluators = [registry.build(spec, context) for spec in specs]
    names = [e.name for e in evaluators]
    duplicate = sorted({n for n in names if names.count(n) > 1})
    if duplicate:
        msg = f"evaluator(s) {', '.join(duplicate)} given twice; their metrics would collide"
        raise InvalidInputError(msg, code="evaluator_duplicate")
    return evaluators


def plan_run(runtime: Runtime, request: RunRequest) -> EvalPlan:
    if request.repeats < 1:
        raise InvalidInputError("--repeats must be at least 1", code="repeats_invalid")
    compiled = runtime.catalog.resolve_ref(PipelineRef.parse(request.pipeline))
    overrides: dict[str, Any] = {}
    if request.temperature is not None:
        overrides["temperature"] = request.temperature
    if request.seed is not None:
        overrides["seed"] = request.seed
    if request.model is not None:
        overrides["model"] = request.model
    effective = with_params(runtime.catalog, compiled, overrides)
    name, number = parse_ref(request.dataset)
    dataset = runtime.store.datasets.get(name, number)
    items = runtime.store.datasets.items(name, dataset.version)
    specs = list(request.evaluators) or default_evaluators(
        any(i.label is not None for i in items), any(i.expected is not None for i in items)
    )
    settings = runtime.settings.evals
    return EvalPlan(
        pipeline=effective,
        dataset=dataset,
        items=items,
        evaluators=build_evaluators(runtime, specs),
        evaluator_specs=specs,
        repeats=request.repeats,
        params=overrides | ({"base_version": compiled.version} if overrides else {}),
        concurrency=request.concurrency or settings.concurrency,
        timeout_s=request.timeout_s or settings.item_timeout_s,
        label=request.label,
        fresh=request.fresh,
    )


async def execute(
    runtime: Runtime, plan: EvalPlan, on_trial: Callable[[int, int], None] | None = None
) -> EvalRun:
    runner = EvalRunner(
        runtime.runner,
        runtime.store,
        resamples=runtime.settings.evals.bootstrap_resamples,
        on_trial=on_trial,
    )
    return await runner.run(plan)


def resolve_baseline(
    store: Store, catalog: PipelineCatalog, ref: str, pipeline: str, dataset: str
) -> EvalRun:
    """A run id (or prefix), a run label (``--save-as``), or a pipeline label/version whose
    newest finished run on the same dataset is taken."""
    found = store.eval_runs.find(ref)
    if found is not None:
        return found
    pref = PipelineRef.parse(f"{pipeline}@{ref}")
    try:
        compiled = catalog.resolve_ref(pref)
    except NotFoundError as exc:
        msg = f"baseline {ref!r} is neither an eval run, a run label, nor a label of {pipeline}"
        raise NotFoundError(msg, code="baseline_not_found") from exc
    baseline = store.eval_runs.latest_finished(pipeline, compiled.version, dataset)
    if baseline is None:
        msg = (
            f"no finished eval run of {pipeline}@{ref} on dataset {dataset!r}; run "
            f"`keel eval run {pipeline}@{ref} --dataset {dataset}` first"
        )
        raise NotFoundError(msg, code="baseline_not_found")
    return baseline


def gate(
    store: Store,
    run: EvalRun,
    baseline: EvalRun | None,
    thresholds: dict[str, float],
    *,
    alpha: float,
    resamples: int,
) -> GateReport:
    if baseline is not None and baseline.run_id == run.run_id:
        raise InvalidInputError("the baseline is this very run", code="baseline_is_run")
    return evaluate_gate(
        run,
        store.eval_runs.results(run.run_id),
        baseline,
        store.eval_runs.results(baseline.run_id) if baseline else (),
        thresholds=thresholds,
        alpha=alpha,
        resamples=resamples,
    )
