"""``keel feedback`` and sampled review from the terminal: a label correction shared by a
user, approved into a dataset, is the ground truth a ``keel eval run`` scores against."""

from __future__ import annotations

import asyncio
import json
import secrets
from datetime import UTC, datetime
from pathlib import Path

import pytest

from keel.pipeline.loader import spec_from_data
from keel.runtime import Runtime
from keel.settings import KeelSettings
from keel.store import Store
from keel.store.samples import ReviewSample

from .test_cli import keel

pytestmark = pytest.mark.integration

# The echo model repeats the ticket, so the pipeline labels a ticket by the label it names.
SPEC = {
    "name": "triage",
    "input": {"schema": {"type": "object", "required": ["ticket"]}},
    "prompt": {"user": "{{ ticket }}"},
    "model": {"id": "testing:echo"},
    "output": {
        "type": "label",
        "labels": ["billing", "account", "technical"],
        "default_decision": "human",
        "constrain": False,
    },
}


def answered(keel_home: Path, tickets: list[str]) -> list[str]:
    runtime = Runtime(KeelSettings())
    try:
        pushed = runtime.catalog.push(spec_from_data(SPEC))
        compiled = runtime.catalog.compiled("triage", pushed.version)
        traces = []
        for ticket in tickets:
            result = asyncio.run(runtime.runner.run(compiled, {"ticket": ticket}))
            traces.append(result.trace_id)
        runtime.flush()
        return traces
    finally:
        runtime.close()


def test_a_shared_correction_is_ground_truth_for_keel_eval(keel_home: Path) -> None:
    wrong, right = answered(
        keel_home, ["billing question about my login, mail bo@example.com", "account locked"]
    )
    code, out, err = keel("feedback", "add", wrong, "--label", "account", "--share",
                          "--comment", "it was about the login", "--user", "ana")  # fmt: skip
    assert code == 0, err
    assert "queued" in out and "(pending)" in out
    code, _, err = keel("feedback", "add", wrong, "--label", "technical", "--user", "ana")
    assert code == 1 and "feedback_duplicate" in err and "Traceback" not in err
    code, _, err = keel("feedback", "add", wrong, "--label", "refunds", "--user", "bo")
    assert code == 1 and "correction_label_unknown" in err
    code, _, err = keel("feedback", "add", "0" * 32, "--thumbs", "up")
    assert code == 1 and "trace_not_found" in err
    code, _, err = keel("feedback", "add", right, "--thumbs", "sideways")
    assert code == 1 and "feedback_invalid" in err
    code, _, err = keel("feedback", "add", right, "--thumbs", "up", "--score", "0.5")
    assert code == 1 and "one kind of feedback" in err
    code, out, err = keel("feedback", "add", right, "--thumbs", "up", "--share", "--user", "bo")
    assert code == 0, err

    code, out, err = keel("feedback", "queue", "--json")
    assert code == 0, err
    queued = json.loads(out)
    assert [q["trace_id"] for q in queued] == [wrong, right]
    assert "[EMAIL_ADDRESS]" in queued[0]["input"]["ticket"]
    for item in queued:
        code, out, err = keel("feedback", "approve", item["queue_id"], "--dataset", "triage-fb",
                              "--reviewer", "cy")  # fmt: skip
        assert code == 0, err
        assert "approved by cy into triage-fb@" in out

    code, out, err = keel("eval", "run", "triage", "--dataset", "triage-fb",
                          "-e", "classification", "--save-as", "fb")  # fmt: skip
    assert code == 0, err
    store = _store()
    try:
        run = store.eval_runs.find("fb")
        assert run is not None and run.dataset_version == 2
        results = {r.item_id: r for r in store.eval_runs.results(run.run_id)}
    finally:
        store.close()
    # The pipeline still says billing for the first ticket; the approved truth is account.
    assert results[wrong].details["predicted"] == "billing"
    assert results[wrong].scores["accuracy"] == 0.0
    assert results[right].scores["accuracy"] == 1.0


def _store() -> Store:
    return Store.open(KeelSettings().resolved_database_url)


def test_sampled_review_and_override_report_from_the_cli(keel_home: Path) -> None:
    traces = answered(keel_home, ["billing"] * 4)
    store = _store()
    try:
        for trace_id in traces:
            store.samples.add(ReviewSample(
                id=secrets.token_hex(8), trace_id=trace_id, pipeline="triage",
                pipeline_version=store.pipelines.latest("triage").version,
                input={"ticket": "billing"}, result={"decision": {"label": "billing"}},
                status="pending", created_at=datetime.now(UTC),
            ))  # fmt: skip
    finally:
        store.close()
    code, out, err = keel("review", "samples", "--json")
    assert code == 0, err
    samples = [s["sample_id"] for s in json.loads(out)]
    assert len(samples) == 4
    for sample_id in samples[:3]:
        assert keel("review", "mark", sample_id, "correct", "--reviewer", "ana")[0] == 0
    code, out, err = keel("review", "mark", samples[3], "incorrect", "--label", "account",
                          "--reviewer", "ana")  # fmt: skip
    assert code == 0 and "incorrect by ana" in out, err
    code, _, err = keel("review", "mark", samples[3], "correct", "--reviewer", "bo")
    assert code == 1 and "sample_reviewed" in err
    code, out, err = keel("review", "accuracy", "triage", "--json")
    # 3 of 4: Wilson [0.3006, 0.9544] at 95 %; the 0.9 target is inside: inconclusive, exit 0
    assert code == 0, err
    report = json.loads(out)
    assert (report["n"], report["correct"], report["status"]) == (4, 3, "inconclusive")
    assert round(report["low"], 4) == 0.3006 and round(report["high"], 4) == 0.9544
    code, out, err = keel("feedback", "overrides", "--json")
    assert code == 0, err
    [row] = json.loads(out)
    assert (row["user"], row["judged"], row["overrides"], row["tested"]) == ("ana", 4, 1, False)
    code, out, err = keel("feedback", "list", "--kind", "correction", "--json")
    assert json.loads(out)[0]["value"] == {"label": "account"}
    code, out, err = keel("eval", "online", "triage", "--json")
    assert code == 0 and json.loads(out) == []
