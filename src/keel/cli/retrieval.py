"""``keel ingest`` and ``keel collections``: build, inspect, search and roll back indexes."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from keel.cli.context import load_settings
from keel.cli.output import print_json, shorten, stderr, stdout

if TYPE_CHECKING:
    from keel.retrieval.service import RetrievalService

app = typer.Typer(help="Retrieval collections: list, show, search, rollback.", no_args_is_help=True)


@contextmanager
def open_service() -> Iterator[RetrievalService]:
    from keel.runtime import build_registry, build_retrieval  # deferred: heavy imports

    settings = load_settings()
    service = build_retrieval(settings, build_registry(settings))
    try:
        yield service
    finally:
        service.close()


def _groups(groups: list[str] | None) -> tuple[str, ...]:
    out: list[str] = []
    for item in groups or []:
        out.extend(g.strip() for g in item.split(",") if g.strip())
    return tuple(out)


def ingest(
    collection: str = typer.Argument(..., help="Collection name (created on first ingest)."),
    paths: list[Path] = typer.Argument(
        ..., help="Files or folders: Markdown, text, HTML, PDF, JSONL."
    ),
    groups: list[str] | None = typer.Option(
        None, "--groups", "-g", help="Access groups for these documents (repeat or comma-separate)."
    ),
    embedder: str | None = typer.Option(None, help="Embedder for a new collection."),
    sanitize: bool = typer.Option(False, "--sanitize-pii", help="Mask PII before indexing."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Ingest files and folders incrementally; each run creates an index version.

    Unchanged documents are not embedded again; changed ones are; documents that were
    ingested from these paths before and are gone now leave the index.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    columns = ("embedding", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with open_service() as service, Progress(*columns, console=stderr(), transient=True) as bar:
        task = bar.add_task("embedding", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = asyncio.run(
            service.ingest(
                collection,
                paths,
                _groups(groups),
                embedder=embedder,
                sanitizer=service.pii_sanitizer if sanitize else None,
                progress=progress,
                warm=False,  # this process exits next: a server builds its own snapshot
            )
        )
    if as_json:
        print_json(report.to_dict())
        return
    _print_report(report.to_dict())


def _print_report(r: dict[str, Any]) -> None:
    console = stdout()
    console.print(
        f"{r['collection']} v{r['version']}: {r['documents_added']} added, "
        f"{r['documents_changed']} changed, {r['documents_unchanged']} unchanged, "
        f"{r['documents_removed']} removed · {r['chunks_embedded']} chunks embedded "
        f"with {r['embedder']} in {r['seconds']:.2f} s",
        markup=False,
    )
    for item in r["duplicates"]:
        console.print(f"  duplicate  {item['source']}: {item['reason']}", markup=False)
    err = stderr()
    for item in r["skipped"]:
        err.print(f"  skipped  {item['source']}: {item['reason']}", markup=False)


@app.command("list")
def list_collections(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every collection with its embedder, current version and size."""
    with open_service() as service:
        index = service.index
        rows: list[dict[str, Any]] = [
            {
                "name": c.name,
                "embedder": c.embedder,
                "version": c.current_version,
                **index.counts(c),
            }
            for c in index.collections()
        ]
    if as_json:
        print_json(rows)
        return
    table = Table("collection", "embedder", "version", "documents", "chunks")
    for row in rows:
        table.add_row(
            row["name"],
            row["embedder"],
            str(row["version"]),
            str(row["documents"]),
            str(row["chunks"]),
        )
    stdout().print(table)


@app.command()
def show(
    name: str = typer.Argument(..., help="Collection name."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """A collection's index versions: what each ingest added, changed and removed."""
    with open_service() as service:
        versions = service.index.versions(name)
    if as_json:
        print_json(versions)
        return
    table = Table(
        "version", "created", "state", "added", "changed", "unchanged", "removed", "chunks"
    )
    for v in versions:
        s = v["stats"]
        mark = " *" if v["current"] else ""
        table.add_row(
            f"{v['version']}{mark}",
            str(v["created_at"])[:19],
            v["state"],
            str(s["added"]),
            str(s["changed"]),
            str(s["unchanged"]),
            str(s["removed"]),
            str(s["chunks_embedded"]),
        )
    stdout().print(table)


@app.command()
def rollback(
    name: str = typer.Argument(..., help="Collection name."),
    version: int = typer.Argument(..., help="Index version to serve again."),
) -> None:
    """Serve an earlier index version; later ones are discarded at the next ingest."""
    with open_service() as service:
        service.index.rollback(name, version)
    stdout().print(f"{name} now serves index version {version}")


@app.command()
def search(
    name: str = typer.Argument(..., help="Collection name."),
    query: str = typer.Argument(..., help="What to search for."),
    groups: list[str] | None = typer.Option(None, "--groups", "-g", help="Caller's groups."),
    top_k: int = typer.Option(5, "--top-k", "-k", min=1, max=100),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Hybrid search as a caller with the given groups (sees public documents and theirs)."""
    from keel.retrieval.search import SearchRequest

    with open_service() as service:
        result = asyncio.run(
            service.search(SearchRequest(name, query, groups=_groups(groups), top_k=top_k))
        )
    cites = [h.citation(n) for n, h in enumerate(result.hits, 1)]
    if as_json:
        print_json({"collection": name, "version": result.version, "hits": cites})
        return
    console = stdout()
    for c in cites:
        console.print(f"[{c['n']}] {c['score']:.4f}  {c['source']}  {c['heading']}", markup=False)
        console.print(f"    {shorten(c['text'], 160)}", markup=False)


@app.command()
def sources(
    name: str = typer.Argument(..., help="Collection name."),
    version: int | None = typer.Option(None, help="Index version; default: the current one."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Lineage: the documents an index version serves, with content hashes and embedder."""
    from keel.retrieval.lineage import version_sources

    with open_service() as service:
        found = version_sources(service.index, name, version)
    if as_json:
        print_json(found)
        return
    console = stdout()
    console.print(
        f"{name} v{found['version']} ({found['state']}) embedded with {found['embedder']}"
    )
    for doc in found["documents"]:
        groups = ",".join(doc["groups"]) or "public"
        console.print(f"  {doc['content_hash'][:12]}  {doc['source']}  [{groups}]", markup=False)


@app.command()
def cited(
    name: str = typer.Argument(..., help="Collection name."),
    source: Path = typer.Argument(..., help="The document's path (as ingested)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Lineage: the traces whose answers cited a document (see them with `keel traces show`)."""
    from keel.retrieval.lineage import citing_traces

    key = str(source.resolve()) if "#" not in str(source) else str(source)
    with open_service() as service:
        rows = citing_traces(service.index, name, key)
    if as_json:
        print_json(rows)
        return
    console = stdout()
    for row in rows:
        console.print(
            f"{row['trace_id']}  v{row['version']}  rank {row['rank']}  {row['at']}", markup=False
        )
    if not rows:
        console.print("no answer has cited it yet")


@app.command()
def freshness(
    name: str = typer.Argument(..., help="Collection name."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Documents changed, missing or new on disk since the current version was ingested."""
    from keel.retrieval.lineage import freshness as report_freshness

    with open_service() as service:
        report = report_freshness(service.index, name)
    if as_json:
        print_json(report)
        return
    console = stdout()
    for state in ("changed", "missing", "new"):
        for path in report[state]:
            console.print(f"{state:8} {path}", markup=False)
    if not any(report.values()):
        console.print(f"{name} is fresh: nothing changed since its last ingest")
