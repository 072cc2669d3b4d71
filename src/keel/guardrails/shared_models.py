"""Models that scanners load lazily and share: one copy per process, whatever the number of
pipeline versions using them.

The ``GuardrailPlugin`` (one per ``Runtime``) owns a ``SharedModels``; every scanner it builds
for every version borrows the same WordLlama embedder and injection classifier.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keel.guardrails.classifier import InjectionClassifier


def _load_wordllama() -> Any:
    from keel.guardrails.content import load_wordllama

    return load_wordllama()


def _load_classifier() -> InjectionClassifier:
    from keel.guardrails.classifier import InjectionClassifier  # numpy/scipy: load lazily

    return InjectionClassifier.load()


@dataclass(slots=True)
class SharedModels:
    """Loads each model on first use, under a lock, and hands out that one instance."""

    wordllama_loader: Callable[[], Any] = _load_wordllama
    classifier_loader: Callable[[], InjectionClassifier] = _load_classifier
    loads: dict[str, int] = field(default_factory=dict)
    _models: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wordllama(self) -> Any:
        return self._get("wordllama", self.wordllama_loader)

    def injection_classifier(self) -> InjectionClassifier:
        found: InjectionClassifier = self._get("injection_classifier", self.classifier_loader)
        return found

    def _get(self, name: str, loader: Callable[[], Any]) -> Any:
        with self._lock:
            if name not in self._models:
                self._models[name] = loader()
                self.loads[name] = self.loads.get(name, 0) + 1
            return self._models[name]
