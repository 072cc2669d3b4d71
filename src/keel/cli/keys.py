"""``keel keys``: create (shown once), list and revoke API keys in the store."""

from __future__ import annotations

import getpass
import os
import stat
from pathlib import Path

import typer
from rich.table import Table

from keel.cli.context import load_settings, open_store
from keel.cli.output import print_json, stdout
from keel.gateway.keys import KeyService
from keel.settings import KeelSettings
from keel.store import Store

app = typer.Typer(help="API keys: roles, scopes, limits.", no_args_is_help=True)

BOOTSTRAP_NAME = "bootstrap-admin"


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def _split(value: str | None) -> list[str] | None:
    return [part.strip() for part in value.split(",") if part.strip()] if value else None


@app.command("create")
def create(
    name: str = typer.Argument(help="A name to recognise the key by."),
    role: str = typer.Option("service", help="admin, developer or service."),
    models: str | None = typer.Option(None, help="Comma-separated model patterns (default all)."),
    pipelines: str | None = typer.Option(None, help="Comma-separated pipeline patterns."),
    groups: str | None = typer.Option(None, help="Comma-separated access groups."),
    rpm: int | None = typer.Option(None, help="Requests per minute."),
    tpm: int | None = typer.Option(None, help="Tokens per minute."),
    budget_tokens: int | None = typer.Option(None, help="Tokens per budget period."),
    budget_usd: str | None = typer.Option(None, help="US dollars per budget period."),
    budget_period: str | None = typer.Option(None, help="minute, hour, day or month."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Create a key and print it once; only its hash is stored."""
    limits = {
        "rpm": rpm,
        "tpm": tpm,
        "budget_tokens": budget_tokens,
        "budget_usd": budget_usd,
        "budget_period": budget_period,
    }
    with open_store() as store:
        service = KeyService(store, load_settings().auth)
        stored, secret = service.create(
            name,
            role,
            actor=_actor(),
            models=_split(models),
            pipelines=_split(pipelines),
            groups=_split(groups),
            limits={k: v for k, v in limits.items() if v is not None},
        )
    if as_json:
        print_json({**stored.to_dict(), "key": secret})
        return
    stdout().print(f"created key {stored.id} ({stored.role}) — copy it now, it is not shown again:")
    print(secret)


@app.command("list")
def list_keys(
    all_keys: bool = typer.Option(False, "--all", help="Include revoked keys."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Keys with their role, scopes and limits (never the secrets)."""
    with open_store() as store:
        keys = store.keys.list(include_revoked=all_keys)
    if as_json:
        print_json([key.to_dict() for key in keys])
        return
    table = Table("id", "name", "role", "models", "pipelines", "limits", "revoked")
    for key in keys:
        table.add_row(
            key.id,
            key.name,
            key.role,
            ",".join(key.scopes.get("models") or ["*"]),
            ",".join(key.scopes.get("pipelines") or ["*"]),
            " ".join(f"{k}={v}" for k, v in key.limits.items()),
            key.revoked_at.isoformat() if key.revoked_at else "",
        )
    stdout().print(table)


@app.command("revoke")
def revoke(key_id: str = typer.Argument(help="The key's id (see `keel keys list`).")) -> None:
    """Revoke a key; servers refuse it within auth.key_cache_seconds."""
    with open_store() as store:
        stored = KeyService(store, load_settings().auth).revoke(key_id, actor=_actor())
    stdout().print(f"revoked key {stored.id} ({stored.name})")


def bootstrap_admin_key(settings: KeelSettings, store: Store) -> Path | None:
    """On first start without ``auth.admin_key``, create an admin key in ``<home>/admin.key``
    (readable by the owner only) so the printed examples work. Returns the file, if any."""
    path = settings.home / "admin.key"
    if settings.auth.admin_key is not None:
        return None
    if path.exists():
        return path
    _, secret = KeyService(store, settings.auth).create(
        BOOTSTRAP_NAME, "admin", actor="keel serve (bootstrap)"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")
    return path
