"""``keel review`` and guardrail validation at ``keel pipelines push``, as a user drives them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml

from keel.pipeline.loader import spec_from_data
from keel.runtime import Runtime
from keel.settings import KeelSettings

from .test_cli import keel

pytestmark = pytest.mark.integration

SPEC = {
    "name": "echoed",
    "prompt": {"user": "{{ question }}"},
    "model": {"id": "testing:echo"},
    "guardrails": {"output": [{"scanner": "refusal", "action": "review"}]},
}


def hold_two(keel_home: Path) -> list[str]:
    runtime = Runtime(KeelSettings())
    try:
        compiled = runtime.catalog.compiled(
            "echoed", runtime.catalog.push(spec_from_data(SPEC)).version
        )
        ids = []
        for _ in range(2):
            result = asyncio.run(runtime.runner.run(compiled, {"question": "I'm sorry, I can't"}))
            assert result.review_id
            ids.append(result.review_id)
        return ids
    finally:
        runtime.close()


def test_list_approve_edit_reject_from_the_cli(keel_home: Path) -> None:
    first, second = hold_two(keel_home)
    code, out, err = keel("review", "list", "--json")
    assert code == 0, err
    assert [item["review_id"] for item in json.loads(out)] == [first, second]
    code, out, err = keel("review", "edit", first, "--text", "We can help.", "--reviewer", "ana")
    assert code == 0, err
    assert "edited by ana" in out
    code, _, err = keel("review", "reject", first, "--reviewer", "bo")
    assert code == 1 and "review_decided" in err and "Traceback" not in err
    code, _, err = keel("review", "approve", second, "--reviewer", "cy", "--note", "fine")
    assert code == 0, err
    shown = json.loads(keel("review", "show", first)[1])
    assert shown["status"] == "edited" and shown["result"]["text"] == "We can help."
    assert keel("review", "list", "--json")[1].strip() == "[]"
    code, _, err = keel("review", "edit", second)
    assert code == 1 and "edit_empty" in err


def test_push_rejects_a_malformed_policy(keel_home: Path, tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    bad = dict(SPEC, guardrails={"input": [{"scanner": "pii", "options": {"entities": ["X"]}}]})
    (folder / "pipeline.yaml").write_text(yaml.safe_dump(bad))
    code, _, err = keel("pipelines", "push", str(folder))
    assert code == 1
    assert "guardrail_invalid" in err and "unknown entities" in err and "Traceback" not in err
