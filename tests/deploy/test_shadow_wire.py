"""The pipe format between the server and its shadow worker: jobs arrive whole and equal,
however the bytes are split, and each deployment crosses once until it changes."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from keel.core.decision import Decision
from keel.core.usage import Usage
from keel.deploy.model import Deployment, Strategy
from keel.deploy.shadow import MirrorJob
from keel.deploy.shadow_wire import Decoder, Encoder
from keel.pipeline.runner import RunResult
from tests.deploy.test_model import deployment as model_deployment


def deployment(revision: int = 1) -> Deployment:
    return model_deployment(strategy=Strategy.SHADOW, mirror=20.0, revision=revision)


def baseline() -> RunResult:
    return RunResult(
        trace_id="t" * 32,
        correlation_id="c",
        pipeline="triage",
        version="s1",
        label="production",
        output={"label": "billing"},
        decision=Decision("billing", "billing", 0.93, "confident"),
        text="stable says hi",
        usage=Usage(5, 3),
        cost_usd=Decimal("0.0001"),
        model="testing:stable",
        model_version=None,
        latency_ms=20.5,
    )


def jobs(n: int, d: Deployment) -> list[MirrorJob]:
    return [
        MirrorJob(d, f"p{i}", {"text": f"q{i}"}, baseline() if i % 2 else None, caller="k")
        for i in range(n)
    ]


@given(st.lists(st.integers(min_value=1, max_value=300), max_size=40))
def test_jobs_arrive_whole_however_the_bytes_are_split(cuts: list[int]) -> None:
    sent = jobs(5, deployment())
    encoder = Encoder()
    data = b"".join(encoder.encode(job) for job in sent)
    decoder, received, at = Decoder(), [], 0
    for cut in [*cuts, len(data)]:
        received += decoder.feed(data[at : at + cut])
        at += cut
    assert received == sent


def test_a_deployment_crosses_once_until_it_changes() -> None:
    encoder, decoder = Encoder(), Decoder()
    first, changed = deployment(1), deployment(2)
    job, again, other = *jobs(2, first), jobs(1, changed)[0]

    def alone(j: MirrorJob) -> int:  # with its deployment's definition
        return len(Encoder().encode(j))

    assert len(encoder.encode(job)) == alone(job)
    assert len(encoder.encode(again)) < alone(again) - 100  # refers to the one sent
    assert len(encoder.encode(other)) == alone(other)  # a new routing table: sent again
    assert decoder.feed(Encoder().encode(again)) == [again]
