"""`keel ingest`, `keel collections …` and `keel run --groups` as a user drives them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from ..cli.test_cli import keel
from .conftest import write_corpus

pytestmark = pytest.mark.integration


@pytest.fixture
def corpus(keel_home: Path, tmp_path: Path) -> Path:
    write_corpus(tmp_path)
    return tmp_path


def test_ingest_list_show_search_and_rollback(corpus: Path) -> None:
    code, out, err = keel("ingest", "kb", str(corpus / "docs"))
    assert code == 0, err
    assert "kb v1: 4 added" in out
    code, out, _ = keel("ingest", "kb", str(corpus / "hr"), "--groups", "hr,board", "--json")
    report = json.loads(out)
    assert report["version"] == 2 and report["documents_added"] == 1

    code, out, _ = keel("collections", "list", "--json")
    assert json.loads(out) == [
        {
            "name": "kb",
            "embedder": "wordllama:l2_supercat_256",
            "version": 2,
            "documents": 5,
            "chunks": json.loads(out)[0]["chunks"],
        }
    ]
    code, out, _ = keel("collections", "search", "kb", "executive salary", "--json")
    assert all("compensation" not in h["source"] for h in json.loads(out)["hits"])
    code, out, _ = keel("collections", "search", "kb", "executive salary", "-g", "board", "--json")
    assert json.loads(out)["hits"][0]["source"].endswith("compensation.md")

    code, out, _ = keel("collections", "rollback", "kb", "1")
    assert code == 0 and "version 1" in out
    code, out, _ = keel("collections", "search", "kb", "executive salary", "-g", "hr", "--json")
    assert all("compensation" not in h["source"] for h in json.loads(out)["hits"])
    code, out, _ = keel("collections", "show", "kb", "--json")
    assert [(v["version"], v["current"]) for v in json.loads(out)] == [(1, True), (2, False)]


def test_ingest_reports_skipped_files_and_bad_input(corpus: Path) -> None:
    (corpus / "docs" / "scan.pdf").write_bytes(b"%PDF-broken")
    code, _, err = keel("ingest", "kb", str(corpus / "docs"))
    assert code == 0
    assert "skipped" in err and "scan.pdf" in err
    code, _, err = keel("ingest", "kb", str(corpus / "missing"))
    assert code == 1 and "ingest_path_missing" in err and "Traceback" not in err
    code, _, err = keel("collections", "show", "nope")
    assert code == 1 and "collection_not_found" in err
    code, _, err = keel("collections", "rollback", "kb", "9")
    assert code == 1 and "index_version_not_found" in err


def test_run_retrieves_as_the_given_groups(corpus: Path, tmp_path: Path) -> None:
    keel("ingest", "kb", str(corpus / "docs"))
    keel("ingest", "kb", str(corpus / "hr"), "--groups", "hr")
    pipeline = tmp_path / "qa"
    pipeline.mkdir()
    spec = {
        "name": "qa",
        "input": {"schema": {"type": "object", "required": ["question"]}},
        "prompt": {"user": "{% for p in passages %}{{ p.text }}\n{% endfor %}"},
        "model": {"id": "testing:echo"},
        "retrieval": {"collection": "kb", "top_k": 3},
    }
    (pipeline / "pipeline.yaml").write_text(yaml.safe_dump(spec))
    assert keel("pipelines", "push", str(pipeline))[0] == 0
    question = json.dumps({"question": "executive base salary"})
    code, out, err = keel("run", "qa", "--input", question, "--json")
    assert code == 0, err
    assert "742,000" not in json.loads(out)["text"]
    code, out, _ = keel("run", "qa", "--input", question, "--groups", "hr", "--json")
    result = json.loads(out)
    assert "742,000" in result["text"]
    assert result["citations"][0]["source"].endswith("compensation.md")
    assert result["retrieval"] == {"collection": "kb", "version": 2}
