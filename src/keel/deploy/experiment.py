"""A deployment's A/B experiment: its arms as the report names them, and the report.

The control is ``stable``; each candidate carrying traffic is an arm named by its first
12 characters (its full version when two would share them). Arms at weight 0 (rolled back,
or set so by hand) are left out: they have no expected share for the sample-ratio check.
"""

from __future__ import annotations

from typing import Any

from keel.deploy.judge import ABReport, ArmObservations, JudgePolicy, ab_report
from keel.deploy.model import Deployment
from keel.deploy.observe import ArmSample, Observed

CONTROL = "stable"
_SHORT = 12


def arm(sample: ArmSample) -> ArmObservations:
    """The arm's observations; its size for the sample-ratio check counts each sticky user
    once (their repeated requests are not independent draws), every other request once."""
    return ArmObservations(sample.continuous(), sample.events(), requests=sample.assigned)


def arm_names(deployment: Deployment) -> dict[str, str]:
    """Candidate version → its arm's name in the report."""
    shorts = [v[:_SHORT] for v in deployment.candidates]
    unique = len(set(shorts)) == len(shorts)
    return {v: (v[:_SHORT] if unique else v) for v in deployment.candidates}


def arm_version(deployment: Deployment, name: str) -> str:
    """The candidate version behind an arm's name."""
    return next(v for v, n in arm_names(deployment).items() if n == name)


def ab_report_of(
    deployment: Deployment, observed: Observed, policy: JudgePolicy
) -> ABReport | None:
    """Every arm with traffic against stable; None when fewer than two arms have any."""
    control_share = deployment.weights.get(deployment.stable, 0.0)
    if control_share <= 0:
        return None
    arms = {CONTROL: arm(observed.baseline)}
    split = {CONTROL: control_share}
    for version, name in arm_names(deployment).items():
        share = deployment.weights.get(version, 0.0)
        if share > 0:
            arms[name] = arm(observed.arms[version])
            split[name] = share
    if len(split) < 2:
        return None
    return ab_report(arms, split, policy, control=CONTROL)


def ab_for(deployment: Deployment, observed: Observed, policy: JudgePolicy) -> dict[str, Any]:
    """The report as served by ``GET /api/deployments/{name}/report``."""
    names = {CONTROL: deployment.stable} | {n: v for v, n in arm_names(deployment).items()}
    report = ab_report_of(deployment, observed, policy)
    if report is None:
        return {
            "arm_versions": names,
            "recommendation": "no report: stable and at least one candidate need traffic",
        }
    return report.to_dict() | {"arm_versions": names}
