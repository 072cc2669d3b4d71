"""Where a webhook may be delivered: http(s) only, and never to this machine or a private
network unless a setting allows it (server-side request forgery).

Review-decision webhooks and alert notifications both go through here. A host name is
resolved once; every address it resolves to must be public, and the request is then made to
exactly those addresses (a pinned resolver), so a DNS answer that changes between the check
and the connection (DNS rebinding) cannot reach an internal service.

aiohttp is imported when a session is made, not with this module: a server that never
delivers a webhook does not load it (~12 MB resident).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlsplit

from keel.core.errors import TargetRefused

if TYPE_CHECKING:
    import aiohttp
    from aiohttp.abc import AbstractResolver, ResolveResult

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_SCHEMES = frozenset({"http", "https"})
# The settings that allow private targets, named in every refusal so it says what to change.
REVIEW_SETTING = "KEEL_GUARDRAILS__WEBHOOK_ALLOW_PRIVATE"
ALERT_SETTING = "KEEL_MONITORING__ALLOW_PRIVATE_TARGETS"


def forbidden_address(address: IPAddress) -> bool:
    """Loopback, private, link-local, shared, reserved, unspecified or multicast."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


def check_url(url: str, *, allow_private: bool, setting: str) -> tuple[str, int]:
    """Scheme and host checks that need no DNS; returns (host, port).

    ``setting`` names what allows private targets; a refusal tells the user to set it.
    """
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES:
        raise TargetRefused(f"webhook {url!r}: only http and https URLs are delivered", url=url)
    if not parts.hostname:
        raise TargetRefused(f"webhook {url!r}: the URL names no host", url=url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise TargetRefused(f"webhook {url!r}: {exc}", url=url) from exc
    host = parts.hostname
    if not allow_private:
        literal = _literal(host)
        if (literal is not None and forbidden_address(literal)) or host == "localhost":
            raise _private(url, f"{host} is", setting)
    return host, port


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def _private(url: str, what: str, setting: str) -> TargetRefused:
    return TargetRefused(
        f"webhook {url!r}: {what} a non-public address (loopback, private or link-local); "
        f"set {setting}=true to allow it",
        url=url,
    )


@dataclass(frozen=True, slots=True)
class PinnedResolver:
    """Answers aiohttp's look-ups with addresses that were already checked (aiohttp's
    ``AbstractResolver`` interface: ``resolve`` and ``close``)."""

    host: str
    addresses: tuple[ResolveResult, ...]

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host != self.host:
            raise OSError(f"webhook delivery may only connect to {self.host}, not {host}")
        return list(self.addresses)

    async def close(self) -> None:
        return None


async def resolve_target(url: str, *, allow_private: bool, setting: str) -> PinnedResolver:
    """Resolve the webhook's host and refuse it if any address is internal."""
    host, port = check_url(url, allow_private=allow_private, setting=setting)
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise TargetRefused(f"webhook {url!r}: cannot resolve {host}: {exc}", url=url) from exc
    results: list[ResolveResult] = []
    for family, _type, proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if not allow_private and forbidden_address(address):
            raise _private(url, f"{host} resolves to {address},", setting)
        results.append(_result(host, str(sockaddr[0]), port, family, proto))
    if not results:
        raise TargetRefused(f"webhook {url!r}: {host} resolves to no address", url=url)
    return PinnedResolver(host, tuple(results))


async def pinned_session(
    url: str, *, allow_private: bool, setting: str, timeout_s: float
) -> aiohttp.ClientSession:
    """A session that can reach only ``url``'s checked addresses; raises ``TargetRefused``.

    Use it as ``async with await pinned_session(...) as session``, and post with
    ``allow_redirects=False``: a redirect could point anywhere.
    """
    import aiohttp  # deferred: see the module docstring

    resolver = await resolve_target(url, allow_private=allow_private, setting=setting)
    pinned = cast("AbstractResolver", resolver)
    connector = aiohttp.TCPConnector(resolver=pinned, use_dns_cache=False)
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    return aiohttp.ClientSession(connector=connector, timeout=timeout)


def _result(host: str, address: str, port: int, family: int, proto: int) -> ResolveResult:
    found: dict[str, Any] = {
        "hostname": host,
        "host": address,
        "port": port,
        "family": family,
        "proto": proto,
        "flags": socket.AI_NUMERICHOST,
    }
    return found  # type: ignore[return-value]
