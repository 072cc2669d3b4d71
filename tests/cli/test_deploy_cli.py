"""`keel deploy` with several candidates: start an A/B/n, show every arm, name the
candidate to roll back or promote, and refuse bad input with a code, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keel.catalog import PipelineCatalog
from keel.settings import KeelSettings
from keel.store import Store
from tests.deploy.conftest import spec

from ..cli_runner import keel

pytestmark = pytest.mark.integration


@pytest.fixture
def versions(keel_home: Path) -> tuple[str, str, str]:
    store = Store.open(KeelSettings().resolved_database_url)
    try:
        catalog = PipelineCatalog(store, label_ttl=0)
        found = tuple(catalog.push(spec(note=f"v{i}")).version for i in (1, 2, 3))
        catalog.set_label("triage", "production", found[0])
    finally:
        store.close()
    return found  # type: ignore[return-value]


def test_ab_over_several_candidates(versions: tuple[str, str, str]) -> None:
    stable, first, second = versions
    code, out, err = keel(
        "deploy", "triage", first[:8], second[:8], "--strategy", "ab", "--split", "34,33,33",
        "--sticky", "header:X-User-ID", "--json",
    )  # fmt: skip
    assert code == 0, err
    started = json.loads(out)
    assert started["candidates"] == [first, second]
    assert started["weights"] == {stable: 34.0, first: 33.0, second: 33.0}
    code, out, _ = keel("deploy", "status", "triage")
    assert code == 0
    for version, weight in ((stable, 34), (first, 33), (second, 33)):
        assert f"{version}  {weight}%" in out
    assert "candidate 1" in out and "candidate 2" in out
    code, _, err = keel("deploy", "promote", "triage")
    assert code == 1 and "deployment_version_required" in err and "Traceback" not in err
    code, out, err = keel("deploy", "rollback", "triage", second[:8])
    assert code == 0, err
    assert f"{second}  0%  (rolled back)" in out and f"{stable}  67%" in out
    code, out, err = keel("deploy", "promote", "triage", first[:8], "--json")
    assert code == 0, err
    assert json.loads(out)["state"] == "promoted"
    code, out, _ = keel("deploy", "history", "triage", "--json")
    actions = [e["action"] for e in json.loads(out)[0]["events"]]
    assert actions == ["created", "started", "candidate_rolled_back", "promoted"]


def test_bad_requests_are_refused_without_a_traceback(versions: tuple[str, str, str]) -> None:
    stable, first, second = versions
    cases = [
        (("deploy", "triage", first, first, "--strategy", "ab"), "deployment_candidates_invalid"),
        (("deploy", "triage", first, second, "--strategy", "blue-green"),
         "deployment_strategy_invalid"),
        (("deploy", "triage", first, second, "--strategy", "ab", "--split", "40,40,40"),
         "deployment_split_invalid"),
        (("deploy", "triage", first, second, "--strategy", "ab", "--weights",
          f"stable=50,{first[:8]}=30,{second[:8]}=30"), "deployment_weights_invalid"),
        (("deploy", "triage", first, stable), "deployment_noop"),
        (("deploy", "triage", first, "--strategy", "shadow", "--mirror", "10", "--then", "ab"),
         "deployment_then_invalid"),
        (("deploy", "triage", first, "--then", "canary"), "deployment_then_invalid"),
    ]  # fmt: skip
    for args, expected in cases:
        code, _, err = keel(*args)
        assert code == 1 and expected in err and "Traceback" not in err, (args, err)
    code, out, err = keel(
        "deploy", "triage", first, second, "--strategy", "ab", "--weights",
        f"stable=50,{first[:8]}=30", "--weights", f"{second[:8]}=20", "--json",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["weights"] == {stable: 50.0, first: 30.0, second: 20.0}


def test_shadow_with_a_follow_up_shows_it(versions: tuple[str, str, str]) -> None:
    _, first, _ = versions
    code, out, err = keel(
        "deploy", "triage", first[:8], "--strategy", "shadow", "--mirror", "20",
        "--then", "canary", "--steps", "10,50,100",
    )  # fmt: skip
    assert code == 0, err
    assert "then       canary (steps 10, 50, 100)" in out
    code, out, _ = keel("deploy", "status", "triage", "--json")
    assert json.loads(out)["then"] == "canary" and json.loads(out)["ready"] == []
