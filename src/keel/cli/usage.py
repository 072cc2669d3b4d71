"""``keel usage``: stored requests, tokens, cost and cache savings per period and group."""

from __future__ import annotations

import typer
from rich.table import Table

from keel.cli.context import open_store
from keel.cli.output import print_json, stdout
from keel.gateway.usage import parse_when, usage_report


def usage(
    period: str = typer.Option("day", help="hour, day or month."),
    by: str = typer.Option("key,pipeline", help="Comma-separated: key, pipeline, model."),
    since: str | None = typer.Option(None, help="ISO date or date-time (UTC), inclusive."),
    until: str | None = typer.Option(None, help="ISO date or date-time (UTC), exclusive."),
    key: str | None = typer.Option(None, help="Only this key id."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Usage and cost the gateway stored, with what the response cache saved."""
    groups = [part.strip() for part in by.split(",") if part.strip()]
    with open_store() as store:
        rows = usage_report(
            store,
            period=period,
            group_by=groups,
            since=parse_when(since, "--since"),
            until=parse_when(until, "--until"),
            key_id=key,
        )
    if as_json:
        print_json(rows)
        return
    columns = ["period", *groups]
    table = Table(
        *columns, "requests", "cache hits", "tokens in", "tokens out", "cost $", "saved $"
    )
    for row in rows:
        names = [
            f"{row['key']} ({row['key_name']})" if g == "key" and row.get("key_name") else row[g]
            for g in groups
        ]
        table.add_row(
            row["period"],
            *(name or "-" for name in names),
            str(row["requests"]),
            str(row["cache_hits"]),
            str(row["input_tokens"]),
            str(row["output_tokens"]),
            row["cost_usd"],
            row["saved_usd"],
        )
    stdout().print(table if rows else "no usage stored for that period")
