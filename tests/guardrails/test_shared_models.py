"""Models behind scanners are loaded once per process and shared by every pipeline version."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from keel.guardrails.content import BannedTopicsScanner, load_wordllama
from keel.guardrails.shared_models import SharedModels
from keel.guardrails.stage import InputGuard
from keel.pipeline.loader import spec_from_data
from keel.runtime import Runtime
from keel.settings import KeelSettings


def guarded(topics: dict[str, str], version_note: str) -> dict[str, Any]:
    rules = [
        {"scanner": "banned_topics", "action": "flag", "options": {"topics": topics}},
        {"scanner": "prompt_injection", "action": "flag"},
    ]
    return {
        "name": "topical",
        "prompt": {"system": f"Answer briefly. {version_note}", "user": "{{ question }}"},
        "model": {"id": "testing:echo"},
        "guardrails": {"input": rules},
    }


def scanners_of(runtime: Runtime, name: str, version: str) -> list[Any]:
    hooks = runtime.runner.hooks_for(runtime.catalog.compiled(name, version))
    guard = next(s for s in hooks.before_preprocess if isinstance(s, InputGuard))
    return [rule.scanner for rule in guard.rules]


def test_two_versions_share_one_embedder_and_one_classifier(tmp_path: Path) -> None:
    settings = KeelSettings(
        home=tmp_path / "home",
        providers={"default_model": "testing:echo", "allow_remote": False},
        telemetry={"schedule_delay_ms": 10},
    )
    runtime = Runtime(settings)
    calls: list[int] = []

    def counted() -> Any:
        calls.append(1)
        return load_wordllama()

    runtime.guardrails.models.wordllama_loader = counted
    try:
        first = runtime.catalog.push(spec_from_data(guarded({"politics": "elections"}, "v1")))
        second = runtime.catalog.push(spec_from_data(guarded({"stocks": "which shares"}, "v2")))
        assert first.version != second.version
        one, two = (scanners_of(runtime, "topical", v) for v in (first.version, second.version))
        assert isinstance(one[0], BannedTopicsScanner) and isinstance(two[0], BannedTopicsScanner)
        assert one[0].model is two[0].model  # the same embedder object
        assert one[1].classifier is two[1].classifier  # and the same classifier
        for version in (first.version, second.version):  # both versions answer
            compiled = runtime.catalog.compiled("topical", version)
            result = asyncio.run(runtime.runner.run(compiled, {"question": "who wins the vote?"}))
            assert result.text
        assert len(calls) == 1
        assert runtime.guardrails.models.loads == {"wordllama": 1, "injection_classifier": 1}
    finally:
        runtime.close()


def test_a_model_is_loaded_on_first_use_only() -> None:
    loaded: list[str] = []
    models = SharedModels(wordllama_loader=lambda: loaded.append("w") or "embedder")
    assert loaded == []
    assert models.wordllama() == "embedder" and models.wordllama() == "embedder"
    assert loaded == ["w"]
