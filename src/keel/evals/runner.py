"""The eval runner: every dataset item, N times, through the real pipeline runner.

Trials run concurrently (bounded), each under a timeout; each produces the same trace a
production request would (caller ``eval``). Finished trials are written in batches as they
complete, so a crash or Ctrl-C keeps them; a rerun with the same configuration (pipeline
version, parameters, dataset version, repeats, evaluators) finds the unfinished run and
only executes the trials it lacks.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from keel.core.dataset import DatasetItem
from keel.core.errors import KeelError
from keel.core.trial import TRIAL_ERROR, TRIAL_OK, TRIAL_TIMEOUT, TrialResult
from keel.evals.evaluators.base import Case, Evaluator, Scored
from keel.evals.summary import summarize
from keel.pipeline.compiled import CompiledPipeline
from keel.pipeline.runner import Runner
from keel.pipeline.steps import RunContext
from keel.store.eval_runs import RUNNING, EvalRun

if TYPE_CHECKING:
    from keel.store import Store
    from keel.store.datasets import DatasetVersion

EVAL_CALLER = "eval"
_BATCH = 200


@dataclass(frozen=True, slots=True)
class EvalPlan:
    """Everything that defines a run; equal plans share a configuration key (for resume)."""

    pipeline: CompiledPipeline
    dataset: DatasetVersion
    items: Sequence[DatasetItem]
    evaluators: Sequence[Evaluator]
    evaluator_specs: Sequence[str]
    repeats: int = 1
    params: dict[str, Any] = field(default_factory=dict)
    concurrency: int = 8
    timeout_s: float = 120.0
    label: str | None = None
    fresh: bool = False

    @property
    def evaluator_versions(self) -> dict[str, str]:
        return {e.name: e.version for e in self.evaluators}

    def config_key(self) -> str:
        config = {
            "pipeline": self.pipeline.name,
            "version": self.pipeline.version,
            "params": self.params,
            "dataset": [self.dataset.name, self.dataset.version],
            "repeats": self.repeats,
            "evaluators": list(self.evaluator_specs),
            "evaluator_versions": self.evaluator_versions,
        }
        return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def merge_details(into: dict[str, Any], scored: Scored) -> None:
    """Add an evaluator's details; judge tokens and costs from several evaluators add up."""
    for key, value in scored.details.items():
        if key in ("judge_input_tokens", "judge_output_tokens") and key in into:
            into[key] = int(into[key]) + int(value)
        elif key == "judge_cost_usd" and key in into:
            into[key] = str(Decimal(str(into[key])) + Decimal(str(value)))
        else:
            into[key] = value


