"""No test can reach a paid model API: the suite-wide guard, checked through a real Runtime."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from keel.core.errors import ProviderUnavailable
from keel.core.messages import ChatRequest, Message
from keel.runtime import Runtime
from keel.settings import KeelSettings


@pytest.mark.parametrize("model_id", ["openai:gpt-4o-mini", "anthropic:claude-sonnet-4"])
def test_remote_model_calls_are_blocked_in_the_test_suite(tmp_path: Path, model_id: str) -> None:
    settings = KeelSettings(home=tmp_path)
    assert settings.providers.allow_remote is False  # set for the whole suite by conftest
    runtime = Runtime(settings)
    try:
        model = runtime.registry.model(model_id)
        request = ChatRequest(model.ref.name, (Message("user", "hi"),))
        with pytest.raises(ProviderUnavailable) as info:
            asyncio.run(model.complete(request))
        assert info.value.code == "model_requests_blocked"
    finally:
        runtime.close()


def test_the_bundled_model_is_the_default() -> None:
    assert KeelSettings.model_fields["providers"].default_factory().default_model == (  # type: ignore[misc]
        "local:smollm2"
    )
