"""Canary judgement, the rollout state machine and A/B statistics (pure, no I/O).

    judge(policy, baseline, canary, paired)   -> Judgement (score, verdict, evidence table)
    next_action(rollout_policy, state, judgement, now) -> RolloutAction
    ab_report(arms, expected_split, policy)   -> ABReport (SRM, significance, safe_to_promote)

See docs/canary-judge.md for the method, the defaults and how they were tuned.
"""

from keel.deploy.judge.ab import ABReport, SampleRatio, ab_report, sample_ratio_check
from keel.deploy.judge.ab_stats import ArmComparison, ArmSummary
from keel.deploy.judge.metrics import MetricResult
from keel.deploy.judge.rollout import (
    RolloutAction,
    RolloutPolicy,
    RolloutState,
    check_due,
    next_action,
    next_check_at,
)
from keel.deploy.judge.spec import ArmObservations, JudgePolicy, MetricSpec, default_policy
from keel.deploy.judge.verdict import Judgement, Verdict, judge

__all__ = [
    "ABReport",
    "ArmComparison",
    "ArmObservations",
    "ArmSummary",
    "JudgePolicy",
    "Judgement",
    "MetricResult",
    "MetricSpec",
    "RolloutAction",
    "RolloutPolicy",
    "RolloutState",
    "SampleRatio",
    "Verdict",
    "ab_report",
    "check_due",
    "default_policy",
    "judge",
    "next_action",
    "next_check_at",
    "sample_ratio_check",
]
