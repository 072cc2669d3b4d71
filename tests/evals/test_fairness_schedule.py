"""A fairness audit scheduled in the server runs on its own and stores its report."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from keel.core.dataset import DatasetItem
from keel.pipeline.loader import spec_from_data
from keel.providers.base import ProviderPlugin
from keel.providers.registry import ProviderRegistry
from keel.providers.testing import TestingProvider, last_user_text
from keel.runtime import Runtime
from keel.settings import KeelSettings

from ..server.conftest import LiveServer

pytestmark = pytest.mark.integration


def biased(messages, params):  # type: ignore[no-untyped-def]
    return "deny" if " she " in f" {last_user_text(messages).lower()} " else "approve"


def test_the_server_runs_a_scheduled_fairness_audit(tmp_path: Path) -> None:
    provider = TestingProvider()
    provider.function("biased", biased)
    registry = ProviderRegistry([ProviderPlugin("testing", lambda name, options: provider)])
    schedule = {
        "pipeline": "loan",
        "dataset": "loans",
        "interval_seconds": 1,
        "metric": "exact",
        "evaluators": ["exact"],
    }
    settings = KeelSettings(home=tmp_path / "home", evals={"fairness_schedules": [schedule]})
    runtime = Runtime(settings, registry=registry)
    items = [
        DatasetItem(f"l{i}", {"q": f"Applicant {i}: he pays on time."}, expected="approve")
        for i in range(12)
    ]
    runtime.store.datasets.create_version("loans", items, source="test")
    spec = {
        "name": "loan",
        "input": {"schema": {"type": "object"}, "mapping": {"q": "q"}},
        "prompt": {"user": "{{ q }}"},
        "model": {"id": "testing:biased"},
    }
    runtime.catalog.push(spec_from_data(spec))
    try:
        with LiveServer(runtime):
            deadline = time.monotonic() + 60
            audited = []
            while not audited and time.monotonic() < deadline:
                time.sleep(0.5)
                runs = runtime.store.eval_runs.list(pipeline="loan")
                audited = [r for r in runs if r.summary and "fairness" in r.summary]
        assert audited, "no scheduled fairness audit was stored within 60 s"
        gender = audited[0].summary["fairness"]["attributes"]["gender"]
        assert gender["flips"] == gender["items"] == 12
    finally:
        runtime.close()
