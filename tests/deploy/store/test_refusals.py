"""Invalid deployment requests are refused with a clear code and change nothing stored."""

from __future__ import annotations

from typing import Any

import pytest

from keel.core.errors import KeelError
from keel.deploy.service import DeploymentService
from keel.server.routes.deployments import plan_args
from keel.store import Store

from .test_repository import snapshot


def refused(store: Store, call: Any) -> KeelError:
    before = snapshot(store)
    with pytest.raises(KeelError) as info:
        call()
    assert snapshot(store) == before
    assert info.value.status < 500
    return info.value


def test_refusals_leave_the_running_deployment_untouched(
    service: DeploymentService, store: Store, versions: tuple[str, str]
) -> None:
    stable, candidate = versions
    service.start("triage", candidate, plan_args({"steps": "10,100", "interval": "1h"}), "a")
    cases = {
        "version_not_found": lambda: service.start("triage", "ffffff0", {}, "a"),
        "deployment_active": lambda: service.start("triage", candidate, {}, "a"),
        "deployment_weights_invalid": lambda: service.set_weights(
            "triage", {candidate: 60, stable: 30}, "a"
        ),
        "deployment_interval_invalid": lambda: plan_args({"interval": "soon"}),
        "deployment_steps_invalid": lambda: plan_args({"steps": [50, 20, 100]}),
        "deployment_state_invalid": lambda: service.resume("triage", "a"),
    }
    for code, call in cases.items():
        assert refused(store, call).code == code, code
    unknown_weight = refused(
        store, lambda: service.set_weights("triage", {"ffffff0": 50, stable: 50}, "a")
    )
    assert unknown_weight.code == "deployment_weights_invalid"


def test_refusals_without_a_running_deployment(
    service: DeploymentService, store: Store, versions: tuple[str, str]
) -> None:
    stable, candidate = versions
    cases = {
        "deployment_noop": lambda: service.start("triage", stable, {}, "a"),
        "pipeline_not_found": lambda: service.start("nope", candidate, {}, "a"),
        "deployment_not_active": lambda: service.promote("triage", "a"),
        "deployment_not_found": lambda: service.current("triage"),
        "deployment_evaluator_invalid": lambda: service.start(
            "triage", candidate, {"evaluator": "no-such-evaluator"}, "a"
        ),
        "deployment_mirror_invalid": lambda: service.start(
            "triage", candidate, plan_args({"strategy": "shadow", "mirror": 0}), "a"
        ),
    }
    for code, call in cases.items():
        assert refused(store, call).code == code, code
