"""``keel pipelines``: push, list, show, diff and label pipeline versions."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer
import yaml
from rich.table import Table

from keel.catalog import PipelineCatalog, PipelineRef
from keel.cli.context import open_catalog
from keel.cli.output import print_json, stdout
from keel.core.version import spec_diff
from keel.pipeline.compiled import CompiledPipeline
from keel.pipeline.loader import load_spec_dir

app = typer.Typer(help="Versioned pipelines: push, list, show, diff, label.", no_args_is_help=True)


@app.command()
def push(
    directories: list[Path] = typer.Argument(..., help="Pipeline directories (pipeline.yaml)."),
    label: str | None = typer.Option(None, help="Point this label at the pushed versions."),
) -> None:
    """Store each spec as an immutable version. All specs are checked before any is stored."""
    specs = [load_spec_dir(directory) for directory in directories]
    for spec in specs:
        CompiledPipeline.build(spec)
    console = stdout()
    with open_catalog() as catalog:
        for spec in specs:
            result = catalog.push(spec)
            state = "new version" if result.created else "unchanged"
            console.print(f"{result.name}@{result.version}  ({state})")
            if label:
                catalog.set_label(result.name, label, result.version)
                console.print(f"  {label} -> {result.version}")


@app.command("list")
def list_pipelines(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every pipeline with its latest version and labels."""
    with open_catalog() as catalog:
        rows = catalog.store.pipelines.list_pipelines()
    if as_json:
        print_json([asdict(row) for row in rows])
        return
    table = Table("name", "latest", "versions", "labels", "updated")
    for row in rows:
        labels = ", ".join(f"{k}={v}" for k, v in sorted(row.labels.items()))
        table.add_row(
            row.name, row.latest_version, str(row.version_count), labels, f"{row.updated_at:%c}"
        )
    stdout().print(table)


def _spec_of(catalog: PipelineCatalog, ref_text: str) -> tuple[str, dict[str, Any]]:
    path = Path(ref_text)
    if path.is_dir() or path.suffix in (".yaml", ".yml"):
        spec = load_spec_dir(path)
        return f"{path} (working copy)", spec.model_dump(mode="json", by_alias=True)
    compiled = catalog.resolve_ref(PipelineRef.parse(ref_text))
    return f"{compiled.name}@{compiled.version}", compiled.spec.model_dump(
        mode="json", by_alias=True
    )


@app.command()
def show(
    ref: str = typer.Argument(..., help="NAME, NAME@VERSION or NAME@LABEL."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """One version's full spec, templates inlined, with the pipeline's labels."""
    with open_catalog() as catalog:
        title, spec = _spec_of(catalog, ref)
        labels = catalog.store.pipelines.labels(spec["name"])
    if as_json:
        print_json({"ref": title, "labels": labels, "spec": spec})
        return
    console = stdout()
    console.print(f"[bold]{title}[/bold]")
    if labels:
        console.print("labels: " + ", ".join(f"{k}={v}" for k, v in sorted(labels.items())))
    console.print(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True).rstrip())


@app.command()
def diff(
    old: str = typer.Argument(..., help="NAME@VERSION, NAME@LABEL or a pipeline directory."),
    new: str = typer.Argument(..., help="NAME@VERSION, NAME@LABEL or a pipeline directory."),
) -> None:
    """What changed between two versions (or a version and a working copy)."""
    with open_catalog() as catalog:
        old_title, old_spec = _spec_of(catalog, old)
        new_title, new_spec = _spec_of(catalog, new)
    console = stdout()
    console.print(f"--- {old_title}\n+++ {new_title}", markup=False)
    lines = spec_diff(old_spec, new_spec)
    console.print("\n".join(lines) if lines else "(no differences)", markup=False)


@app.command()
def label(
    name: str = typer.Argument(..., help="Pipeline name."),
    version: str = typer.Argument(..., help="Version or unique prefix."),
    label_name: str = typer.Argument(..., metavar="LABEL", help="e.g. production, staging."),
) -> None:
    """Point LABEL at VERSION (labels are mutable pointers to immutable versions)."""
    with open_catalog() as catalog:
        previous = catalog.set_label(name, label_name, version)
        current = catalog.store.pipelines.resolve_label(name, label_name)
    moved = f" (was {previous})" if previous and previous != current else ""
    stdout().print(f"{name}@{label_name} -> {current}{moved}")
