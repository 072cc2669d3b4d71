"""`keel eval` as CI runs it: a baseline, an unchanged pipeline passing, a worse prompt
failing with exit 1, thresholds, markdown and JUnit outputs, and `keel eval compare`."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from .conftest import keel

pytestmark = pytest.mark.integration

SPEC = """\
name: echoer
input:
  schema: {type: object, required: [text], properties: {text: {type: string}}}
prompt:
  user: "{{ text }}"
model:
  id: testing:echo
output:
  type: text
"""


@pytest.fixture
def echoer(project: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "echoer"
    folder.mkdir()
    (folder / "pipeline.yaml").write_text(SPEC)
    code, _, err = keel("pipelines", "push", str(folder))
    assert code == 0, err
    cases = tmp_path / "cases.jsonl"
    rows = [
        {"id": f"c{i}", "input": {"text": f"fact {i}"}, "expected": f"fact {i}"} for i in range(12)
    ]
    cases.write_text("".join(json.dumps(r) + "\n" for r in rows))
    code, _, err = keel("datasets", "import", "cases", str(cases))
    assert code == 0, err
    return folder


def _run_id(out: str) -> str:
    return out.split("eval ", 1)[1].split()[0]


def test_gate_passes_unchanged_and_fails_a_worse_prompt(echoer: Path, tmp_path: Path) -> None:
    code, out, err = keel(
        "eval", "run", "echoer", "-d", "cases", "-e", "exact", "--save-as", "base"
    )
    assert code == 0, err
    assert "exact" in out and "1.000" in out and "success" in out
    base_id = _run_id(out)

    code, out, err = keel(
        "eval",
        "run",
        "echoer",
        "-d",
        "cases",
        "-e",
        "exact",
        "--baseline",
        "base",
        "--fail-on-regression",
        "--fresh",
    )
    assert code == 0, err
    assert "regressed" not in out

    spec = echoer / "pipeline.yaml"
    spec.write_text(spec.read_text().replace('user: "{{ text }}"', 'user: "Summary: {{ text }}"'))
    assert keel("pipelines", "push", str(echoer))[0] == 0
    md, xml = tmp_path / "gate.md", tmp_path / "gate.xml"
    code, out, err = keel(
        "eval",
        "run",
        "echoer",
        "-d",
        "cases",
        "-e",
        "exact",
        "--baseline",
        "base",
        "--fail-on-regression",
        "--markdown",
        str(md),
        "--junit",
        str(xml),
    )
    assert code == 1, out + err
    assert "gate failed" in err and "exact regressed" in err and "Traceback" not in err
    assert "gate failed" in md.read_text() and "| exact ↑ | 0.000 |" in md.read_text()
    suite = ET.parse(xml).getroot().find("testsuite")  # noqa: S314 (our own output)
    assert suite is not None and suite.get("failures") == "1"
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failed == ["exact"]
    worse_id = _run_id(out)

    code, out, _ = keel("eval", "compare", base_id, worse_id, "--json")
    assert code == 0
    verdicts = {m["metric"]: m for m in json.loads(out)["metrics"]}
    assert verdicts["exact"]["status"] == "regressed"
    assert verdicts["exact"]["comparison"]["diff"] == -1.0
    assert verdicts["exact"]["comparison"]["p_value"] < 0.01
    code, _, _ = keel("eval", "compare", base_id, worse_id, "--fail-on-regression")
    assert code == 1


def test_absolute_thresholds_and_bad_options(echoer: Path) -> None:
    code, _, err = keel(
        "eval",
        "run",
        "echoer",
        "-d",
        "cases",
        "-e",
        "exact",
        "--threshold",
        "exact=0.9",
        "--fail-on-regression",
    )
    assert code == 0, err
    code, _, err = keel(
        "eval",
        "run",
        "echoer",
        "-d",
        "cases",
        "-e",
        "contains:value=zzz",
        "--threshold",
        "contains=0.5",
        "--fail-on-regression",
    )
    assert code == 1 and "contains below_threshold" in err
    code, _, err = keel("eval", "run", "echoer", "-d", "cases", "--threshold", "exact")
    assert code == 1 and "threshold_invalid" in err
    code, _, err = keel("eval", "run", "echoer", "-d", "cases", "-e", "regex:pattern=(")
    assert code == 1 and "evaluator_options_invalid" in err and "Traceback" not in err
    code, _, err = keel("eval", "run", "echoer", "-d", "cases", "--baseline", "nothing")
    assert code == 1 and "baseline_not_found" in err


def test_list_and_show(echoer: Path) -> None:
    code, out, _ = keel("eval", "run", "echoer", "-d", "cases", "--repeats", "2", "--json")
    assert code == 0
    report = json.loads(out)
    run_id = report["run"]["run_id"]
    metrics = {m["metric"]: m for m in report["metrics"]}
    # items with an expected answer get `exact` by default, plus latency and cost
    assert set(metrics) == {"success", "exact", "latency_ms", "cost_usd"}
    assert metrics["exact"]["estimate"]["n_trials"] == 24
    assert report["run"]["models"] == {"testing:echo": ["echo"]}
    code, out, _ = keel("eval", "list", "--json")
    assert [r["run_id"] for r in json.loads(out)] == [run_id]
    code, out, _ = keel("eval", "show", run_id[:8])
    assert code == 0 and run_id in out


def test_matrix_and_fairness_commands(echoer: Path, tmp_path: Path) -> None:
    first = keel("pipelines", "push", str(echoer))[1].split("echoer@")[1].split()[0]
    spec = echoer / "pipeline.yaml"
    spec.write_text(spec.read_text().replace('user: "{{ text }}"', 'user: "Summary: {{ text }}"'))
    second = keel("pipelines", "push", str(echoer))[1].split("echoer@")[1].split()[0]
    code, out, err = keel(
        "eval",
        "matrix",
        f"echoer@{second}",
        f"echoer@{first}",
        "-d",
        "cases",
        "--metric",
        "exact",
        "-e",
        "exact",
        "--json",
    )
    assert code == 0, err
    cells = json.loads(out)
    assert [c["version"][:12] for c in cells] == [first[:12], second[:12]]
    assert cells[1]["worse_than_best"] is True

    rows = [
        {"id": f"p{i}", "input": {"text": f"he paid {i}"}, "expected": f"he paid {i}"}
        for i in range(8)
    ]
    people = tmp_path / "people.jsonl"
    people.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert keel("datasets", "import", "people", str(people))[0] == 0
    terms = tmp_path / "terms.json"
    terms.write_text(json.dumps({"gender": [["he", "she"]]}))
    report_md = tmp_path / "fair.md"
    code, out, err = keel(
        "eval",
        "fairness",
        f"echoer@{first}",
        "-d",
        "people",
        "--terms",
        str(terms),
        "--metric",
        "exact",
        "-e",
        "exact",
        "--markdown",
        str(report_md),
    )
    assert code == 0, err
    # the echo pipeline repeats its input, so the answer follows the pronoun: every item flips
    assert "8 of 8 items change their answer" in report_md.read_text()
    run_id = out.rsplit("run ", 1)[1].split()[0]
    code, out, _ = keel("eval", "show", run_id)
    assert code == 0 and "8 of 8 items change their answer" in out
    code, _, err = keel("eval", "fairness", "echoer", "-d", "cases", "--attribute", "nope")
    assert code == 1 and "no term set for nope" in err
