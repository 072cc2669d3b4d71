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


def _load_classifier(embedder: Any) -> InjectionClassifier:
    from keel.guardrails.classifier import InjectionClassifier  # numpy/scipy: load lazily

    return InjectionClassifier.load(embedder=embedder)


@dataclass(slots=True)
class SharedModels:
    """Loads each model on first use, under a lock, and hands out that one instance."""

    wordllama_loader: Callable[[], Any] = _load_wordllama
    classifier_loader: Callable[[Any], InjectionClassifier] = _load_classifier
    loads: dict[str, int] = field(default_factory=dict)
    _models: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wordllama(self) -> Any:
        return self._get("wordllama", self.wordllama_loader)

    def injection_classifier(self) -> InjectionClassifier:
        """The classifier, scoring with the shared embedder (loaded first, outside the lock)."""
        embedder = self.wordllama()
        found: InjectionClassifier = self._get(
            "injection_classifier", lambda: self.classifier_loader(embedder)
        )
        return found

    def _get(self, name: str, loader: Callable[[], Any]) -> Any:
        with self._lock:
            if name not in self._models:
                self._models[name] = loader()
                self.loads[name] = self.loads.get(name, 0) + 1
            return self._models[name]
