"""``keel datasets``: create, import, list, show and export versioned evaluation datasets."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer
from rich.table import Table

from keel.cli.context import open_store
from keel.cli.output import print_json, shorten, stdout
from keel.core.dataset import parse_file
from keel.core.errors import InvalidInputError
from keel.store.datasets import DatasetVersion, parse_ref

app = typer.Typer(help="Versioned evaluation datasets.", no_args_is_help=True)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(
            f"cannot read {str(path)!r}: {exc}", code="file_unreadable"
        ) from exc


def _created(version: DatasetVersion) -> None:
    stdout().print(f"{version.ref}  {version.item_count} items  ({version.source})")


@app.command("import")
def import_(
    name: str = typer.Argument(..., help="Dataset name; each import makes its next version."),
    path: Path = typer.Argument(..., help="A .jsonl or .csv file."),
    fmt: str | None = typer.Option(None, "--format", help="jsonl or csv (default: extension)."),
    description: str | None = typer.Option(None, help="What the dataset holds."),
) -> None:
    """Import a file as a new version; any bad row rejects the whole file."""
    items = parse_file(path.name, _read(path), fmt)
    with open_store() as store:
        version = store.datasets.create_version(
            name, items, source=f"file:{path.name}", description=description, created_by="cli"
        )
    _created(version)


@app.command()
def create(
    name: str = typer.Argument(..., help="Dataset name; creates its next version."),
    from_traces: bool = typer.Option(
        False, "--from-traces", help="Build items from stored traces (their input and answer)."
    ),
    pipeline: str | None = typer.Option(None, help="Only traces of this pipeline."),
    status: str = typer.Option("ok", help="Only traces with this status (ok or error)."),
    limit: int = typer.Option(100, min=1, max=100_000, help="Newest N traces."),
    description: str | None = typer.Option(None, help="What the dataset holds."),
) -> None:
    """Create a dataset version from traces (use `import` for files)."""
    from keel.evals.from_traces import items_from_traces

    if not from_traces:
        msg = "say where the items come from: --from-traces, or use `keel datasets import`"
        raise InvalidInputError(msg, code="dataset_source_missing")
    with open_store() as store:
        items = items_from_traces(store, pipeline=pipeline, status=status, limit=limit)
        source = f"traces:{pipeline or '*'}:{status}:{limit}"
        version = store.datasets.create_version(
            name, items, source=source, description=description, created_by="cli"
        )
    _created(version)


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every dataset with its newest version."""
    with open_store() as store:
        rows = store.datasets.list()
    if as_json:
        print_json([r.to_dict() for r in rows])
        return
    table = Table("dataset", "version", "items", "source", "created")
    for r in rows:
        table.add_row(r.name, str(r.version), str(r.item_count), r.source, r.created_at.isoformat())
    stdout().print(table)


@app.command()
def show(
    ref: str = typer.Argument(..., help="NAME (newest version) or NAME@VERSION."),
    limit: int = typer.Option(10, min=0, help="Items to show."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """A dataset version, its version history and its first items."""
    name, number = parse_ref(ref)
    with open_store() as store:
        version = store.datasets.get(name, number)
        history = store.datasets.versions(name)
        items = store.datasets.items(name, version.version)
    if as_json:
        body = version.to_dict() | {"versions": [v.version for v in history]}
        print_json(body | {"items": [i.to_dict() for i in items[:limit]]})
        return
    console = stdout()
    console.print(f"[bold]{version.ref}[/bold]  {version.item_count} items  {version.source}")
    console.print(f"versions: {', '.join(str(v.version) for v in history)}")
    table = Table("id", "input", "expected / label", "tags")
    for item in items[:limit]:
        target = item.label if item.label is not None else json.dumps(item.expected)
        table.add_row(
            item.item_id,
            shorten(json.dumps(item.input), 80),
            shorten(target, 60),
            ", ".join(item.tags),
        )
    console.print(table)


@app.command()
def export(
    ref: str = typer.Argument(..., help="NAME (newest version) or NAME@VERSION."),
    output: Path | None = typer.Option(None, "--output", "-o", help="File (default stdout)."),
) -> None:
    """Write a version as JSONL, in the format `import` reads."""
    name, number = parse_ref(ref)
    with open_store() as store:
        items = store.datasets.items(name, number)
    text = "".join(json.dumps(i.to_dict(), ensure_ascii=False) + "\n" for i in items)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
