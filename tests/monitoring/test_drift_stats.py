"""Drift statistics: each test against scipy or a hand computation, its power on injected
drift, and the false-alarm rate of whole checks under no drift."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
from scipy import stats as sps

from keel.drift import stats
from keel.drift.check import DriftPolicy, WindowFeatures, check_drift, new_versions
from keel.drift.features import Embed, FeatureExtractor, LanguageDetector
from keel.drift.refusal import is_refusal
from keel.drift.simulate import Traffic, take
from keel.evals.stats import wilson


def test_mmd_permutation_test_finds_a_shift_and_not_noise() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=(80, 16))
    same = rng.normal(size=(80, 16))
    shifted = rng.normal(size=(80, 16)) + 0.5
    assert stats.mmd_test(a, same, permutations=200).p_value > 0.05
    shifted_result = stats.mmd_test(a, shifted, permutations=200)
    assert shifted_result.p_value == pytest.approx(1 / 201)  # no permutation beats it
    assert shifted_result.details["mmd2"] > 0


def test_mmd_p_values_are_roughly_uniform_under_the_null() -> None:
    rng = np.random.default_rng(7)
    p = [
        stats.mmd_test(
            rng.normal(size=(30, 4)), rng.normal(size=(30, 4)), permutations=99, seed=s
        ).p_value
        for s in range(200)
    ]
    rejected = sum(v < 0.05 for v in p) / len(p)
    low, high = wilson(sum(v < 0.05 for v in p), len(p))
    assert low <= 0.05 <= high, f"rejection rate {rejected} is not compatible with 5 %"


def test_length_test_matches_scipy_mann_whitney() -> None:
    ref, cur = [3, 5, 8, 8, 10, 12, 15], [9, 11, 14, 14, 20, 22]
    expected = sps.mannwhitneyu(cur, ref, alternative="two-sided", method="asymptotic")
    result = stats.length_test(ref, cur, metric="input_length")
    assert result.p_value == pytest.approx(expected.pvalue)
    assert result.details == {"median_reference": 8.0, "median_current": 14.0}
    assert stats.length_test([4, 4], [4, 4, 4], metric="x").p_value == 1.0


def test_categorical_test_pools_rare_categories_and_matches_a_hand_computation() -> None:
    ref = ["en"] * 60 + ["de"] * 40 + ["fr"] * 1
    cur = ["en"] * 30 + ["de"] * 70 + ["it"] * 2
    names, table = stats.pooled_table(Counter(ref), Counter(cur))
    assert names == ["de", "en", stats.OTHER]  # fr and it are too rare for chi-square alone
    assert table.tolist() == [[40, 60, 1], [70, 30, 2]]
    # Hand computation of Pearson's statistic on that 2 x 3 table.
    obs = np.array(table)
    expected = obs.sum(axis=1, keepdims=True) * obs.sum(axis=0, keepdims=True) / obs.sum()
    chi2 = float(((obs - expected) ** 2 / expected).sum())
    result = stats.categorical_test(ref, cur, metric="input_language")
    assert result.statistic == pytest.approx(chi2)
    assert result.p_value == pytest.approx(float(sps.chi2.sf(chi2, 2)))
    assert stats.categorical_test(["a"] * 5, ["a"] * 9, metric="x").p_value == 1.0


def test_proportion_test_is_fishers_exact_test() -> None:
    result = stats.proportion_test(2, 100, 12, 100, metric="output_refusal")
    expected = sps.fisher_exact([[12, 88], [2, 98]])
    assert result.p_value == pytest.approx(expected.pvalue)
    assert result.details == {"rate_reference": 0.02, "rate_current": 0.12}


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        ("I'm sorry, but I can't help with that request.", True),
        ("As an AI language model, I do not have opinions.", True),
        ("I cannot provide instructions for that.", True),
        ("Unfortunately, I am unable to assist with this.", True),
        ("I\u2019m sorry, but that is not something I can do.", True),  # typographic apostrophe
        ("Your refund was issued on Monday.", False),
        ("Sure! Here is how to export your data.", False),
        (("Here is a long answer. " * 40) + "I can't say more.", False),  # past the opening
        ("", False),
    ],
)
def test_refusal_detection(text: str, refusal: bool) -> None:
    assert is_refusal(text) is refusal


def test_model_versions_new_in_the_current_window() -> None:
    ref = Counter({"gpt-4o-2024-08-06": 50})
    assert new_versions(ref, Counter({"gpt-4o-2024-08-06": 40}), 1) == []
    assert new_versions(ref, Counter({"gpt-4o-2024-11-20": 3, "gpt-4o-2024-08-06": 9}), 1) == [
        "gpt-4o-2024-11-20"
    ]
    assert new_versions(ref, Counter({"gpt-4o-2024-11-20": 1}), 2) == []
    assert new_versions(Counter(), Counter({"x": 5}), 1) == []  # no baseline, no verdict


def _check(
    extractor: FeatureExtractor, ref: Traffic, cur: Traffic, n: int = 120, seed: int = 0
) -> dict[str, bool]:
    rng = np.random.default_rng(seed)
    report = check_drift(
        extractor.features(ref.samples(rng, n)),
        extractor.features(cur.samples(rng, n)),
        DriftPolicy(alpha=0.01, min_samples=30),
    )
    return {
        "input": report.input_drift,
        "output": report.output_drift,
        "version": report.version_changed,
        **{r.metric: r.p_value < report.threshold for r in report.results},
    }


def test_injected_input_drift_is_detected(extractor: FeatureExtractor) -> None:
    base = Traffic()
    found = _check(extractor, base, Traffic(medical_share=0.5))
    assert found["input"] and found["input_embedding"]
    assert not found["output"] and not found["version"]
    german = _check(extractor, base, Traffic(german_share=0.4), seed=1)
    assert german["input_language"] and german["input"]


def test_injected_output_drift_is_detected(extractor: FeatureExtractor) -> None:
    base = Traffic()
    labels = _check(extractor, base, Traffic(label_weights=(0.15, 0.35, 0.15, 0.35)))
    assert labels["output_label"] and labels["output"] and not labels["input"]
    refusals = _check(extractor, base, Traffic(refusal_rate=0.2), seed=2)
    assert refusals["output_refusal"] and refusals["output"]
    longer = _check(extractor, base, Traffic(answer_words=30), seed=3)
    assert longer["output_length"]


def test_a_changed_model_version_is_detected(extractor: FeatureExtractor) -> None:
    found = _check(extractor, Traffic(), Traffic(model_version="gpt-4o-2024-11-20"))
    assert found["version"] and not found["input"] and not found["output"]


def test_thin_windows_are_skipped_not_reported_as_drift() -> None:
    report = check_drift(
        WindowFeatures(input_lengths=[1] * 10, labels=["a"] * 10),
        WindowFeatures(input_lengths=[99] * 10, labels=["b"] * 10),
        DriftPolicy(min_samples=30),
    )
    assert report.results == ()
    assert set(report.skipped) >= {"input_length", "output_label", "input_embedding"}
    assert not report.input_drift and not report.output_drift


@pytest.mark.timeout(900)  # 500 full checks; about 15 s on a quiet machine
def test_no_drift_false_alarm_rate_stays_under_alpha(
    bundled: tuple[Embed, LanguageDetector],
) -> None:
    """500 no-drift checks (every metric tested) on windows drawn from one pool of traffic."""
    rng = np.random.default_rng(2024)
    pool = FeatureExtractor(*bundled, max_embeddings=3000).features(Traffic().samples(rng, 3000))
    alpha, checks, n = 0.05, 500, 60
    policy = DriftPolicy(alpha=alpha, min_samples=30, permutations=100)
    alarms = 0
    for i in range(checks):
        ref = take(pool, rng.choice(3000, size=n, replace=False))
        cur = take(pool, rng.choice(3000, size=n, replace=False))
        report = check_drift(ref, cur, replace(policy, seed=i))
        assert len(report.results) == 6
        alarms += bool(report.drifted())
    low, high = wilson(alarms, checks)
    print(f"false alarms {alarms}/{checks} = {alarms / checks:.3f} (95% CI {low:.3f}-{high:.3f})")
    assert alarms / checks <= alpha
