"""From stored runs to the features drift tests compare: embeddings, lengths, languages,
labels, refusals and model versions.

Languages come from py3langid (a modernized langid.py): its naive Bayes model over byte
n-grams ships inside the wheel (97 languages), so detection is offline, deterministic and
under a millisecond per text. Texts shorter than a few letters get ``und``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from keel.core.monitoring import TraceSample
from keel.drift.check import WindowFeatures
from keel.drift.refusal import is_refusal

Embed = Callable[[Sequence[str]], np.ndarray]
UNDETERMINED = "und"
_MIN_LETTERS = 8
_DETECT_CHARS = 1_000


class LanguageDetector:
    """py3langid's shipped model, loaded once per detector."""

    def __init__(self) -> None:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier  # deferred: loads a model

        self._identifier: Any = LanguageIdentifier.from_model_file(MODEL_FILE)

    def detect(self, text: str) -> str:
        if sum(ch.isalpha() for ch in text[:200]) < _MIN_LETTERS:
            return UNDETERMINED
        language, _ = self._identifier.classify(text[:_DETECT_CHARS])
        return str(language)


def wordllama_embed() -> Embed:
    """The bundled WordLlama embedder (offline), as a plain function."""
    from keel.retrieval.embedders import WordLlamaEmbedder

    return WordLlamaEmbedder().embed_sync


class FeatureExtractor:
    def __init__(
        self,
        embed: Embed | None = None,
        languages: LanguageDetector | None = None,
        *,
        max_embeddings: int = 300,
    ) -> None:
        self._embed = embed
        self._languages = languages
        self._max_embeddings = max_embeddings

    def features(self, samples: Sequence[TraceSample]) -> WindowFeatures:
        inputs = [s.input_text for s in samples if s.input_text]
        answers = [s.answer for s in samples if s.answer is not None]
        embeddings = None
        if self._embed is not None and inputs:
            # The newest inputs; the MMD test's cost grows with the square of their number.
            embeddings = self._embed(inputs[-self._max_embeddings :])
        languages: list[str] = []
        if self._languages is not None:
            languages = [self._languages.detect(text) for text in inputs]
        return WindowFeatures(
            embeddings=embeddings,
            input_lengths=[len(text) for text in inputs],
            languages=languages,
            labels=[s.label for s in samples if s.label],
            refusals=[is_refusal(a) for a in answers],
            output_lengths=[len(a) for a in answers],
            model_versions=Counter(s.model_version for s in samples if s.model_version),
            traces=len(samples),
        )


class BundledFeatureExtractor(FeatureExtractor):
    """WordLlama embeddings and py3langid languages, loaded on the first window it sees."""

    def __init__(self, *, max_embeddings: int = 300) -> None:
        super().__init__(max_embeddings=max_embeddings)
        self._loaded = False

    def features(self, samples: Sequence[TraceSample]) -> WindowFeatures:
        if not self._loaded:
            self._embed, self._languages = wordllama_embed(), LanguageDetector()
            self._loaded = True
        return super().features(samples)
