"""``keel feedback``: give feedback on a trace, read it, review the shared-conversation queue
and report users whose override rate is anomalous."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import typer
from rich.table import Table

from keel.cli.context import load_settings, open_store
from keel.cli.output import print_json, shorten, stdout
from keel.core.errors import InvalidInputError
from keel.feedback.service import FeedbackService
from keel.store.feedback import QueueItem

app = typer.Typer(help="Feedback on traces, and the queue into evaluation datasets.")

REVIEWER = typer.Option(
    None, "--reviewer", help="Who decides (recorded in the audit log); default: your user name."
)
NOTE = typer.Option(None, "--note", help="Why; stored with the decision.")
AS_JSON = typer.Option(False, "--json", help="Print JSON.")


def _payload(
    trace_id: str,
    thumbs: str | None,
    score: float | None,
    label: str | None,
    output: str | None,
    comment: str | None,
) -> dict[str, Any]:
    kinds: list[tuple[str, dict[str, Any]]] = []
    if thumbs is not None:
        kinds.append(("thumbs", {"value": thumbs}))
    if score is not None:
        kinds.append(("score", {"value": score}))
    if label is not None or output is not None:
        correction: dict[str, Any] = {"label": label} if label is not None else {}
        if output is not None:
            try:
                correction["output"] = json.loads(output)
            except ValueError:
                correction["output"] = output  # plain text
        kinds.append(("correction", correction))
    if not kinds and comment is not None:
        kinds.append(("comment", {}))
    if len(kinds) != 1:
        msg = "give one kind of feedback: --thumbs, --score, --label/--output, or only --comment"
        raise InvalidInputError(msg, code="feedback_invalid")
    kind, fields = kinds[0]
    body = {"trace_id": trace_id, "kind": kind, **fields}
    if comment is not None:
        body["comment"] = comment
    return body


@app.command("add")
def add(
    trace_id: str = typer.Argument(..., help="Trace id or request id."),
    thumbs: str | None = typer.Option(None, "--thumbs", help="up or down."),
    score: float | None = typer.Option(None, "--score", help="0 (worst) to 1 (best)."),
    label: str | None = typer.Option(None, "--label", help="Correction: the right label."),
    output: str | None = typer.Option(None, "--output", help="Correction: the right output."),
    comment: str | None = typer.Option(None, "--comment", help="Free text."),
    share: bool = typer.Option(False, "--share", help="Offer the conversation for a dataset."),
    end_user: str | None = typer.Option(None, "--end-user", help="The end user's id."),
    user: str | None = typer.Option(None, "--user", help="Who you are; default: user name."),
) -> None:
    """Record feedback on a trace (once per trace, user and kind)."""
    body = _payload(trace_id, thumbs, score, label, output, comment)
    body |= {"share": share} | ({"end_user": end_user} if end_user else {})
    settings = load_settings()
    with open_store() as store:
        submitted = FeedbackService(store, settings.feedback).submit(
            body, f"cli:{user or getpass.getuser()}"
        )
    record = submitted.feedback
    line = f"{record.id}: {record.kind} on {record.trace_id} by {record.user_id}"
    queued = submitted.queued
    if queued is not None:
        flags = f": {', '.join(queued.flags)}" if queued.flags else ""
        line += f"; queued {queued.id} ({queued.status}{flags})"
    stdout().print(line)


@app.command("list")
def list_feedback(
    trace_id: str | None = typer.Option(None, "--trace"),
    pipeline: str | None = typer.Option(None),
    user: str | None = typer.Option(None, help="User id (caller[/end user])."),
    kind: str | None = typer.Option(None, help="thumbs, score, correction or comment."),
    limit: int = typer.Option(50, min=1, max=1000),
    as_json: bool = AS_JSON,
) -> None:
    """Feedback, newest first."""
    with open_store() as store:
        found = store.feedback.list(
            trace_id=trace_id, pipeline=pipeline, user_id=user, kind=kind, limit=limit
        )
    if as_json:
        print_json([record.to_dict() for record in found])
        return
    table = Table("trace", "pipeline", "kind", "value", "user", "overrides", "comment")
    for r in found:
        value = json.dumps(r.value) if r.value is not None else ""
        overrode = "" if r.overrides is None else str(r.overrides).lower()
        table.add_row(
            r.trace_id,
            r.pipeline or "",
            r.kind,
            shorten(value, 40),
            r.user_id,
            overrode,
            shorten(r.comment, 40),
        )
    stdout().print(table)


@app.command("overrides")
def overrides(
    pipeline: str | None = typer.Option(None),
    days: float | None = typer.Option(None, min=0.001, help="Only the last N days."),
    as_json: bool = AS_JSON,
) -> None:
    """Users whose rate of overriding automated answers is anomalous (see docs/feedback.md)."""
    from keel.feedback.overrides import assess_users, override_counts  # scipy: deferred

    settings = load_settings().feedback
    since = datetime.now(UTC) - timedelta(days=days) if days else None
    with open_store() as store:
        counts = override_counts(store, pipeline=pipeline, since=since)
    report = assess_users(
        counts, min_decisions=settings.override_min_decisions, alpha=settings.override_alpha
    )
    if as_json:
        print_json([row.to_dict() for row in report])
        return
    table = Table("user", "judged", "overrides", "rate", "others", "adj. p", "anomalous")
    for row in report:
        table.add_row(
            row.user,
            str(row.judged),
            str(row.overrides),
            f"{row.rate:.3f}",
            "" if row.others_rate is None else f"{row.others_rate:.3f}",
            "not tested" if row.adjusted_p is None else f"{row.adjusted_p:.2g}",
            row.direction or "",
        )
    stdout().print(table)


@app.command("queue")
def queue(
    status: str = typer.Option("pending", help="pending, filtered, approved or rejected."),
    pipeline: str | None = typer.Option(None),
    limit: int = typer.Option(50, min=1, max=1000),
    as_json: bool = AS_JSON,
) -> None:
    """Shared conversations (PII scrubbed) waiting for approval, oldest first."""
    with open_store() as store:
        items = store.feedback.queue(status=status, pipeline=pipeline, limit=limit)
    if as_json:
        print_json([item.to_dict() for item in items])
        return
    table = Table("queue id", "trace", "pipeline", "truth", "flags", "pii", "input")
    for item in items:
        truth = item.label if item.label is not None else json.dumps(item.expected)
        table.add_row(
            item.id,
            item.trace_id,
            item.pipeline or "",
            shorten(truth, 30),
            ", ".join(item.flags),
            ", ".join(item.pii),
            shorten(json.dumps(item.input), 50),
        )
    stdout().print(table)


def _report(item: QueueItem) -> None:
    where = f" into {item.dataset}@{item.dataset_version}" if item.dataset else ""
    stdout().print(f"{item.id}: {item.status} by {item.decided_by}{where}")


@app.command("approve")
def approve(
    queue_id: str,
    dataset: str | None = typer.Option(None, help="Dataset to add to (default PIPELINE-feedback)."),
    reviewer: str | None = REVIEWER,
    note: str | None = NOTE,
) -> None:
    """Add a queued conversation to a new version of an evaluation dataset."""
    settings = load_settings()
    with open_store() as store:
        item = FeedbackService(store, settings.feedback).approve(
            queue_id, reviewer or getpass.getuser(), dataset=dataset, note=note
        )
    _report(item)


@app.command("reject")
def reject(queue_id: str, reviewer: str | None = REVIEWER, note: str | None = NOTE) -> None:
    """Keep a queued conversation out of datasets."""
    settings = load_settings()
    with open_store() as store:
        item = FeedbackService(store, settings.feedback).reject(
            queue_id, reviewer or getpass.getuser(), note
        )
    _report(item)
