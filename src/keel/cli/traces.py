"""``keel traces``: list runs and show one as a tree of its layers."""

from __future__ import annotations

from collections import defaultdict

import typer
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from keel.cli.context import open_store
from keel.cli.output import print_json, shorten, stdout
from keel.core.tracing import SpanRecord, TraceRecord
from keel.trace_views import span_dict, trace_dict

app = typer.Typer(help="Traces of pipeline runs.", no_args_is_help=True)


@app.command("list")
def list_traces(
    limit: int = typer.Option(20, min=1, max=1000, help="How many, newest first."),
    pipeline: str | None = typer.Option(None, help="Only this pipeline."),
    status: str | None = typer.Option(None, help="ok or error."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Recent runs, newest first."""
    with open_store() as store:
        rows = store.traces.list(limit=limit, pipeline=pipeline, status=status)
    if as_json:
        print_json([trace_dict(t) for t in rows])
        return
    table = Table("trace id", "pipeline@version", "status", "decision", "ms", "tokens", "cost $")
    for t in rows:
        table.add_row(
            t.trace_id,
            f"{t.pipeline}@{t.pipeline_version}",
            t.status if t.status == "ok" else f"[red]{t.error_code or 'error'}[/red]",
            t.decision or "",
            f"{t.duration_ms:.1f}",
            f"{t.input_tokens}/{t.output_tokens}",
            f"{t.cost_usd.normalize():f}",
        )
    stdout().print(table)


def _label(span: SpanRecord) -> Text:
    text = Text()
    text.append(span.name, style="bold")
    if span.layer:
        text.append(f" [{span.layer}]", style="cyan")
    text.append(f"  {span.duration_ms:.2f} ms")
    if span.input_tokens or span.output_tokens:
        text.append(f"  tokens {span.input_tokens} in / {span.output_tokens} out")
    if span.cost_usd:
        text.append(f"  ${span.cost_usd.normalize():f}")
    if span.model_version:
        text.append(f"  model {span.model_version}", style="magenta")
    if span.status != "ok":
        text.append(f"  ERROR {span.status_message or ''}", style="red")
    return text


def _tree(trace: TraceRecord | None, spans: list[SpanRecord], width: int) -> Tree:
    ids = {s.span_id for s in spans}
    children: dict[str | None, list[SpanRecord]] = defaultdict(list)
    for span in spans:
        parent = span.parent_span_id if span.parent_span_id in ids else None
        children[parent].append(span)
    head = trace.trace_id if trace else spans[0].trace_id
    title = f"trace {head}"
    if trace:
        title += f"  request {trace.correlation_id}  {trace.status}  {trace.duration_ms:.2f} ms"
    tree = Tree(Text(title, style="bold"))

    def grow(node: Tree, parent: str | None) -> None:
        for span in sorted(children.get(parent, []), key=lambda s: s.start_ns):
            branch = node.add(_label(span))
            if span.input is not None:
                branch.add(Text("in:  " + shorten(span.input, width), style="dim"))
            if span.output is not None:
                branch.add(Text("out: " + shorten(span.output, width), style="dim"))
            grow(branch, span.span_id)

    grow(tree, None)
    return tree


@app.command()
def show(
    trace_id: str = typer.Argument(..., help="Trace id or request (correlation) id."),
    width: int = typer.Option(160, help="Characters of each input/output shown; 0 = all."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """One run: every layer with its timing, tokens, cost, input and output."""
    with open_store() as store:
        trace, spans = store.traces.get(trace_id)
    if as_json:
        print_json(
            {"trace": trace_dict(trace) if trace else None, "spans": [span_dict(s) for s in spans]}
        )
        return
    stdout().print(_tree(trace, spans, width))
