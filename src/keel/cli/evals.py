"""``keel eval``: run a pipeline over a dataset, gate it against a baseline, compare runs."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from keel.cli import quality
from keel.cli.context import load_settings, open_store
from keel.cli.output import print_json, stderr, stdout

if TYPE_CHECKING:
    from keel.evals.gate import GateReport
    from keel.evals.service import RunRequest
    from keel.store.eval_runs import EvalRun

app = typer.Typer(help="Evaluate pipelines on datasets, with intervals and CI gates.")

EXIT_GATE_FAILED = 1


@contextmanager
def _progress() -> Iterator[Callable[[int, int], None]]:
    console = stderr()
    bar = Progress(
        TextColumn("eval"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )
    task = bar.add_task("trials", total=None)

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)

    with bar:
        yield update


async def _run(request: RunRequest, baseline_ref: str | None) -> tuple[EvalRun, EvalRun | None]:
    from keel.evals import service
    from keel.runtime import Runtime

    runtime = Runtime(load_settings())
    try:
        plan = service.plan_run(runtime, request)
        baseline = None
        if baseline_ref:
            baseline = service.resolve_baseline(
                runtime.store, runtime.catalog, baseline_ref, plan.pipeline.name, plan.dataset.name
            )
        with _progress() as update:
            run = await service.execute(runtime, plan, update)
        return run, baseline
    finally:
        await runtime.aclose()


def _emit(report: GateReport, as_json: bool, markdown: Path | None, junit: Path | None) -> None:
    from keel.evals import report as render

    if markdown is not None:
        markdown.write_text(render.markdown(report), encoding="utf-8")
    if junit is not None:
        junit.write_text(render.junit(report), encoding="utf-8")
    if as_json:
        print_json(report.to_dict())
    else:
        stdout().print(render.table(report))
        summary = report.run.summary or {}
        stdout().print(
            f"[dim]{summary.get('trials', 0)} trials · {summary.get('errors', 0)} errors · "
            f"cost ${summary.get('cost_usd', '0')} · judge ${summary.get('judge_cost_usd', '0')} "
            f"· models {json.dumps(report.run.models)}[/dim]"
        )


def _gate_and_exit(report: GateReport, enforce: bool) -> None:
    if report.failed:
        stderr().print("[red]gate failed[/red]: " + "; ".join(report.failures()))
        if enforce:
            raise typer.Exit(EXIT_GATE_FAILED)


@app.command("run")
def run_(
    pipeline: str = typer.Argument(..., help="NAME, NAME@VERSION or NAME@LABEL."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="NAME or NAME@VERSION."),
    repeats: int = typer.Option(1, min=1, help="Trials per item."),
    evaluator: list[str] = typer.Option(
        [], "--evaluator", "-e", help="NAME[:key=value,...] or NAME:{json}; repeatable."
    ),
    baseline: str | None = typer.Option(
        None, help="Baseline: an eval run id, a run label (--save-as) or a pipeline label."
    ),
    fail_on_regression: bool = typer.Option(
        False, "--fail-on-regression", help="Exit 1 when the gate fails."
    ),
    threshold: list[str] = typer.Option([], help="METRIC=VALUE absolute bound; repeatable."),
    temperature: float | None = typer.Option(None, help="Override the model temperature."),
    seed: int | None = typer.Option(None, help="Override the model seed."),
    concurrency: int | None = typer.Option(None, min=1, help="Trials at once."),
    timeout: float | None = typer.Option(None, min=0.001, help="Seconds per trial."),
    save_as: str | None = typer.Option(None, help="Label this run (usable as --baseline)."),
    fresh: bool = typer.Option(False, help="Start a new run instead of resuming one."),
    markdown: Path | None = typer.Option(None, help="Write a markdown summary here."),
    junit: Path | None = typer.Option(None, help="Write JUnit XML here."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Evaluate a pipeline on a dataset; with --fail-on-regression, a CI gate."""
    from keel.evals import service
    from keel.evals.gate import parse_thresholds

    thresholds = parse_thresholds(threshold)
    request = service.RunRequest(
        pipeline,
        dataset,
        repeats,
        evaluator,
        temperature,
        seed,
        concurrency,
        timeout,
        save_as,
        fresh,
    )
    run, base = asyncio.run(_run(request, baseline))
    settings = load_settings().evals
    with open_store() as store:
        report = service.gate(
            store,
            run,
            base,
            thresholds,
            alpha=settings.alpha,
            resamples=settings.bootstrap_resamples,
        )
    _emit(report, as_json, markdown, junit)
    _gate_and_exit(report, fail_on_regression)


