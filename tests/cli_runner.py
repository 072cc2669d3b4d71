"""The `keel` command run in process as a terminal would show it, and a starter project."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from keel.cli.app import main


def keel(*args: str) -> tuple[int, str, str]:
    """Run the CLI entry point in process, capturing what a terminal would show."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as exited:
            code = int(exited.code or 0)
    return code, out.getvalue(), err.getvalue()


def echo_project(root: Path) -> Path:
    """`keel init` at ``root``, its pipelines switched from the bundled model to the echo one."""
    code, _, err = keel("init", str(root))
    assert code == 0, err
    for spec in (root / "pipelines").glob("*/pipeline.yaml"):
        spec.write_text(spec.read_text().replace("id: local:smollm2", "id: testing:echo"))
    return root
