"""``keel alerts``, ``keel slo status`` and ``keel drift check``: monitoring from the shell."""

from __future__ import annotations

import asyncio
import re

import typer
from rich.table import Table

from keel.cli.context import load_settings, open_store
from keel.cli.output import print_json, shorten, stdout
from keel.core.errors import InvalidInputError
from keel.monitoring import Monitoring

alerts_app = typer.Typer(
    help="Alert episodes (SLO burn rates, drift, golden sets). Lists firing ones by default.",
    invoke_without_command=True,
)
slo_app = typer.Typer(help="Service-level objectives.", no_args_is_help=True)
drift_app = typer.Typer(help="Drift of a pipeline's traffic.", no_args_is_help=True)

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def parse_duration(text: str | None, option: str) -> float | None:
    """``90``, ``90s``, ``30m``, ``6h`` or ``7d`` in seconds."""
    if text is None:
        return None
    match = _DURATION.match(text)
    if not match or float(match.group(1)) <= 0:
        msg = f"{option} {text!r}: write a positive duration such as 3600, 30m, 6h or 7d"
        raise InvalidInputError(msg, code="duration_invalid")
    return float(match.group(1)) * _UNITS[match.group(2) or "s"]


def _alert_table(status: str | None, pipeline: str | None, limit: int, as_json: bool) -> None:
    with open_store() as store:
        alerts = store.alerts.list(status=status, pipeline=pipeline, limit=limit)
    if as_json:
        print_json([a.to_dict() for a in alerts])
        return
    if not alerts:
        stdout().print(f"no {status or ''} alerts".replace("  ", " "))
        return
    table = Table("id", "status", "severity", "key", "since", "resolved", "summary")
    for a in alerts:
        table.add_row(
            a.id,
            a.status,
            a.severity,
            a.key,
            a.started_at.isoformat(timespec="seconds"),
            a.resolved_at.isoformat(timespec="seconds") if a.resolved_at else "",
            shorten(a.summary, 80),
        )
    stdout().print(table)


STATUS = typer.Option("firing", help="firing, resolved or all.")


def _status(value: str) -> str | None:
    if value not in ("firing", "resolved", "all"):
        raise InvalidInputError(
            f"--status {value!r}: use firing, resolved or all", code="alert_status_invalid"
        )
    return None if value == "all" else value


@alerts_app.callback()
def alerts_default(ctx: typer.Context) -> None:
    """Firing alerts (use `keel alerts list --status all` for the history)."""
    if ctx.invoked_subcommand is None:
        _alert_table("firing", None, 100, False)


@alerts_app.command("list")
def list_alerts(
    status: str = STATUS,
    pipeline: str | None = typer.Option(None, help="Only this pipeline."),
    limit: int = typer.Option(100, min=1, max=10000),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Alert episodes, newest first."""
    _alert_table(_status(status), pipeline, limit, as_json)


@alerts_app.command("show")
def show_alert(alert_id: str) -> None:
    """One alert episode with its details and notification deliveries, as JSON."""
    with open_store() as store:
        print_json(store.alerts.get(alert_id).to_dict())


@alerts_app.command("evaluate")
def evaluate_alerts() -> None:
    """Evaluate every condition once and notify changes (for cron, without a server)."""
    settings = load_settings()
    with open_store() as store:
        monitoring = Monitoring(store, settings.monitoring)
        transitions = asyncio.run(monitoring.engine.tick())
    for t in transitions:
        stdout().print(f"{t.event}: {t.alert.key} - {t.alert.summary}")
    if not transitions:
        stdout().print("no alert changed")


@slo_app.command("status")
def slo_status(
    pipeline: str | None = typer.Option(None, help="Only this pipeline."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Every configured objective: burn rate per rule window, budget left, firing or not."""
    settings = load_settings()
    with open_store() as store:
        statuses = Monitoring(store, settings.monitoring).slo_status(pipeline)
    if as_json:
        print_json([s.to_dict() for s in statuses])
        return
    if not statuses:
        stdout().print("no SLOs configured (monitoring.slos in keel.toml or KEEL_MONITORING__SLOS)")
        return
    table = Table("pipeline", "objective", "state", "budget left", "burn (long/short per rule)")
    for s in statuses:
        left = s.budget_remaining()
        burns = "  ".join(
            f"{_burn(r.long_burn)}/{_burn(r.short_burn)}≥{r.factor:.1f}" for r in s.rules
        )
        state = s.severity.upper() if s.firing else "ok"
        table.add_row(
            s.objective.pipeline,
            s.objective.describe(),
            state,
            "-" if left is None else f"{left:.1%}",
            burns,
        )
    stdout().print(table)


def _burn(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


@drift_app.command("check")
def drift_check(
    pipeline: str,
    window: str | None = typer.Option(None, help="Current window, e.g. 1h (default: settings)."),
    reference: str | None = typer.Option(None, help="Reference window before it, e.g. 7d."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Test a pipeline's recent runs against the runs before them; exit 1 on drift."""
    window_s = parse_duration(window, "--window")
    reference_s = parse_duration(reference, "--reference")
    settings = load_settings()
    with open_store() as store:
        report, windows = Monitoring(store, settings.monitoring).drift_check(
            pipeline, window_s=window_s, reference_s=reference_s
        )
    if as_json:
        print_json({"pipeline": pipeline, "windows": windows.to_dict()} | report.to_dict())
    else:
        table = Table("metric", "test", "p-value", "n ref", "n cur", "drift")
        drifted = {r.metric for r in report.drifted()}
        for r in report.results:
            mark = "DRIFT" if r.metric in drifted else ""
            table.add_row(
                r.metric, r.test, f"{r.p_value:.3g}", str(r.n_reference), str(r.n_current), mark
            )
        for metric, reason in report.skipped.items():
            table.add_row(metric, "skipped", "", "", "", reason)
        stdout().print(table)
        stdout().print(
            f"per-test level {report.threshold:.3g} (alpha {report.alpha} / {len(report.results)}"
            f" tests); model versions now: {dict(report.versions_current) or '-'}"
        )
        if report.version_changed:
            stdout().print(f"NEW MODEL VERSION: {', '.join(report.new_versions)}")
    if report.drifted() or report.version_changed:
        raise typer.Exit(1)
