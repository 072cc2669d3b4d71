"""``keel review``: list held answers, approve, edit-then-approve or reject them (audited)."""

from __future__ import annotations

import asyncio
import getpass
import json

import typer
from rich.table import Table

from keel.cli import quality
from keel.cli.context import load_settings, open_store
from keel.cli.output import print_json, shorten, stdout
from keel.core.errors import InvalidInputError
from keel.review_queue import ReviewQueue
from keel.store.reviews import Decision, ReviewItem

app = typer.Typer(help="The human review queue.", no_args_is_help=True)

REVIEWER = typer.Option(
    None, "--reviewer", help="Who decides (recorded in the audit log); default: your user name."
)
NOTE = typer.Option(None, "--note", help="Why; stored with the decision.")


@app.command("list")
def list_items(
    status: str = typer.Option("pending", help="pending, approved, edited or rejected."),
    pipeline: str | None = typer.Option(None, help="Only this pipeline."),
    limit: int = typer.Option(50, min=1, max=1000),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Held answers, oldest first (overdue ones get their default action first)."""
    with open_store() as store:
        ReviewQueue(store).expire()
        items = store.reviews.list(status=status, pipeline=pipeline, limit=limit)
    if as_json:
        print_json([item.to_dict() for item in items])
        return
    table = Table("review id", "pipeline", "status", "reasons", "deadline", "answer")
    for item in items:
        table.add_row(
            item.id,
            f"{item.pipeline}@{item.pipeline_version[:12]}",
            item.status,
            ", ".join(item.reasons),
            item.deadline.isoformat(timespec="seconds"),
            shorten(str(item.result.get("text", "")), 60),
        )
    stdout().print(table)


@app.command("show")
def show(review_id: str) -> None:
    """One review item with the held answer, as JSON."""
    with open_store() as store:
        print_json(ReviewQueue(store).get(review_id).to_dict())


def _decide(
    review_id: str,
    decision: Decision,
    reviewer: str | None,
    note: str | None,
    edited: dict[str, object] | None = None,
) -> None:
    settings = load_settings()
    with open_store() as store:
        queue = ReviewQueue(
            store,
            webhook_timeout_s=settings.guardrails.webhook_timeout_s,
            allow_private_webhooks=settings.guardrails.webhook_allow_private,
        )
        item = queue.decide(
            review_id, decision, reviewer or getpass.getuser(), edited=edited, note=note
        )
        asyncio.run(queue.notify(item))
    _report(item)


def _report(item: ReviewItem) -> None:
    stdout().print(f"{item.id}: {item.status} by {item.decided_by}")


@app.command("approve")
def approve(review_id: str, reviewer: str | None = REVIEWER, note: str | None = NOTE) -> None:
    """Release the held answer as it is."""
    _decide(review_id, "approve", reviewer, note)


@app.command("reject")
def reject(review_id: str, reviewer: str | None = REVIEWER, note: str | None = NOTE) -> None:
    """Never release the held answer."""
    _decide(review_id, "reject", reviewer, note)


@app.command("edit")
def edit(
    review_id: str,
    text: str | None = typer.Option(None, "--text", help="The corrected answer text."),
    output: str | None = typer.Option(None, "--output", help="The corrected output, as JSON."),
    reviewer: str | None = REVIEWER,
    note: str | None = NOTE,
) -> None:
    """Correct the answer, then release it."""
    edited: dict[str, object] = {}
    if text is not None:
        edited["text"] = text
    if output is not None:
        try:
            edited["output"] = json.loads(output)
        except ValueError as exc:
            raise InvalidInputError(f"--output is not JSON: {exc}", code="edit_invalid") from exc
    if not edited:
        raise InvalidInputError("edit needs --text or --output", code="edit_empty")
    _decide(review_id, "edit", reviewer, note, edited)


# Sampled review of production answers (keel.feedback): the same queue command group.
app.command("samples")(quality.samples)
app.command("mark")(quality.mark)
app.command("accuracy")(quality.accuracy)
