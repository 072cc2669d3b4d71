"""Eval fixtures: a starter project on the echo model, driven through the CLI in process."""

from __future__ import annotations

from pathlib import Path

import pytest

from ..cli_runner import echo_project, keel


@pytest.fixture
def project(keel_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`keel init` output with its pipelines on the echo model, pushed to the store."""
    monkeypatch.setenv("KEEL_PROVIDERS__DEFAULT_MODEL", "testing:echo")
    root = echo_project(tmp_path / "proj")
    code, _, err = keel("pipelines", "push", *map(str, (root / "pipelines").glob("*")))
    assert code == 0, err
    return root
