"""Label postprocessing: parse, apply per-label thresholds, fall back to the default decision."""

from __future__ import annotations

import pytest

from keel.core.decision import decide, extract_label
from keel.core.spec import LabelOutput

OUTPUT = LabelOutput.model_validate(
    {
        "labels": {
            "billing": {"threshold": 0.6, "decision": "queue:billing"},
            "technical": {"threshold": 0.0},
            "account-access": {"threshold": 0.8},
        },
        "default_decision": "human",
    }
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"label": "billing", "confidence": 0.9}', ("queue:billing", "confident")),
        ('{"label": "Billing", "confidence": 90}', ("queue:billing", "confident")),
        (
            'Sure! {"label": "billing", "confidence": 0.5} hope it helps',
            ("human", "below_threshold"),
        ),
        ('{"label": "billing"}', ("human", "below_threshold")),
        ("technical", ("technical", "confident")),
        ("It is an Account Access problem.", ("human", "below_threshold")),
        ('{"label": "refunds", "confidence": 1}', ("human", "unknown_label")),
        ("billing or technical?", ("human", "unparseable")),
        ("", ("human", "unparseable")),
    ],
)
def test_decisions(text: str, expected: tuple[str, str]) -> None:
    decision = decide(OUTPUT, text)
    assert (decision.decision, decision.reason) == expected


def test_confidence_out_of_range_is_ignored() -> None:
    assert extract_label('{"label": "billing", "confidence": 7000}', ["billing"]) == (
        "billing",
        None,
        True,
    )
