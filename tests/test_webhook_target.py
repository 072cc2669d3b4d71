"""Which webhook targets Keel calls, shared by review webhooks and alert notifications.

The end-to-end refusals (a pipeline push, a review delivery, an alert delivery) are tested
with their features; here are the checks themselves and the pinned resolver.
"""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from keel.core.errors import TargetRefused
from keel.webhook_target import check_url, forbidden_address, resolve_target

SETTING = "KEEL_SOME__ALLOW_PRIVATE"


@pytest.mark.parametrize(
    ("address", "forbidden"),
    [
        ("127.0.0.1", True), ("10.1.2.3", True), ("172.16.0.1", True), ("192.168.1.1", True),
        ("169.254.169.254", True), ("100.64.0.1", True), ("0.0.0.0", True),
        ("224.0.0.1", True), ("::1", True), ("fe80::1", True), ("fc00::1", True),
        ("::ffff:10.0.0.1", True), ("93.184.216.34", False), ("2606:4700::1111", False),
    ],
)  # fmt: skip
def test_forbidden_addresses(address: str, forbidden: bool) -> None:
    assert forbidden_address(ipaddress.ip_address(address)) is forbidden


def test_public_names_pass_the_static_check() -> None:
    assert check_url("https://hooks.example.com/keel", allow_private=False, setting=SETTING) == (
        "hooks.example.com",
        443,
    )
    assert check_url("http://10.0.0.7/h", allow_private=True, setting=SETTING) == ("10.0.0.7", 80)


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://hooks.example.com/", "only http and https"),
        ("https:///no-host", "names no host"),
        ("http://hooks.example.com:99999/", "out of range"),
    ],
)
def test_malformed_targets_are_refused_even_where_private_ones_are_allowed(
    url: str, reason: str
) -> None:
    with pytest.raises(TargetRefused, match=reason) as refused:
        check_url(url, allow_private=True, setting=SETTING)
    assert refused.value.code == "notification_target_refused"
    assert refused.value.details == {"url": url}


def test_a_private_target_is_refused_with_the_callers_setting_named() -> None:
    with pytest.raises(TargetRefused, match=f"set {SETTING}=true to allow it"):
        check_url("http://[::ffff:127.0.0.1]/", allow_private=False, setting=SETTING)


def test_the_resolved_addresses_are_checked_then_pinned(loopback_host: str) -> None:
    url = f"http://{loopback_host}:8080/hook"
    check_url(url, allow_private=False, setting=SETTING)  # the name itself looks harmless
    with pytest.raises(TargetRefused, match=f"{loopback_host} resolves to .*non-public"):
        asyncio.run(resolve_target(url, allow_private=False, setting=SETTING))

    async def pinned() -> None:
        resolver = await resolve_target(url, allow_private=True, setting=SETTING)
        answers = await resolver.resolve(loopback_host, 8080)
        assert answers and {a["port"] for a in answers} == {8080}
        assert all(ipaddress.ip_address(a["host"]).is_loopback for a in answers)
        with pytest.raises(OSError, match="may only connect to"):
            await resolver.resolve("hooks.example.com", 443)

    asyncio.run(pinned())


def test_a_name_that_does_not_resolve_is_refused() -> None:
    with pytest.raises(TargetRefused, match="cannot resolve"):
        asyncio.run(resolve_target("http://keel.invalid/", allow_private=True, setting=SETTING))
