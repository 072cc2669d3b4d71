"""``keel retention``: purge traces and layer payloads past their retention."""

from __future__ import annotations

import typer

from keel.cli.context import load_settings, open_store
from keel.cli.output import print_json, stdout
from keel.retention import apply_retention

app = typer.Typer(help="Retention of traces and span payloads.", no_args_is_help=True)


@app.command("apply")
def apply(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Delete traces, and clear layer payloads, older than their policy allows."""
    settings = load_settings()
    with open_store() as store:
        report = apply_retention(store, settings.guardrails.default_retention_days)
    if as_json:
        print_json(report.to_dict())
        return
    stdout().print(
        f"{report.traces_deleted} traces deleted, "
        f"{report.payloads_cleared} span payloads cleared ({len(report.rules)} rules)"
    )
