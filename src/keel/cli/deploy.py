"""``keel deploy``: start a rollout (``keel deploy NAME VERSION …``) and steer it.

The commands work on the store directly, like the rest of the CLI; after each change they
announce it on Redis when ``KEEL_REDIS_URL`` is set (a Postgres store notifies by itself),
and running servers poll the store otherwise, so every replica applies it within a second.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer
from rich.table import Table
from typer.core import TyperGroup

from keel.cli.context import load_settings
from keel.cli.output import print_json, stdout
from keel.core.errors import InvalidInputError
from keel.deploy.live import RedisAnnouncer
from keel.deploy.model import Deployment
from keel.deploy.service import DeploymentService
from keel.server.routes.deployments import plan_args
from keel.store import Store


class _StartByDefault(TyperGroup):
    """``keel deploy NAME VERSION`` means ``keel deploy start NAME VERSION``."""

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:  # typer vendors click's types
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["start", *args]
        return super().resolve_command(ctx, args)


app = typer.Typer(
    cls=_StartByDefault,
    help="Roll out a pipeline version: canary, A/B, shadow or blue-green; steer it live.",
    no_args_is_help=True,
)
JSON = typer.Option(False, "--json", help="Print JSON.")


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


@contextmanager
def _service() -> Iterator[DeploymentService]:
    settings = load_settings()
    store = Store.open(settings.resolved_database_url)
    redis = (
        RedisAnnouncer(settings.redis_url, settings.deploy.channel) if settings.redis_url else None
    )
    try:
        yield DeploymentService(store, redis)
    finally:
        if redis is not None:
            redis.close()
        store.close()


def _arm(d: Deployment, version: str) -> str:
    weight = d.weights.get(version, 0.0)
    note = "  (rolled back)" if version in d.retired else ""
    return f"{version}  {weight:g}%{note}"


def _show(deployment: Deployment, as_json: bool) -> None:
    if as_json:
        print_json(deployment.to_dict())
        return
    d = deployment
    several = len(d.candidates) > 1
    lines = [
        f"{d.pipeline}  deployment {d.id}  [{d.strategy.value}]  {d.state.value}",
        f"  stable     {_arm(d, d.stable)}",
    ]
    for index, version in enumerate(d.candidates, 1):
        label = f"candidate {index}" if several else "candidate"
        lines.append(f"  {label:<10} {_arm(d, version)}")
    if d.strategy.value == "canary":
        steps = ", ".join(f"{s:g}" for s in d.steps)
        shared = f", shared by {len(d.candidates)} candidates" if several else ""
        every = f"every {d.interval_s:g}s"
        lines.append(f"  steps      {steps} (step {d.step_index + 1}, {every}{shared})")
    if d.mirror:
        lines.append(f"  mirror     {d.mirror:g}%")
    if d.then and d.strategy.value == "shadow":
        lines.append(f"  then       {d.then} (steps {', '.join(f'{s:g}' for s in d.steps)})")
    if d.extra.get("ready"):
        lines.append(f"  ready      {', '.join(v[:12] for v in d.extra['ready'])}")
    if d.sticky:
        lines.append(f"  sticky     {d.sticky}")
    if d.reason:
        lines.append(f"  reason     {d.reason}")
    stdout().print("\n".join(lines), highlight=False)


def _percents(items: list[str]) -> dict[str, float]:
    """``VERSION=PERCENT`` items (each may hold several, comma-separated)."""
    parsed: dict[str, float] = {}
    for item in (part for chunk in items for part in chunk.split(",") if part.strip()):
        version, _, percent = item.partition("=")
        try:
            parsed[version.strip()] = float(percent)
        except ValueError as exc:
            raise InvalidInputError(
                f"{item!r} is not VERSION=PERCENT", code="deployment_weights_invalid"
            ) from exc
    return parsed


@app.command("start")
def start(
    name: str = typer.Argument(..., help="The pipeline (endpoint)."),
    versions: list[str] = typer.Argument(
        ..., help="Candidate version(s) or unique prefixes; several for A/B/n."
    ),
    strategy: str = typer.Option("canary", help="canary, ab, shadow or blue-green."),
    steps: str | None = typer.Option(None, help="Canary weights, e.g. 5,25,50,100."),
    interval: str | None = typer.Option(None, help="Time per canary step, e.g. 10m."),
    split: str | None = typer.Option(
        None,
        help="A/B: each candidate's percent (stable gets the rest), or stable's first, "
        "e.g. 50 or 34,33,33.",
    ),
    weights: list[str] | None = typer.Option(
        None, help="A/B: VERSION=PERCENT per version ('stable' names stable), summing to 100."
    ),
    sticky: str | None = typer.Option(None, help="header:NAME, body:FIELD or key."),
    mirror: float | None = typer.Option(None, help="Shadow: percent of requests mirrored."),
    evaluator: str | None = typer.Option(None, help="Evaluator scoring shadowed pairs."),
    min_samples: int | None = typer.Option(None, help="Requests per arm before judging."),
    then: str | None = typer.Option(
        None, help="Shadow: 'canary' turns candidates that pass into a canary (--steps)."
    ),
    as_json: bool = JSON,
) -> None:
    """Start a rollout of VERSION(S) on NAME (also: keel deploy NAME VERSION …)."""
    if strategy not in ("canary", "ab", "shadow", "blue-green"):
        raise InvalidInputError(
            f"unknown strategy {strategy!r}; use canary, ab, shadow or blue-green",
            code="deployment_strategy_invalid",
        )
    raw: dict[str, Any] = {
        "strategy": strategy, "steps": steps, "interval": interval, "split": split,
        "weights": _percents(weights) if weights else None, "sticky": sticky,
        "mirror": mirror, "evaluator": evaluator, "min_samples": min_samples, "then": then,
    }  # fmt: skip
    args = plan_args(raw)
    with _service() as service:
        _show(service.start(name, versions, args, _actor()), as_json)


@app.command("status")
def status(name: str, as_json: bool = JSON) -> None:
    """The active deployment of NAME, else its last one."""
    with _service() as service:
        _show(service.current(name), as_json)


VERSION = typer.Argument(None, help="The candidate (required when several are live).")


@app.command("promote")
def promote(name: str, version: str | None = VERSION, as_json: bool = JSON) -> None:
    """Send all traffic to the candidate (VERSION of several) and point production at it."""
    with _service() as service:
        _show(service.promote(name, _actor(), version=version), as_json)


@app.command("rollback")
def rollback(name: str, version: str | None = VERSION, as_json: bool = JSON) -> None:
    """Back to stable now; with no rollout running, undo the last promotion. With VERSION,
    roll back that one candidate: its weight returns to stable and the others carry on."""
    with _service() as service:
        _show(service.rollback(name, _actor(), version=version), as_json)


@app.command("pause")
def pause(name: str, as_json: bool = JSON) -> None:
    """Freeze the split; the controller stops acting until resumed."""
    with _service() as service:
        _show(service.pause(name, _actor()), as_json)


@app.command("resume")
def resume(name: str, as_json: bool = JSON) -> None:
    """Continue a paused rollout (its current step starts afresh)."""
    with _service() as service:
        _show(service.resume(name, _actor()), as_json)


@app.command("weights")
def weights(
    name: str,
    split: list[str] = typer.Argument(..., help="VERSION=PERCENT for each version."),
    as_json: bool = JSON,
) -> None:
    """Set the split by hand, e.g. keel deploy weights triage 1a2b=30 9f8e=70."""
    with _service() as service:
        _show(service.set_weights(name, _percents(split), _actor()), as_json)


@app.command("history")
def history(name: str, as_json: bool = JSON) -> None:
    """Every deployment of NAME with each transition and its evidence."""
    with _service() as service:
        rows = service.history(name)
    if as_json:
        print_json([d.to_dict() | {"events": [e.to_dict() for e in ev]} for d, ev in rows])
        return
    table = Table("at", "deployment", "action", "state", "weights", "by", "reason")
    for deployment, events in rows:
        for e in events:
            table.add_row(
                e.at.isoformat(timespec="seconds"),
                f"{deployment.id} {deployment.strategy.value}",
                e.action,
                f"{e.from_state or '-'} → {e.to_state}",
                ", ".join(f"{v[:8]} {w:g}%" for v, w in e.weights.items()),
                e.actor,
                e.reason or "",
            )
    stdout().print(table)
