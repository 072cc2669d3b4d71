"""Time to first token as a judged canary metric, end to end: streamed chat requests to a
deployed pipeline read each arm's model as a stream, the trace records the first token,
and the controller judges it like latency. The arms' models answer in the same total time;
only the first word's delay differs."""

from __future__ import annotations

import itertools
import time
from typing import Any

import httpx
import orjson
import pytest

from .conftest import Deployed
from .test_controller import CANARY, last_decision, metric, worse

pytestmark = pytest.mark.integration
_ids = itertools.count()


def streamed(client: httpx.Client) -> str:
    """One streamed chat request to the pipeline; returns the text it streamed."""
    body = {
        "model": "pipeline/triage",
        "messages": [{"role": "user", "content": "hi"}],
        "input": {"text": f"streamed {next(_ids)}"},
        "stream": True,
    }
    text = []
    with client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200, response.read()
        for line in response.iter_lines():
            if line.startswith("data: {"):
                for choice in orjson.loads(line[6:]).get("choices", []):
                    text.append(choice["delta"].get("content") or "")
    return "".join(text)


def drive_streamed(client: httpx.Client, version: str, timeout: float = 180.0) -> dict[str, Any]:
    created = client.post(
        "/api/deployments", json={"pipeline": "triage", "version": version, **CANARY}
    )
    assert created.status_code == 201, created.text
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for _ in range(25):
            streamed(client)
        status = client.get("/api/deployments/triage").json()
        if status["state"] in ("promoted", "rolled_back"):
            return status
    raise AssertionError(f"the controller did not decide within {timeout}s: {status}")


def arms(deployed: Deployed, stable_first_s: float, candidate_first_s: float) -> None:
    for name, first in (("stable", stable_first_s), ("candidate", candidate_first_s)):
        deployed.arms[name].latency_s = 0.030
        deployed.arms[name].jitter_s = 0.004
        deployed.arms[name].first_token_s = first


def test_a_slower_first_token_rolls_back(client: httpx.Client, deployed: Deployed) -> None:
    arms(deployed, stable_first_s=0.002, candidate_first_s=0.020)
    final = drive_streamed(client, deployed.candidate)
    assert final["state"] == "rolled_back"
    decision = last_decision(client)
    assert worse(decision, "ttft_ms"), decision["evidence"]["judgement"]
    assert not worse(decision, "error") and not worse(decision, "latency_ms")
    observed = decision["evidence"]["observed"]
    assert observed["candidate"]["streamed"] > 0 and observed["stable"]["streamed"] > 0
    assert observed["candidate"]["ttft_p50_ms"] > observed["stable"]["ttft_p50_ms"] + 10


def test_an_identical_streamed_candidate_is_promoted(
    client: httpx.Client, deployed: Deployed
) -> None:
    arms(deployed, stable_first_s=0.002, candidate_first_s=0.002)
    final = drive_streamed(client, deployed.candidate)
    assert final["state"] == "promoted"
    decision = last_decision(client)
    assert metric(decision, "ttft_ms")["outcome"] == "pass"  # judged, not skipped for no data
    assert decision["evidence"]["judgement"]["verdict"] == "pass"


def test_streamed_answers_are_whole_and_traced_with_their_first_token(
    client: httpx.Client, deployed: Deployed
) -> None:
    arms(deployed, stable_first_s=0.002, candidate_first_s=0.002)
    body = {
        "pipeline": "triage",
        "version": deployed.candidate,
        "steps": "50,100",
        "interval": "1h",
    }
    assert client.post("/api/deployments", json=body).status_code == 201
    answers = {streamed(client) for _ in range(10)}
    assert answers <= {"stable says hi", "candidate says hi"}  # the model's words, joined
    deployed.runtime.flush()
    report = client.get("/api/deployments/triage/report").json()["observed"]
    assert report["stable"]["streamed"] + report["candidate"]["streamed"] == 10
    assert report["stable"]["requests"] + report["candidate"]["requests"] == 10
