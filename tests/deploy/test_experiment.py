"""A deployment's A/B/n experiment as the controller reads it: arms named by version,
zero-weight arms left out, and sticky users counted once for the sample-ratio check."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from keel.deploy.experiment import ab_report_of, arm, arm_names, arm_version
from keel.deploy.judge import JudgePolicy, MetricSpec
from keel.deploy.model import Deployment, State, Strategy
from keel.deploy.observe import ArmSample, Observed
from keel.store.deployments import Outcome

S, A, B = "s" * 64, "a" * 64, "b" * 64
POLICY = JudgePolicy((MetricSpec("error", "proportion", "increase"),))


def ab(**changes: object) -> Deployment:
    now = datetime.now(UTC)
    base = Deployment(
        id="d1", pipeline="p", strategy=Strategy.AB, state=State.PROGRESSING, stable=S,
        candidates=(A, B), weights={S: 34.0, A: 33.0, B: 33.0}, salt="salt",
        created_at=now, updated_at=now, step_started_at=now,
    )  # fmt: skip
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def sample(errors: int, total: int) -> ArmSample:
    found = ArmSample()
    for i in range(total):
        found.add(Outcome(f"t{i}", "x", None, 10.0, error=i < errors, guardrail=False))
    return found


def test_the_better_arm_is_named_by_its_version() -> None:
    d = ab()
    observed = Observed(
        sample(2000, 10200), {A: sample(1500, 9900), B: sample(2000, 9900)}, {A: [], B: []}
    )
    report = ab_report_of(d, observed, POLICY)
    assert report is not None and report.arms == ("stable", A[:12], B[:12])
    assert report.safe_to_promote and report.promote_arm == A[:12]
    assert arm_version(d, report.promote_arm) == A


def test_arms_without_traffic_are_left_out() -> None:
    d = ab(weights={S: 67.0, A: 33.0, B: 0.0}, retired=(B,))
    observed = Observed(sample(10, 100), {A: sample(10, 100), B: ArmSample()}, {A: [], B: []})
    report = ab_report_of(d, observed, POLICY)
    assert report is not None and report.arms == ("stable", A[:12])
    assert ab_report_of(ab(weights={S: 0.0, A: 50.0, B: 50.0}), observed, POLICY) is None


def test_versions_sharing_a_prefix_keep_their_full_names() -> None:
    twins = ("f" * 12 + "1" * 52, "f" * 12 + "2" * 52)
    assert arm_names(ab(candidates=twins)) == {v: v for v in twins}


def test_sticky_users_count_once_for_the_sample_ratio() -> None:
    found = ArmSample()
    for i in range(30):  # ten users, three requests each, and five keyless requests
        found.add(Outcome(f"t{i}", "stable", S, 5.0, False, False, unit=f"u{i % 10}"))
    for i in range(5):
        found.add(Outcome(f"k{i}", "stable", S, 5.0, False, False))
    assert (found.total, found.assigned, arm(found).size()) == (35, 15, 15)
