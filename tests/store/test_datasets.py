"""Dataset versions are immutable and numbered; eval runs keep every finished trial."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from keel.core.dataset import DatasetItem
from keel.core.errors import ConflictError, InvalidInputError, NotFoundError
from keel.core.trial import TrialResult
from keel.store import Store
from keel.store.datasets import parse_ref
from keel.store.eval_runs import EvalRun

ITEMS = [
    DatasetItem("a", {"q": "Résumé ✓"}, expected="x", tags=("t",), metadata={"k": [1, None]}),
    DatasetItem("b", "text input", label="billing"),
]


def test_versions_are_numbered_and_immutable(store: Store) -> None:
    first = store.datasets.create_version("support", ITEMS, source="file:a.jsonl")
    second = store.datasets.create_version("support", ITEMS[:1], source="file:b.jsonl")
    assert (first.version, second.version) == (1, 2)
    assert store.datasets.items("support", 1) == ITEMS
    assert store.datasets.items("support") == ITEMS[:1]
    assert store.datasets.get("support").version == 2
    assert [v.version for v in store.datasets.versions("support")] == [2, 1]
    assert [d.ref for d in store.datasets.list()] == ["support@2"]


def test_add_items_makes_a_new_version_and_refuses_known_ids(store: Store) -> None:
    store.datasets.create_version("support", ITEMS, source="file")
    added = store.datasets.add_items("support", [DatasetItem("c", "new")], source="feedback")
    assert added.version == 2 and added.item_count == 3
    with pytest.raises(ConflictError):
        store.datasets.add_items("support", [DatasetItem("a", "again")], source="feedback")
    assert store.datasets.get("support").version == 2


def test_unknown_and_invalid_names(store: Store) -> None:
    with pytest.raises(NotFoundError) as info:
        store.datasets.get("nope")
    assert info.value.code == "dataset_not_found"
    with pytest.raises(NotFoundError):
        store.datasets.items("nope", 3)
    with pytest.raises(InvalidInputError):
        store.datasets.create_version("bad name!", ITEMS, source="x")
    with pytest.raises(InvalidInputError):
        parse_ref("support@latest")
    assert parse_ref("support@3") == ("support", 3)


def _run(run_id: str, label: str | None = None) -> EvalRun:
    return EvalRun(
        run_id=run_id,
        config_key="k" * 64,
        pipeline="triage",
        pipeline_version="v" * 64,
        dataset="support",
        dataset_version=1,
        repeats=2,
        params={"temperature": 0},
        evaluators={"exact": "1"},
        models={},
        status="running",
        label=label,
        summary=None,
        created_at=datetime.now(UTC),
    )


def test_eval_results_are_kept_once_and_runs_resume(store: Store) -> None:
    store.eval_runs.create(_run("abcdef0123456789"))
    trial = TrialResult(
        "a",
        0,
        "ok",
        {"exact": 1.0, "rouge": None},
        output={"x": 1},
        cost_usd=Decimal("0.000001234"),
        latency_ms=1.5,
    )
    store.eval_runs.add_results("abcdef0123456789", [trial])
    store.eval_runs.add_results("abcdef0123456789", [trial, TrialResult("a", 1, "timeout", {})])
    assert store.eval_runs.done("abcdef0123456789") == {("a", 0), ("a", 1)}
    stored = store.eval_runs.results("abcdef0123456789")
    assert stored[0] == trial
    assert store.eval_runs.unfinished("k" * 64) is not None
    store.eval_runs.finish("abcdef0123456789", {"metrics": {}}, {"testing:echo": "echo"}, "base")
    assert store.eval_runs.unfinished("k" * 64) is None
    assert store.eval_runs.get("abcdef").status == "finished"
    found = store.eval_runs.find("base")
    assert found is not None and found.run_id == "abcdef0123456789"
    assert store.eval_runs.find("nothing-here") is None
    with pytest.raises(NotFoundError):
        store.eval_runs.get("ffffff")


def test_bare_numbers_round_trip_in_json_columns(store: Store) -> None:
    # SQLite gives a column declared JSON numeric affinity: bare numbers must still read back.
    items = [DatasetItem("n", 5, expected=42.5), DatasetItem("b", True, expected=0)]
    store.datasets.create_version("numbers", items, source="test")
    assert store.datasets.items("numbers") == items
