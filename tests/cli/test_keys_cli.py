"""`keel keys create|list|revoke`, and the admin key `keel serve` bootstraps on first start."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keel.cli.keys import bootstrap_admin_key
from keel.gateway.keys import KeyService
from keel.settings import KeelSettings
from keel.store import Store

from .test_cli import keel

pytestmark = pytest.mark.integration


def test_create_list_revoke(keel_home: Path) -> None:
    code, out, err = keel(
        "keys",
        "create",
        "ci-bot",
        "--role",
        "developer",
        "--pipelines",
        "summarize",
        "--groups",
        "eng,ops",
        "--rpm",
        "60",
        "--budget-usd",
        "2.50",
        "--json",
    )
    assert code == 0, err
    created = json.loads(out)
    assert created["key"].startswith("keel_") and created["groups"] == ["eng", "ops"]
    assert created["limits"] == {"rpm": 60, "budget_usd": "2.50", "budget_period": "day"}
    code, out, _ = keel("keys", "list", "--json")
    assert [k["id"] for k in json.loads(out)] == [created["id"]]
    assert created["key"] not in out
    assert keel("keys", "revoke", created["id"])[0] == 0
    code, out, _ = keel("keys", "list", "--json")
    assert json.loads(out) == []
    code, _, err = keel("keys", "revoke", "nosuchkey")
    assert code == 1 and "key_not_found" in err and "Traceback" not in err
    code, _, err = keel("keys", "create", "x", "--role", "root")
    assert code == 1 and "role_invalid" in err


def test_serve_bootstraps_one_admin_key_once(keel_home: Path) -> None:
    settings = KeelSettings()
    store = Store.open(settings.resolved_database_url)
    try:
        path = bootstrap_admin_key(settings, store)
        assert path is not None and path.stat().st_mode & 0o077 == 0
        secret = path.read_text().strip()
        principal = KeyService(store, settings.auth).authenticate(secret)
        assert principal.role == "admin"
        assert bootstrap_admin_key(settings, store) == path  # not a second key
        assert len(store.keys.list()) == 1
    finally:
        store.close()
