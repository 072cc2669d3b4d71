"""The ``keel`` command: errors become one clear line on stderr and a non-zero exit."""

from __future__ import annotations

import os
import sys

import typer
from rich.text import Text
from typer.exceptions import TyperException

from keel.cli import datasets as datasets_cli
from keel.cli import deploy as deploy_cli
from keel.cli import evals as evals_cli
from keel.cli import feedback as feedback_cli
from keel.cli import (
    keys,
    monitoring,
    pipelines,
    project,
    redteam,
    retention,
    retrieval,
    review,
    run,
    serve,
    traces,
    usage,
)
from keel.cli.output import stderr
from keel.core.errors import KeelError

EXIT_ERROR = 1
EXIT_USAGE = 2


def build() -> typer.Typer:
    app = typer.Typer(
        name="keel",
        help="Keel: versioned LLM pipelines behind resilient, traced model adapters.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
    )
    app.command()(run.run)
    app.command()(serve.serve)
    app.command()(project.init)
    app.command()(project.settings)
    app.command()(redteam.redteam)
    app.add_typer(pipelines.app, name="pipelines")
    app.add_typer(traces.app, name="traces")
    app.add_typer(project.db_app, name="db")
    app.add_typer(datasets_cli.app, name="datasets")
    app.add_typer(evals_cli.app, name="eval")
    app.add_typer(review.app, name="review")
    app.add_typer(feedback_cli.app, name="feedback")
    app.add_typer(retention.app, name="retention")
    app.command()(retrieval.ingest)
    app.add_typer(retrieval.app, name="collections")
    app.add_typer(keys.app, name="keys")
    app.add_typer(monitoring.alerts_app, name="alerts")
    app.add_typer(monitoring.slo_app, name="slo")
    app.add_typer(monitoring.drift_app, name="drift")
    app.command()(usage.usage)
    app.add_typer(deploy_cli.app, name="deploy")
    return app


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    try:
        code = build()(args=argv, standalone_mode=False)
        if isinstance(code, int) and code:  # typer.Exit(n) comes back as a return value here
            sys.exit(code)
    except KeelError as exc:
        stderr().print(Text.assemble(("error", "red"), f" [{exc.code}]: {exc.message}"))
        sys.exit(EXIT_ERROR)
    except typer.Abort:
        stderr().print("aborted")
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except TyperException as exc:  # usage errors: Typer prints them with the command's help
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        sys.exit(getattr(exc, "exit_code", EXIT_USAGE))
    except Exception as exc:  # the CLI never shows a traceback; the log level can
        if os.environ.get("KEEL_LOG_LEVEL", "").lower() == "debug":
            raise
        message = (
            f" [internal_error]: {type(exc).__name__}: {exc} (KEEL_LOG_LEVEL=debug shows more)"
        )
        stderr().print(Text.assemble(("error", "red"), message))
        sys.exit(EXIT_ERROR)
    return 0