class EvalRunner:
    """Runs plans on a pipeline ``Runner`` and keeps results in the store."""

    def __init__(
        self,
        runner: Runner,
        store: Store,
        *,
        resamples: int = 2000,
        on_trial: Callable[[int, int], None] | None = None,
    ) -> None:
        self._runner = runner
        self._store = store
        self._resamples = resamples
        self._on_trial = on_trial or (lambda done, total: None)

    def open_run(self, plan: EvalPlan) -> EvalRun:
        """The unfinished run of this configuration (to resume), else a new one."""
        key = plan.config_key()
        existing = None if plan.fresh else self._store.eval_runs.unfinished(key)
        if existing is not None:
            return existing
        run = EvalRun(
            run_id=secrets.token_hex(8),
            config_key=key,
            pipeline=plan.pipeline.name,
            pipeline_version=plan.pipeline.version,
            dataset=plan.dataset.name,
            dataset_version=plan.dataset.version,
            repeats=plan.repeats,
            params=plan.params,
            evaluators={"specs": list(plan.evaluator_specs), "versions": plan.evaluator_versions},
            models={},
            status=RUNNING,
            label=None,
            summary=None,
            created_at=datetime.now(UTC),
        )
        self._store.eval_runs.create(run)
        return run

    async def run(self, plan: EvalPlan) -> EvalRun:
        run = self.open_run(plan)
        done = self._store.eval_runs.done(run.run_id)
        todo = [
            (item, trial)
            for trial in range(plan.repeats)
            for item in plan.items
            if (item.item_id, trial) not in done
        ]
        total = len(plan.items) * plan.repeats
        await self._execute(plan, run.run_id, iter(todo), total - len(todo), total)
        return self.finish(plan, run.run_id)

    def finish(self, plan: EvalPlan, run_id: str) -> EvalRun:
        results = self._store.eval_runs.results(run_id)
        summary = summarize(
            results, plan.evaluators, plan.items, repeats=plan.repeats, resamples=self._resamples
        )
        models: dict[str, list[str]] = {}
        for result in results:
            model = str(result.details.get("model", "")) or "(unknown)"
            versions = models.setdefault(model, [])
            if result.model_version and result.model_version not in versions:
                versions.append(result.model_version)
        self._store.eval_runs.finish(run_id, summary, models, plan.label)
        return self._store.eval_runs.get(run_id)

    async def _execute(
        self,
        plan: EvalPlan,
        run_id: str,
        todo: Iterator[tuple[DatasetItem, int]],
        done: int,
        total: int,
    ) -> None:
        buffer: list[TrialResult] = []
        progress = [done]

        async def worker() -> None:
            for item, trial in todo:
                buffer.append(await self.trial(plan, item, trial))
                progress[0] += 1
                self._on_trial(progress[0], total)
                if len(buffer) >= _BATCH:
                    self._store.eval_runs.add_results(run_id, buffer[:])
                    buffer.clear()

        self._on_trial(done, total)
        workers = [asyncio.ensure_future(worker()) for _ in range(plan.concurrency)]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:  # one worker's crash stops the others; finished trials stay
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            self._store.eval_runs.add_results(run_id, buffer)

    async def trial(self, plan: EvalPlan, item: DatasetItem, trial: int) -> TrialResult:
        started = time.perf_counter()
        context = RunContext(caller=EVAL_CALLER)
        try:
            result = await asyncio.wait_for(
                self._runner.run(plan.pipeline, item.input, context), plan.timeout_s
            )
        except TimeoutError:
            elapsed = (time.perf_counter() - started) * 1000
            return TrialResult(
                item.item_id,
                trial,
                TRIAL_TIMEOUT,
                {},
                error_code="eval_trial_timeout",
                latency_ms=elapsed,
            )
        except KeelError as exc:
            return TrialResult(
                item.item_id,
                trial,
                TRIAL_ERROR,
                {},
                error_code=exc.code,
                trace_id=exc.details.get("trace_id"),
                latency_ms=(time.perf_counter() - started) * 1000,
            )
        case = Case.of_run(item, result)
        scores, details = await self._score(plan.evaluators, case)
        details["model"] = result.model
        return TrialResult(
            item_id=item.item_id,
            trial=trial,
            status=TRIAL_OK,
            scores=scores,
            output=result.decision.to_dict() if result.decision else result.output,
            trace_id=result.trace_id,
            details=details,
            latency_ms=result.latency_ms,
            input_tokens=result.usage.input_tokens,
            output_tokens=result.usage.output_tokens,
            cost_usd=result.cost_usd,
            model_version=result.model_version,
        )

    @staticmethod
    async def _score(
        evaluators: Sequence[Evaluator], case: Case
    ) -> tuple[dict[str, float | None], dict[str, Any]]:
        scores: dict[str, float | None] = {}
        details: dict[str, Any] = {}
        for evaluator in evaluators:
            try:
                scored = await evaluator.evaluate(case)
            except Exception as exc:  # a broken evaluator spoils its metrics, not the run
                scores.update(dict.fromkeys(m.name for m in evaluator.metrics))
                details[f"{evaluator.name}_error"] = f"{type(exc).__name__}: {exc}"
                continue
            scores.update(scored.scores)
            merge_details(details, scored)
        return scores, details
