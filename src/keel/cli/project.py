"""``keel init``, ``keel db`` and ``keel settings``: set up a project and its store."""

from __future__ import annotations

import shutil
from importlib.resources import files
from pathlib import Path

import typer

from keel.cli.context import load_settings, open_store
from keel.cli.output import stdout
from keel.core.errors import ConflictError
from keel.settings_doc import markdown

db_app = typer.Typer(help="The store (SQLite or Postgres).", no_args_is_help=True)

_TOML = """\
# Keel settings for this project; every variable is listed by `keel settings`.
# database_url = "postgresql+psycopg://user@host/db"

[providers]
default_model = "local:smollm2"
"""


def init(directory: Path = typer.Argument(..., help="Where to create the project.")) -> None:
    """Create a starter project: example pipelines and a keel.toml."""
    examples = files("keel") / "examples"
    target = directory / "pipelines"
    clashes = [p.name for p in examples.iterdir() if (target / p.name).exists()]
    if clashes or (directory / "keel.toml").exists():
        raise ConflictError(
            f"{directory} already holds {', '.join(clashes) or 'keel.toml'}; "
            "choose an empty directory",
            code="init_target_not_empty",
        )
    target.mkdir(parents=True, exist_ok=True)
    for example in examples.iterdir():
        if example.is_dir() and not example.name.startswith("_"):
            shutil.copytree(str(example), target / example.name)
    (directory / "keel.toml").write_text(_TOML)
    console = stdout()
    console.print(f"created {directory}/keel.toml and {target}/")
    console.print(f"next: cd {directory} && keel pipelines push pipelines/* && keel serve")


@db_app.command()
def upgrade() -> None:
    """Create or migrate the store's schema to the latest version."""
    url = load_settings().resolved_database_url
    with open_store() as store:
        store.upgrade()
    stdout().print(f"store ready: {url.split('@')[-1]}")


def settings(
    as_markdown: bool = typer.Option(False, "--markdown", help="The reference as Markdown."),
) -> None:
    """Every setting with its environment variable, type, default and meaning."""
    if as_markdown:
        typer.echo(markdown(), nl=False)
        return
    stdout().print_json(load_settings().model_dump_json())
