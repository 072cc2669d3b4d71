"""Eval fixtures: a starter project on the echo model, driven through the CLI in process."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest

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


@pytest.fixture
def project(keel_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`keel init` output with its pipelines on the echo model, pushed to the store."""
    monkeypatch.setenv("KEEL_PROVIDERS__DEFAULT_MODEL", "testing:echo")
    code, _, err = keel("init", str(tmp_path / "proj"))
    assert code == 0, err
    root = tmp_path / "proj"
    for spec in (root / "pipelines").glob("*/pipeline.yaml"):
        spec.write_text(spec.read_text().replace("id: local:smollm2", "id: testing:echo"))
    code, _, err = keel("pipelines", "push", *map(str, (root / "pipelines").glob("*")))
    assert code == 0, err
    return root
