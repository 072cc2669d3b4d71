"""``keel run``: run a pipeline once, in process, and print its output and trace id."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from keel.catalog import PipelineRef
from keel.cli.context import load_settings
from keel.cli.output import print_json, stdout
from keel.core.errors import InvalidInputError

if TYPE_CHECKING:
    from keel.pipeline.runner import RunResult


def parse_input(text: str) -> Any:
    """``--input`` is JSON, or ``@path`` to a JSON file, or ``@-`` for standard input."""
    source = "--input"
    if text.startswith("@"):
        path = text[1:]
        source = path
        try:
            text = typer.get_text_stream("stdin").read() if path == "-" else Path(path).read_text()
        except OSError as exc:
            raise InvalidInputError(f"cannot read input file {path!r}: {exc.strerror}") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            f"{source} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})",
            code="input_not_json",
        ) from exc


async def _run(
    ref: PipelineRef, data: Any, request_id: str | None, groups: tuple[str, ...] = ()
) -> RunResult:
    from keel.pipeline.steps import RunContext  # deferred: loads tracing and providers
    from keel.runtime import Runtime

    runtime = Runtime(load_settings())
    try:
        compiled = runtime.catalog.resolve_ref(ref)
        context = RunContext(
            correlation_id=request_id, label=ref.label, caller="cli", groups=groups
        )
        return await runtime.runner.run(compiled, data, context)
    finally:
        await runtime.aclose()


def run(
    pipeline: str = typer.Argument(..., help="NAME, NAME@VERSION or NAME@LABEL."),
    input_: str = typer.Option(..., "--input", "-i", help="Input JSON, or @file, or @- (stdin)."),
    request_id: str | None = typer.Option(None, help="Correlation id to record."),
    as_json: bool = typer.Option(False, "--json", help="Print the full result as JSON."),
    groups: list[str] | None = typer.Option(
        None, "--groups", "-g", help="Access groups to retrieve as (repeat or comma-separate)."
    ),
) -> None:
    """Run a pipeline on one input and print the output (or decision) and the trace id."""
    data = parse_input(input_)
    from keel.cli.retrieval import _groups

    result = asyncio.run(_run(PipelineRef.parse(pipeline), data, request_id, _groups(groups)))
    if result.review_id:  # held: the answer is released only by a reviewer
        held = {"status": "pending", "review_id": result.review_id, "trace_id": result.trace_id}
        if as_json:
            print_json(held)
        else:
            stdout().print(f"held for review: keel review show {result.review_id}")
        return
    if as_json:
        print_json(result.to_dict())
        return
    console = stdout()
    if result.decision is not None:
        d = result.decision
        conf = "n/a" if d.confidence is None else f"{d.confidence:.2f}"
        console.print(
            f"decision: [bold]{d.decision}[/bold]  (label {d.label}, confidence {conf}, {d.reason})"
        )
    else:
        shown = result.output if isinstance(result.output, str) else json.dumps(result.output)
        console.print(shown, markup=False)
    console.print(
        f"[dim]{result.pipeline}@{result.version} on {result.model} · "
        f"{result.usage.input_tokens}+{result.usage.output_tokens} tokens · "
        f"{result.latency_ms:.0f} ms · trace {result.trace_id}[/dim]"
    )
    console.print(f"[dim]see the layers: keel traces show {result.trace_id}[/dim]")
