"""The CLI as a user drives it: push, list, show, diff, label, run, traces, init, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from keel.cli.app import main

from ..cli_runner import echo_project, keel
from ..conftest import EXAMPLES

pytestmark = pytest.mark.integration


def keel_subprocess(*args: str) -> tuple[int, str, str]:
    """The installed console script in its own process, as a user's shell runs it."""
    script = Path(sys.executable).parent / "keel"
    proc = subprocess.run(
        [str(script), *args], capture_output=True, text=True, timeout=120, env=dict(os.environ)
    )
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def project(keel_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A starter project from `keel init`, its pipelines switched to the echo model."""
    monkeypatch.setenv("KEEL_PROVIDERS__DEFAULT_MODEL", "testing:echo")
    return echo_project(tmp_path / "proj")


def test_init_refuses_a_used_directory(project: Path) -> None:
    code, _, err = keel("init", str(project))
    assert code == 1
    assert "init_target_not_empty" in err
    assert "Traceback" not in err


def test_push_list_show_label_diff(project: Path) -> None:
    triage = project / "pipelines" / "support-triage"
    code, out, err = keel(
        "pipelines", "push", str(triage), str(project / "pipelines" / "summarize")
    )
    assert code == 0, err
    assert "support-triage@" in out and "(new version)" in out
    first = out.split("support-triage@")[1].split()[0]

    code, out, _ = keel("pipelines", "push", str(triage))
    assert "(unchanged)" in out

    (triage / "system.j2").write_text((triage / "system.j2").read_text() + "Be strict.\n")
    code, out, _ = keel("pipelines", "push", str(triage), "--label", "staging")
    second = out.split("support-triage@")[1].split()[0]
    assert second != first
    assert f"staging -> {second}" in out

    code, out, _ = keel("pipelines", "diff", f"support-triage@{first}", f"support-triage@{second}")
    assert code == 0
    assert "~ prompt.system:" in out and "+Be strict." in out

    code, out, _ = keel("pipelines", "label", "support-triage", first[:8], "production")
    assert code == 0 and f"support-triage@production -> {first}" in out

    code, out, _ = keel("pipelines", "show", "support-triage@production", "--json")
    shown = json.loads(out)
    assert shown["labels"] == {"production": first, "staging": second}
    assert "Be strict." not in shown["spec"]["prompt"]["system"]

    code, out, _ = keel("pipelines", "list")
    assert "support-triage" in out and "summarize" in out


def test_run_then_show_the_trace_tree(project: Path) -> None:
    keel("pipelines", "push", str(project / "pipelines" / "summarize"))
    code, out, err = keel(
        "run", "summarize", "--input", '{"text": "Keel keeps models honest."}', "--json"
    )
    assert code == 0, err
    result = json.loads(out)
    assert "Keel keeps models honest." in result["output"]

    code, out, err = keel("traces", "show", result["trace_id"])
    assert code == 0, err
    for name in (
        "pipeline summarize",
        "preprocess",
        "render_prompt",
        "chat testing:echo",
        "postprocess",
    ):
        assert name in out
    assert "in:  " in out and "out: " in out and "tokens" in out

    code, out, _ = keel("traces", "list", "--json")
    assert result["trace_id"] in [t["trace_id"] for t in json.loads(out)]


@pytest.mark.parametrize(
    ("args", "code_text"),
    [
        (["run", "nope", "--input", "{}"], "pipeline_not_found"),
        (["run", "summarize", "--input", "{not json"], "input_not_json"),
        (["run", "summarize", "--input", "@/no/such/file.json"], "invalid_input"),
        (["run", "summarize", "--input", '{"text": 5}'], "input_schema_violation"),
        (["run", "summarize@deadbeef00", "--input", '{"text": "x"}'], "version_not_found"),
        (["run", "summarize@canary", "--input", '{"text": "x"}'], "label_not_found"),
        (["traces", "show", "0123"], "trace_not_found"),
        (["pipelines", "push", "/no/such/dir"], "spec_not_found"),
    ],
)
def test_errors_are_one_line_without_traceback(
    project: Path, args: list[str], code_text: str
) -> None:
    keel("pipelines", "push", str(project / "pipelines" / "summarize"))
    code, _, err = keel(*args)
    assert code == 1
    assert code_text in err
    assert "Traceback" not in err


def test_invalid_push_leaves_the_store_unchanged(project: Path) -> None:
    good = project / "pipelines" / "summarize"
    keel("pipelines", "push", str(good))
    _, before, _ = keel("pipelines", "list", "--json")
    broken = project / "pipelines" / "broken"
    broken.mkdir()
    (broken / "pipeline.yaml").write_text("name: summarize\nprompt: {user: '{% for %}'}\n")
    code, _, err = keel("pipelines", "push", str(good), str(broken))
    assert code == 1 and "template_error" in err
    _, after, _ = keel("pipelines", "list", "--json")
    assert json.loads(after) == json.loads(before)


def test_console_script_errors_without_traceback(project: Path) -> None:
    code, _, err = keel_subprocess("run", "nope", "--input", "{}")
    assert code == 1
    assert "pipeline_not_found" in err
    assert "Traceback" not in err


def test_usage_errors_exit_2(keel_home: Path) -> None:
    code, _, err = keel("run")
    assert code == 2
    assert "Traceback" not in err


def test_settings_markdown_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["settings", "--markdown"]) == 0
    assert "KEEL_DATABASE_URL" in capsys.readouterr().out


def test_examples_are_packaged() -> None:
    assert (EXAMPLES / "support-triage" / "pipeline.yaml").is_file()
