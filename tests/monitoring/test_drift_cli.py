"""Drift checks on stored runs, from Python and from the CLI; `keel alerts` and `keel slo`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from keel.catalog import PipelineCatalog
from keel.drift.simulate import NS, Traffic, spread, store_runs
from keel.monitoring import Monitoring
from keel.pipeline.loader import spec_from_data
from keel.runtime import Runtime
from keel.settings import KeelSettings
from keel.store import Store

from ..cli.test_cli import keel

pytestmark = pytest.mark.integration
SPEC = {"name": "triage", "prompt": {"user": "{{ q }}"}, "model": {"id": "testing:echo"}}


def _seed_project(current: Traffic) -> None:
    """A pushed pipeline with 150 reference runs (the hour before the last 10 minutes) and 80
    current runs, in the project's own store."""
    runtime = Runtime(KeelSettings())
    try:
        runtime.catalog.push(spec_from_data(SPEC))
        now = time.time_ns()
        rng = np.random.default_rng(11)
        reference = spread(Traffic().samples(rng, 150), now - 3500 * NS, now - 700 * NS)
        recent = spread(current.samples(rng, 80), now - 500 * NS, now - NS)
        store_runs(runtime.store, reference + recent, "triage")
    finally:
        runtime.close()


def test_drift_check_on_stored_runs(tmp_path: Path) -> None:
    store = Store.open(f"sqlite:///{tmp_path / 'keel.db'}")
    try:
        PipelineCatalog(store).push(spec_from_data(SPEC))
        now = time.time_ns()
        rng = np.random.default_rng(3)
        reference = spread(Traffic().samples(rng, 150), now - 3500 * NS, now - 700 * NS)
        recent = spread(
            Traffic(refusal_rate=0.3, label_weights=(0.1, 0.3, 0.2, 0.4)).samples(rng, 80),
            now - 500 * NS,
            now - NS,
        )
        store_runs(store, reference + recent, "triage")
        monitoring = Monitoring(store, KeelSettings().monitoring)
        report, windows = monitoring.drift_check("triage", window_s=600, reference_s=3000)
        assert report.output_drift and not report.input_drift and not report.version_changed
        drifted = {r.metric for r in report.drifted()}
        assert {"output_refusal", "output_label"} <= drifted
        [result] = [r for r in report.results if r.metric == "input_embedding"]
        assert (result.n_reference, result.n_current) == (150, 80)
        assert windows.current[1] > windows.current[0] == windows.reference[1]
    finally:
        store.close()


def test_keel_drift_check_exits_1_on_drift_and_0_without(keel_home: Path) -> None:
    _seed_project(Traffic(german_share=0.5))
    code, out, err = keel("drift", "check", "triage", "--window", "10m", "--reference", "50m")
    assert code == 1, err
    assert "input_language" in out and "DRIFT" in out
    code, out, err = keel("drift", "check", "triage", "--window", "10m", "--json")
    body = json.loads(out)
    assert body["input_drift"] is True and body["output_drift"] is False
    code, out, err = keel("drift", "check", "triage", "--window", "10 fortnights")
    assert code == 1 and "duration_invalid" in err
    code, out, err = keel("drift", "check", "nobody")
    assert code == 1 and "pipeline_not_found" in err


def test_keel_drift_check_passes_on_unchanged_traffic(keel_home: Path) -> None:
    _seed_project(Traffic())
    code, out, err = keel("drift", "check", "triage", "--window", "10m", "--reference", "50m")
    assert code == 0, out + err
    assert "DRIFT" not in out


def test_keel_alerts_and_slo_status(keel_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "KEEL_MONITORING__SLOS",
        json.dumps([{"pipeline": "triage", "availability": 0.99, "latency_p95_ms": 500}]),
    )
    _seed_project(Traffic())
    code, out, err = keel("slo", "status", "--json")
    assert code == 0, err
    statuses = json.loads(out)
    assert [s["objective"] for s in statuses] == ["availability", "latency"]
    assert statuses[0]["period"]["runs"] == 230 and statuses[0]["firing"] is False
    code, out, err = keel("slo", "status")
    assert code == 0 and "triage" in out
    code, out, err = keel("alerts", "evaluate")
    assert code == 0 and "no alert changed" in out
    code, out, err = keel("alerts")
    assert code == 0 and "no firing alerts" in out
    code, out, err = keel("alerts", "list", "--status", "open")
    assert code == 1 and "alert_status_invalid" in err
    code, out, err = keel("alerts", "show", "nope")
    assert code == 1 and "alert_not_found" in err
