"""Model and prompt drift: a scheduled golden-set evaluation of a production label, compared
with its last good run by the eval gate's paired tests.

Each run evaluates ``NAME@LABEL`` on the golden dataset. The first run becomes the baseline.
Every later run is compared with the newest *passing* run (paired on the items both share,
Holm-adjusted over gated metrics, at ``evals.alpha``): a regression fires the alert; a pass
resolves it and becomes the new baseline. A regressed run is never the baseline, so a
degraded model does not quietly become the standard the next run is held to. A change of
the provider-reported model versions between the two runs is reported with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from keel.alerts.condition import Signal
from keel.evals.service import RunRequest, execute, gate, plan_run
from keel.settings import GoldenSchedule

if TYPE_CHECKING:
    from keel.runtime import Runtime


def baseline_label(schedule: GoldenSchedule) -> str:
    return f"golden:{schedule.pipeline}:{schedule.dataset}"


def _pipeline_name(schedule: GoldenSchedule) -> str:
    return schedule.pipeline.split("@", 1)[0]


async def golden_check(runtime: Runtime, schedule: GoldenSchedule) -> Signal:
    """Run the golden set once and compare it with the baseline; the signal says whether it
    regressed."""
    store = runtime.store
    label = baseline_label(schedule)
    baseline = store.eval_runs.find(label)
    request = RunRequest(schedule.pipeline, schedule.dataset, schedule.repeats, schedule.evaluators)
    run = await execute(runtime, plan_run(runtime, request))
    key = f"golden:{schedule.pipeline}:{schedule.dataset}"
    common: dict[str, Any] = {"run": run.run_id, "pipeline_version": run.pipeline_version}
    name = _pipeline_name(schedule)
    if baseline is None:
        store.eval_runs.set_label(run.run_id, label)
        summary = (
            f"{schedule.pipeline}: first golden run {run.run_id} on {schedule.dataset} "
            "is the baseline"
        )
        return Signal(
            key, False, common | {"baseline": None}, summary, kind="golden", pipeline=name
        )
    settings = runtime.settings.evals
    report = gate(
        store, run, baseline, {}, alpha=settings.alpha, resamples=settings.bootstrap_resamples
    )
    details = common | {
        "baseline": baseline.run_id,
        "baseline_pipeline_version": baseline.pipeline_version,
        "models": run.models,
        "baseline_models": baseline.models,
        "model_versions_changed": run.models != baseline.models,
        "failures": report.failures(),
        "metrics": [m.to_dict() for m in report.metrics],
    }
    if report.failed:
        summary = (
            f"{schedule.pipeline}: golden set {schedule.dataset} regressed against run "
            f"{baseline.run_id}: {'; '.join(report.failures())}"
        )
    else:
        store.eval_runs.set_label(run.run_id, label)
        summary = (
            f"{schedule.pipeline}: golden set {schedule.dataset} holds against {baseline.run_id}"
        )
    return Signal(key, report.failed, details, summary, kind="golden", pipeline=name)
