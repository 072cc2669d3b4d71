"""Notifications over real HTTP to a local receiver: formats, retries, timeouts, refusals."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from keel.alerts.notify import Notifier, Target, slack_payload
from keel.store.alerts import Alert

from ..webhook_receiver import receiver

AT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _alert() -> Alert:
    return Alert(
        key="slo:triage:availability", kind="slo", severity="page",
        summary="triage availability: burning the error budget 20.0x", started_at=AT,
        last_seen_at=AT, pipeline="triage", details={"burn": 20.0},
    )  # fmt: skip


def _send(notifier: Notifier, event: str = "firing") -> list[dict[str, object]]:
    return asyncio.run(notifier.send(_alert(), event))  # type: ignore[arg-type]


def test_json_and_slack_payloads_reach_the_receiver() -> None:
    with receiver() as hook:
        notifier = Notifier(
            [Target(hook.url, "json", "ops", {"authorization": "Bearer s3cret"}),
             Target(hook.url, "slack", "chat")],
            allow_private=True,
        )  # fmt: skip
        records = _send(notifier)
        assert [r["ok"] for r in records] == [True, True]
        bodies = hook.wait_for(2)
    generic = next(b for b in bodies if "alert" in b)
    assert generic["event"] == "firing" and generic["alert"]["key"] == "slo:triage:availability"
    assert generic["alert"]["details"] == {"burn": 20.0}
    slack = next(b for b in bodies if "blocks" in b)
    assert slack["text"].startswith("[FIRING] page: slo:triage:availability")
    assert slack["blocks"][0]["type"] == "header"
    assert any(h.get("Authorization") == "Bearer s3cret" for h in hook.headers)


def test_slack_payload_of_a_resolved_alert() -> None:
    body = slack_payload(_alert(), "resolved")
    assert body["text"].startswith("[RESOLVED]")
    assert ":white_check_mark:" in body["blocks"][1]["text"]["text"]


def test_server_errors_are_retried_then_delivered() -> None:
    with receiver(statuses=[503, 500]) as hook:
        notifier = Notifier([Target(hook.url)], attempts=3, backoff_s=0.01, allow_private=True)
        [record] = _send(notifier)
        assert record["ok"] is True and record["attempts"] == 3
        assert len(hook.received) == 3


def test_a_client_error_is_final_and_retries_are_bounded() -> None:
    with receiver(statuses=[400]) as hook:
        notifier = Notifier([Target(hook.url)], attempts=3, backoff_s=0.01, allow_private=True)
        [record] = _send(notifier)
        assert record["ok"] is False and record["attempts"] == 1 and record["status"] == 400
    with receiver(statuses=[500, 500, 500, 500]) as hook:
        notifier = Notifier([Target(hook.url)], attempts=2, backoff_s=0.01, allow_private=True)
        [record] = _send(notifier)
        assert record["ok"] is False and record["attempts"] == 2 and len(hook.received) == 2


def test_a_slow_receiver_times_out() -> None:
    with receiver(delay_s=2.0) as hook:
        notifier = Notifier(
            [Target(hook.url)], timeout_s=0.3, attempts=1, backoff_s=0, allow_private=True
        )
        [record] = _send(notifier)
    assert record["ok"] is False and record["error"] == "timeout"


def test_private_and_non_http_targets_are_refused_by_default(loopback_host: str) -> None:
    urls = ("http://169.254.169.254/latest", "http://10.1.2.3/", "http://[::1]:80/",
            "http://localhost:9/", "http://[::ffff:127.0.0.1]/")  # fmt: skip
    never = ("file:///etc/passwd", "ftp://example.com/x", "gopher://h/")
    with receiver() as hook:
        by_name = hook.url.replace("127.0.0.1", loopback_host)
        targets = [Target(u) for u in (hook.url, by_name, *urls, *never)]
        records = _send(Notifier(targets))
        assert [r["ok"] for r in records] == [False] * len(targets)
        assert [r["attempts"] for r in records] == [0] * len(targets)
        assert all("non-public address" in str(r["error"]) for r in records[: -len(never)])
        assert all("KEEL_MONITORING__ALLOW_PRIVATE_TARGETS" in str(r["error"]) for r in records[:2])
        assert all("only http and https" in str(r["error"]) for r in records[-len(never) :])
        assert hook.received == []  # nothing was sent
        allowed = _send(Notifier(targets[:2] + targets[-len(never) :], allow_private=True))
        assert [r["ok"] for r in allowed] == [True, True] + [False] * len(never)
        assert len(hook.wait_for(2)) == 2
