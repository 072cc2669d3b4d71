"""Monitoring fixtures: the bundled embedder and language model, loaded once per session."""

from __future__ import annotations

import pytest

from keel.drift.features import Embed, FeatureExtractor, LanguageDetector, wordllama_embed


@pytest.fixture(scope="session")
def bundled() -> tuple[Embed, LanguageDetector]:
    return wordllama_embed(), LanguageDetector()


@pytest.fixture(scope="session")
def extractor(bundled: tuple[Embed, LanguageDetector]) -> FeatureExtractor:
    return FeatureExtractor(*bundled)
