"""Several candidates through a real server: an A/B/n experiment with sticky users and its
report, naming a candidate to promote or roll back, refusals that change nothing, a
shadow mirrored to every candidate, and a canary that drops its failing candidate."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from scipy.stats import chisquare

from .conftest import Deployed, build_runtime, invoke, start, state
from .test_controller import drive, last_decision
from .test_shadow import wait_for_pairs

pytestmark = pytest.mark.integration

USERS = 150


@pytest.fixture
def deployed(tmp_path: Path) -> Iterator[Deployed]:
    """The arms fail at scripted rates; the shared circuit breaker must not add failures."""
    built = build_runtime(tmp_path / "home", breaker=False)
    yield built
    built.runtime.close()


def visit(client: httpx.Client, rounds: int, seen: dict[str, set[str]]) -> Counter[str]:
    """Every user calls ``rounds`` times; ``seen`` collects the versions that answered.
    Returns the error codes of the calls that failed."""
    failed: Counter[str] = Counter()
    for round_ in range(rounds):
        for user in range(USERS):
            answer = invoke(client, f"r{round_}", **{"X-User-ID": f"user-{user}"})
            if answer.status_code == 200:
                seen.setdefault(f"user-{user}", set()).add(answer.json()["version"])
            else:
                failed[answer.json()["error"]["code"]] += 1
    return failed


def test_sticky_ab_over_three_arms_with_its_report(
    client: httpx.Client, deployed: Deployed
) -> None:
    # the always-valid test needs a few hundred requests per arm to show a change in an
    # error rate; stable and the first candidate fail alike, the second far more often
    deployed.arms["stable"].error_rate = deployed.arms["candidate"].error_rate = 0.1
    deployed.arms["second"].error_rate = 0.45
    created = start(
        client, [deployed.candidate[:10], deployed.second[:10]], strategy="ab",
        split="34,33,33", sticky="header:X-User-ID", min_samples=30,
    )  # fmt: skip
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["candidates"] == [deployed.candidate, deployed.second]
    assert body["weights"] == {deployed.stable: 34, deployed.candidate: 33, deployed.second: 33}
    seen: dict[str, set[str]] = {}
    failed = visit(client, 5, seen)
    assert set(failed) <= {"provider_server_error"}, failed  # only the scripted failures
    assert all(len(versions) == 1 for versions in seen.values())  # nobody ever flips
    users = Counter(next(iter(v)) for v in seen.values())
    order = [deployed.stable, deployed.candidate, deployed.second]
    # users whose every answer failed are not in ``seen``; they are all on the second arm
    users[deployed.second] += USERS - len(seen)
    assert (
        chisquare([users[v] for v in order], [0.34 * USERS, 0.33 * USERS, 0.33 * USERS]).pvalue
        > 0.001
    )
    deployed.runtime.flush()
    report = client.get("/api/deployments/triage/report").json()["ab"]
    first, second = deployed.candidate[:12], deployed.second[:12]
    assert report["arms"] == ["stable", first, second]
    assert report["arm_versions"][second] == deployed.second
    ratio = report["sample_ratio"]
    assert set(ratio["observed"]) == {"stable", first, second} and not ratio["flagged"]
    assert sum(ratio["observed"].values()) == USERS  # each sticky user counted once
    errors = {c["arm"]: c for c in report["comparisons"] if c["metric"] == "error"}
    assert errors[second]["sequential"] == "worse"
    assert errors[second]["always_valid_p_adjusted"] >= errors[second]["always_valid_p"]
    assert errors[first]["sequential"] == "inconclusive"
    assert {s["arm"] for s in report["summaries"] if s["metric"] == "error"} == set(report["arms"])
    assert not report["safe_to_promote"]
    assert f"{second} is worse on error" in report["recommendation"]


def test_promote_and_roll_back_name_a_candidate(client: httpx.Client, deployed: Deployed) -> None:
    created = start(
        client, [deployed.candidate, deployed.second], strategy="ab", split="34,33,33",
        sticky="header:X-User-ID",
    )  # fmt: skip
    assert created.status_code == 201, created.text
    seen: dict[str, set[str]] = {}
    visit(client, 1, seen)
    before = state(client)
    refused = client.post("/api/deployments/triage/promote")
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "deployment_version_required"
    assert state(client) == before
    # roll the second candidate back alone: its users return to stable, nobody else moves
    dropped = client.post("/api/deployments/triage/rollback", json={"version": deployed.second})
    assert dropped.status_code == 200, dropped.text
    assert dropped.json()["state"] == "progressing" and dropped.json()["retired"] == [
        deployed.second
    ]
    after: dict[str, set[str]] = {}
    visit(client, 1, after)
    for user, versions in seen.items():
        was = next(iter(versions))
        assert after[user] == ({deployed.stable} if was == deployed.second else versions), user
    promoted = client.post(
        "/api/deployments/triage/promote", json={"version": deployed.candidate[:9]}
    )
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["state"] == "promoted"
    assert {invoke(client).json()["version"] for _ in range(10)} == {deployed.candidate}
    store = deployed.runtime.store
    assert store.pipelines.resolve_label("triage", "production") == deployed.candidate
    events = client.get("/api/deployments/triage/history").json()["deployments"][0]["events"]
    assert [e["action"] for e in events][-2:] == ["candidate_rolled_back", "promoted"]


def test_refusals_with_several_candidates_leave_the_deployment_untouched(
    client: httpx.Client, deployed: Deployed
) -> None:
    extra = [deployed.runtime.catalog.push(_spec(i)).version for i in range(6)]
    assert start(client, [deployed.candidate, deployed.second], strategy="ab").status_code == 201
    before = state(client)
    c, s, st = deployed.candidate, deployed.second, deployed.stable
    refusals = [
        (start(client, [c, c], strategy="ab"), 422, "deployment_candidates_invalid"),
        (start(client, [c, st], strategy="ab"), 409, "deployment_noop"),
        (start(client, [c, "deadbeef"], strategy="ab"), 404, "version_not_found"),
        (start(client, [c, s, *extra], strategy="ab"), 422, "deployment_candidates_invalid"),
        (start(client, [c, s], strategy="blue-green"), 422, "deployment_strategy_invalid"),
        (start(client, [c, s], strategy="ab", split="50,30,30"), 422, "deployment_split_invalid"),
        (
            start(client, [c, s], strategy="ab", weights={"stable": 50, c: 60, s: -10}),
            422,
            "deployment_weights_invalid",
        ),
        (
            start(client, [c, s], strategy="ab", weights={c: 50, s: 50}),
            422,
            "deployment_weights_invalid",
        ),  # stable would get no traffic
        (
            start(client, [c, s], strategy="ab", weights={"stable": 50, c: 50, "beef": 0}),
            422,
            "deployment_weights_invalid",
        ),
        (start(client, [c, s], strategy="ab"), 409, "deployment_active"),
        (
            client.put("/api/deployments/triage/weights", json={"weights": {st: 50, c: 30, s: 30}}),
            422,
            "deployment_weights_invalid",
        ),
        (client.post("/api/deployments/triage/promote"), 422, "deployment_version_required"),
        (
            client.post("/api/deployments/triage/rollback", json={"version": "ffff"}),
            422,
            "deployment_version_invalid",
        ),
    ]
    for response, status, code in refusals:
        assert (response.status_code, response.json()["error"]["code"]) == (status, code), code
    assert state(client) == before


def _spec(i: int) -> Any:
    from tests.deploy.conftest import spec

    return spec(note=f"extra {i}")


def test_shadow_mirrors_every_candidate_in_its_own_pairs(
    client: httpx.Client, deployed: Deployed
) -> None:
    created = start(
        client, [deployed.candidate, deployed.second], strategy="shadow", mirror=100,
        evaluator="contains:value=second",
    )  # fmt: skip
    assert created.status_code == 201, created.text
    answers = [invoke(client, f"q{i}").json() for i in range(8)]
    assert {a["text"] for a in answers} == {"stable says hi"}
    pairs = wait_for_pairs(deployed, created.json()["id"], 16)
    by_version = Counter(p.candidate_version for p in pairs)
    assert by_version == {deployed.candidate: 8, deployed.second: 8}
    for p in pairs:  # the evaluator tells the candidates' answers apart
        assert p.candidate_score == (1.0 if p.candidate_version == deployed.second else 0.0)
    deployed.runtime.flush()
    report = client.get("/api/deployments/triage/report").json()
    assert set(report["candidates"]) == {deployed.candidate, deployed.second}
    counts = report["observed"]["candidates"]
    assert (
        counts[deployed.candidate]["paired_scores"] == counts[deployed.second]["paired_scores"] == 8
    )


def test_canary_rolls_back_the_failing_candidate_and_promotes_the_other(
    client: httpx.Client, deployed: Deployed
) -> None:
    deployed.arms["candidate"].error_rate = 0.3
    for name in ("stable", "second"):
        deployed.arms[name].jitter_s = 0.004
    body = {"version": [deployed.candidate, deployed.second], "steps": "20,50,100",
            "interval": "3s", "min_samples": 30}  # fmt: skip
    final = drive(client, body, timeout=240)
    assert final["state"] == "promoted", final
    assert final["retired"] == [deployed.candidate]
    events = client.get("/api/deployments/triage/history").json()["deployments"][0]["events"]
    dropped = next(e for e in events if e["action"] == "candidate_rolled_back")
    assert dropped["actor"] == "controller"
    assert dropped["evidence"]["candidate"] == deployed.candidate
    assert dropped["weights"][deployed.candidate] == 0
    errors = next(m for m in dropped["evidence"]["judgement"]["metrics"] if m["name"] == "error")
    assert errors["outcome"] == "high"
    decision = last_decision(client)
    assert decision["action"] == "promoted"
    store = deployed.runtime.store
    assert store.pipelines.resolve_label("triage", "production") == deployed.second
