"""Settings: one typed tree, every field documented, env and keel.toml both honoured."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel, ValidationError

from keel.settings import KeelSettings
from keel.settings_doc import iter_settings, markdown

DOC = Path(__file__).resolve().parent.parent / "docs" / "settings.md"


def _all_fields(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str | None]]:
    out = []
    for name, info in model.model_fields.items():
        out.append((prefix + name, info.description))
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            out.extend(_all_fields(annotation, f"{prefix}{name}."))
    return out


def test_every_setting_and_section_is_documented() -> None:
    undocumented = [name for name, doc in _all_fields(KeelSettings) if not (doc or "").strip()]
    assert undocumented == [], f"add a description to: {undocumented}"


def test_settings_reference_is_up_to_date() -> None:
    assert DOC.read_text() == markdown(), "regenerate: keel settings --markdown > docs/settings.md"


def test_reference_lists_every_environment_variable() -> None:
    text = DOC.read_text()
    for env, _ in iter_settings():
        assert f"`{env}`" in text


def test_environment_overrides_nested_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEEL_SERVER__PORT", "9123")
    monkeypatch.setenv("KEEL_PROVIDERS__OPENAI__BASE_URL", "http://127.0.0.1:1/v1")
    settings = KeelSettings()
    assert settings.server.port == 9123
    assert settings.providers.openai.base_url == "http://127.0.0.1:1/v1"


def test_keel_toml_is_read(keel_home: Path) -> None:
    Path("keel.toml").write_text(
        '[server]\nport = 7001\n[providers]\ndefault_model = "testing:echo"\n'
    )
    settings = KeelSettings()
    assert settings.server.port == 7001
    assert settings.providers.default_model == "testing:echo"


def test_environment_wins_over_keel_toml(keel_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    Path("keel.toml").write_text("[server]\nport = 7001\n")
    monkeypatch.setenv("KEEL_SERVER__PORT", "7002")
    assert KeelSettings().server.port == 7002


def test_unknown_keys_in_keel_toml_are_rejected(keel_home: Path) -> None:
    Path("keel.toml").write_text("[server]\nprot = 7001\n")
    with pytest.raises(ValidationError, match="prot"):
        KeelSettings()


def test_default_store_is_sqlite_under_home(keel_home: Path) -> None:
    assert KeelSettings().resolved_database_url == f"sqlite:///{keel_home / 'keel.db'}"
