"""Sampled review and online evaluation from the terminal: ``keel review samples|mark|accuracy``
and ``keel eval online``."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from keel.cli.context import load_settings, open_store
from keel.cli.output import print_json, shorten, stdout

if TYPE_CHECKING:
    from keel.feedback.accuracy import AccuracyEstimate

AS_JSON = typer.Option(False, "--json", help="Print JSON.")


def samples(
    status: str = typer.Option("pending", help="pending, correct or incorrect."),
    pipeline: str | None = typer.Option(None, help="Only this pipeline."),
    limit: int = typer.Option(50, min=1, max=1000),
    as_json: bool = AS_JSON,
) -> None:
    """Sampled production answers to mark correct or incorrect, oldest first."""
    with open_store() as store:
        found = store.samples.list(status=status, pipeline=pipeline, limit=limit)
    if as_json:
        print_json([sample.to_dict() for sample in found])
        return
    table = Table("sample id", "pipeline", "status", "input", "answer")
    for s in found:
        decision = s.result.get("decision") or {}
        answer = decision.get("label") if decision else json.dumps(s.result.get("output"))
        table.add_row(
            s.id,
            f"{s.pipeline}@{s.pipeline_version[:12]}",
            s.status,
            shorten(json.dumps(s.input), 50),
            shorten(str(answer), 40),
        )
    stdout().print(table)


def mark(
    sample_id: str,
    verdict: str = typer.Argument(..., help="correct or incorrect."),
    label: str | None = typer.Option(None, "--label", help="incorrect: the right label."),
    output: str | None = typer.Option(None, "--output", help="incorrect: the right output."),
    reviewer: str | None = typer.Option(None, "--reviewer", help="Default: your user name."),
    note: str | None = typer.Option(None, "--note"),
) -> None:
    """Mark a sampled answer; a correction also becomes correction feedback."""
    from keel.feedback.verdicts import mark_sample

    parsed: Any = None
    if output is not None:
        try:
            parsed = json.loads(output)
        except ValueError:
            parsed = output
    with open_store() as store:
        sample = mark_sample(
            store,
            sample_id,
            verdict,
            reviewer or getpass.getuser(),
            label=label,
            output=parsed,
            note=note,
        )
    stdout().print(f"{sample.id}: {sample.status} by {sample.reviewed_by}")


def _row(table: Table, e: AccuracyEstimate) -> None:
    interval = "" if e.low is None else f"[{e.low:.3f}, {e.high:.3f}]"
    accuracy = "" if e.accuracy is None else f"{e.accuracy:.3f}"
    table.add_row(
        e.version or "(all)",
        str(e.n),
        str(e.correct),
        accuracy,
        interval,
        f"{e.target:.3f}",
        e.status,
    )


def accuracy(
    pipeline: str,
    window_hours: float | None = typer.Option(None, min=0.001, help="Default: the setting."),
    version: str | None = typer.Option(None, help="One version only."),
    by_version: bool = typer.Option(False, "--by-version", help="One row per version."),
    as_json: bool = AS_JSON,
) -> None:
    """Sampled-review accuracy with a Wilson interval; exits 1 when below target."""
    from keel.feedback.accuracy import accuracy_by_version, review_accuracy  # scipy: deferred

    settings = load_settings().feedback
    window = window_hours or settings.accuracy_window_hours
    target, confidence = settings.target(pipeline), settings.confidence
    with open_store() as store:
        overall = review_accuracy(
            store, pipeline, window, version=version, target=target, confidence=confidence
        )
        rows = (
            accuracy_by_version(store, pipeline, window, target=target, confidence=confidence)
            if by_version
            else []
        )
    if as_json:
        print_json(overall.to_dict() | {"versions": [r.to_dict() for r in rows]})
    else:
        table = Table("version", "n", "correct", "accuracy", "interval", "target", "status")
        for estimate in (overall, *rows):
            _row(table, estimate)
        stdout().print(table)
    if overall.below_target:
        raise typer.Exit(1)


def online(
    pipeline: str,
    version: str | None = typer.Option(None),
    hours: float | None = typer.Option(None, min=0.001, help="Only the last N hours."),
    as_json: bool = AS_JSON,
) -> None:
    """Online evaluation of production traffic: per version and metric, mean and interval."""
    from keel.feedback.online import online_summary  # scipy: deferred

    since = datetime.now(UTC) - timedelta(hours=hours) if hours else None
    confidence = load_settings().feedback.confidence
    with open_store() as store:
        rows = online_summary(store, pipeline, version=version, since=since, confidence=confidence)
    if as_json:
        print_json([row.to_dict() for row in rows])
        return
    table = Table("version", "metric", "evaluator", "n", "mean", "interval")
    for r in rows:
        interval = "" if r.low is None else f"[{r.low:.4g}, {r.high:.4g}]"
        mean = "" if r.mean is None else f"{r.mean:.4g}"
        table.add_row(r.version[:12], r.metric, r.evaluator, str(r.n), mean, interval)
    stdout().print(table)
