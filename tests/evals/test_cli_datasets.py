"""`keel datasets` as a user drives it: import, bad files, list, show, export, from traces."""

from __future__ import annotations

import json
from pathlib import Path

from .conftest import keel

ROWS = [
    {
        "id": "r1",
        "input": {"subject": "Charged twice", "body": "billed two times"},
        "label": "billing",
    },
    {"id": "r2", "input": {"subject": "Crash", "body": "app dies"}, "label": "technical"},
]


def _write(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_import_list_show_export_round_trip(project: Path, tmp_path: Path) -> None:
    source = _write(tmp_path / "cases.jsonl", ROWS)
    code, out, err = keel("datasets", "import", "support", str(source))
    assert code == 0, err
    assert "support@1" in out and "2 items" in out
    code, out, _ = keel("datasets", "import", "support", str(source))
    assert "support@2" in out

    code, out, _ = keel("datasets", "list", "--json")
    assert [(d["name"], d["version"], d["items"]) for d in json.loads(out)] == [("support", 2, 2)]
    code, out, _ = keel("datasets", "show", "support@1", "--json")
    shown = json.loads(out)
    assert shown["versions"] == [2, 1] and shown["items"][0]["label"] == "billing"

    exported = tmp_path / "out.jsonl"
    code, _, err = keel("datasets", "export", "support@1", "-o", str(exported))
    assert code == 0, err
    assert [json.loads(line) for line in exported.read_text().splitlines()] == ROWS


def test_bad_file_reports_rows_and_imports_nothing(project: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(ROWS[0]) + "\n{broken\n" + json.dumps({"label": "x"}) + "\n")
    code, out, err = keel("datasets", "import", "support", str(bad))
    assert code == 1
    assert "dataset_rows_invalid" in err and "row 2" in err and "row 3" in err
    assert "missing field 'input'" in err and "Traceback" not in err
    code, out, _ = keel("datasets", "list", "--json")
    assert json.loads(out) == []
    code, _, err = keel("datasets", "show", "support")
    assert code == 1 and "dataset_not_found" in err


def test_create_from_traces(project: Path) -> None:
    for row in ROWS:
        code, _, err = keel("run", "support-triage", "--input", json.dumps(row["input"]))
        assert code == 0, err
    code, out, err = keel(
        "datasets", "create", "from-prod", "--from-traces", "--pipeline", "support-triage"
    )
    assert code == 0, err
    assert "from-prod@1  2 items" in out
    code, out, _ = keel("datasets", "show", "from-prod", "--json")
    items = json.loads(out)["items"]
    assert [i["input"] for i in items] == [r["input"] for r in ROWS]
    assert all(i["tags"] == ["from-trace"] and i["metadata"]["trace_id"] for i in items)
    code, _, err = keel("datasets", "create", "x", "--from-traces", "--pipeline", "nothing")
    assert code == 1 and "dataset_empty" in err