@app.command()
def compare(
    run_a: str = typer.Argument(..., help="Baseline run (id, prefix or run label)."),
    run_b: str = typer.Argument(..., help="Candidate run (id, prefix or run label)."),
    markdown: Path | None = typer.Option(None, help="Write a markdown summary here."),
    junit: Path | None = typer.Option(None, help="Write JUnit XML here."),
    fail_on_regression: bool = typer.Option(False, "--fail-on-regression"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Paired comparison of run B against run A on the items both answered."""
    from keel.evals import service

    settings = load_settings().evals
    with open_store() as store:
        a, b = store.eval_runs.get(run_a), store.eval_runs.get(run_b)
        report = service.gate(
            store, b, a, {}, alpha=settings.alpha, resamples=settings.bootstrap_resamples
        )
    _emit(report, as_json, markdown, junit)
    _gate_and_exit(report, fail_on_regression)


@app.command("list")
def list_(
    pipeline: str | None = typer.Option(None, help="Only this pipeline."),
    limit: int = typer.Option(20, min=1, max=1000),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Recent eval runs, newest first."""
    with open_store() as store:
        runs = store.eval_runs.list(limit=limit, pipeline=pipeline)
    if as_json:
        print_json([r.to_dict() for r in runs])
        return
    out = Table("run", "pipeline@version", "dataset", "repeats", "status", "label", "created")
    for r in runs:
        out.add_row(
            r.run_id,
            f"{r.pipeline}@{r.pipeline_version[:12]}",
            f"{r.dataset}@{r.dataset_version}",
            str(r.repeats),
            r.status,
            r.label or "",
            r.created_at.isoformat(timespec="seconds"),
        )
    stdout().print(out)


@app.command()
def show(
    run_id: str = typer.Argument(..., help="Run id, prefix or run label."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """One run: its configuration, metrics with intervals, and aggregates."""
    from keel.evals import service
    from keel.evals.report import table

    settings = load_settings().evals
    with open_store() as store:
        run = store.eval_runs.find(run_id) or store.eval_runs.get(run_id)
        report = service.gate(store, run, None, {}, alpha=settings.alpha, resamples=200)
    if as_json:
        print_json(run.to_dict())
        return
    stdout().print(table(report))
    aggregates = (run.summary or {}).get("aggregates", {})
    if aggregates:
        sys.stdout.write(json.dumps(aggregates, indent=2) + "\n")
    fairness = (run.summary or {}).get("fairness")
    if fairness:
        from keel.evals.fairness import markdown

        sys.stdout.write(markdown(run.pipeline, fairness) + "\n")


@app.command()
def matrix(
    pipelines: list[str] = typer.Argument(..., help="Pipeline refs (e.g. prompt versions)."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="NAME or NAME@VERSION."),
    metric: str = typer.Option(..., help="Metric to rank by, e.g. accuracy or exact."),
    model: list[str] = typer.Option([], help="provider:model to try; repeatable."),
    temperature: list[float] = typer.Option([], help="Temperature to try; repeatable."),
    evaluator: list[str] = typer.Option([], "--evaluator", "-e", help="As for `eval run`."),
    repeats: int = typer.Option(1, min=1, help="Trials per item."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Evaluate pipelines x models x temperatures on one dataset and rank them."""
    from keel.evals.matrix import run_matrix
    from keel.runtime import Runtime

    async def go() -> list[Any]:
        runtime = Runtime(load_settings())
        try:
            return await run_matrix(
                runtime,
                pipelines,
                dataset,
                models=model or [None],
                temperatures=temperature or [None],
                metric=metric,
                evaluators=evaluator,
                repeats=repeats,
                on_cell=lambda r: stderr().print(
                    f"[dim]cell {r.pipeline} model={r.model or '(spec)'} "
                    f"temperature={r.temperature if r.temperature is not None else '(spec)'}[/dim]"
                ),
            )
        finally:
            await runtime.aclose()

    cells = asyncio.run(go())
    if as_json:
        print_json([c.to_dict() for c in cells])
        return
    stdout().print(_matrix_table(cells, metric, dataset))


@app.command()
def fairness(
    pipeline: str = typer.Argument(..., help="NAME, NAME@VERSION or NAME@LABEL."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="NAME or NAME@VERSION."),
    terms: Path | None = typer.Option(
        None, help='JSON term sets {"attribute": [[variant0, variant1, ...], ...]}.'
    ),
    attribute: list[str] = typer.Option([], help="Only these attributes of the term sets."),
    metric: str = typer.Option("success", help="Metric compared across variants."),
    evaluator: list[str] = typer.Option([], "--evaluator", "-e", help="As for `eval run`."),
    repeats: int = typer.Option(1, min=1, help="Trials per variant."),
    markdown: Path | None = typer.Option(None, help="Write the report as markdown here."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Counterfactual fairness audit: rewrite inputs across demographic terms and compare."""
    from keel.core.errors import InvalidInputError
    from keel.evals import fairness as fair
    from keel.evals.audit import run_fairness
    from keel.runtime import Runtime

    sets: dict[str, Any] = dict(fair.DEFAULT_TERMS)
    if terms is not None:
        try:
            sets = json.loads(terms.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise InvalidInputError(f"cannot read term sets {str(terms)!r}: {exc}") from exc
    if attribute:
        missing = sorted(set(attribute) - set(sets))
        if missing:
            raise InvalidInputError(f"no term set for {', '.join(missing)}; have {', '.join(sets)}")
        sets = {a: sets[a] for a in attribute}

    async def go() -> dict[str, Any]:
        runtime = Runtime(load_settings())
        try:
            _, report = await run_fairness(
                runtime,
                pipeline,
                dataset,
                sets,
                metric=metric,
                evaluators=evaluator,
                repeats=repeats,
            )
            return report
        finally:
            await runtime.aclose()

    report = asyncio.run(go())
    text = fair.markdown(pipeline, report)
    if markdown is not None:
        markdown.write_text(text, encoding="utf-8")
    if as_json:
        print_json(report)
    else:
        sys.stdout.write(text + f"\nrun {report['run_id']}\n")


def _matrix_table(cells: list[Any], metric: str, dataset: str) -> Table:
    out = Table(
        "#",
        "pipeline@version",
        "model",
        "temp",
        metric,
        "95% CI",
        "Δ vs best",
        "cost/trial $",
        "latency ms",
        "run",
        title=f"selection matrix on {dataset}",
    )
    for c in cells:
        est, vs = c.estimate, c.versus_best
        delta = "best" if vs is None else f"{vs.diff:+.3f} p={vs.p_value:.3g}"
        if c.worse_than_best:
            delta += " (worse)"
        out.add_row(
            str(c.rank),
            f"{c.run.pipeline}@{c.run.pipeline_version[:12]}",
            c.model or "(spec)",
            "(spec)" if c.temperature is None else f"{c.temperature:g}",
            f"{est['mean']:.3f}",
            "-" if est.get("low") is None else f"[{est['low']:.3f}, {est['high']:.3f}]",
            delta,
            f"{c.cost_per_trial.normalize():f}",
            "-" if c.latency_ms is None else f"{c.latency_ms:.1f}",
            c.run.run_id,
        )
    return out


app.command("online")(quality.online)  # online evaluation of production traffic
