"""The server starts without the libraries only pipelines, migrations and webhooks use
(Jinja2, jsonschema, Alembic, aiohttp), and loads them when a pipeline needs them: a
guardrailed pipeline with a JSON output schema is pushed and served by the same process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

LAZY = ("aiohttp", "alembic", "jinja2", "jsonschema", "mako")

PROBE = """
import sys
from pathlib import Path

from starlette.testclient import TestClient

from keel.cli.serve import serve  # what `keel serve` imports before it builds the app
from keel.server import create_app
from keel.settings import KeelSettings
from keel.store import Store

LAZY = {lazy!r}
settings = KeelSettings()
Store.open(settings.resolved_database_url).close()  # `keel db upgrade`
for name in list(sys.modules):  # forget what migrating loaded, as a fresh server would
    if name.split(".")[0] in LAZY:
        del sys.modules[name]

headers = {{"authorization": "Bearer {key}"}}
with TestClient(create_app(settings)) as client:
    print("at start:", sorted({{m.split(".")[0] for m in sys.modules}} & set(LAZY)))
    spec = {{
        "name": "guarded",
        "prompt": {{"system": "Answer in JSON.", "user": "{{{{ question }}}}"}},
        "model": {{"id": "testing:echo"}},
        "output": {{"type": "json", "schema": {{"type": "object"}}}},
        "guardrails": {{"output": [{{"scanner": "json", "action": "flag",
                                     "options": {{"schema": {{"type": "object"}}}}}}]}},
    }}
    pushed = client.post("/api/pipelines", json=spec, headers=headers)
    assert pushed.status_code == 201, pushed.text
    answer = client.post(
        "/v1/pipelines/guarded/invoke",
        json={{"input": {{"question": '{{"ok": true}}'}}}},
        headers=headers,
    )
    assert answer.status_code == 200, answer.text
    print("output:", answer.json()["output"])
    print("after a pipeline:", sorted({{m.split(".")[0] for m in sys.modules}} & set(LAZY)))
"""


def test_server_starts_without_pipeline_libraries_and_loads_them_on_use(tmp_path: Path) -> None:
    key = "lazy-admin-key-0123456789abcdef"
    env = {
        **os.environ,
        "KEEL_HOME": str(tmp_path / "keel"),
        "KEEL_AUTH__ADMIN_KEY": key,
        "KEEL_PROVIDERS__ALLOW_REMOTE": "false",
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(lazy=LAZY, key=key)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(": ", 1) for line in done.stdout.strip().splitlines())
    assert lines["at start"] == "[]"
    assert lines["output"] == "{}"  # echo: the minimal value valid against the schema
    assert lines["after a pipeline"] == "['jinja2', 'jsonschema']"
