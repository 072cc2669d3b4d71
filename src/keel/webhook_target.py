"""Where a review webhook may be delivered: http(s) only, and never to this machine or a private
network unless a setting allows it (server-side request forgery).

A host name is resolved once; every address it resolves to must be public, and the request is
then made to exactly those addresses (a pinned resolver), so a DNS answer that changes between
the check and the connection cannot reach an internal service.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_SCHEMES = frozenset({"http", "https"})


class WebhookRefused(ValueError):
    """The URL is not a deliverable webhook target; the message says why."""


def forbidden_address(address: IPAddress) -> bool:
    """Loopback, private, link-local, shared, reserved, unspecified or multicast."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


def check_url(url: str, *, allow_private: bool) -> tuple[str, int]:
    """Scheme and host checks that need no DNS; returns (host, port)."""
    parts = urlsplit(url)
    if parts.scheme not in _SCHEMES:
        raise WebhookRefused(f"webhook {url!r}: only http and https URLs are delivered")
    if not parts.hostname:
        raise WebhookRefused(f"webhook {url!r}: the URL names no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise WebhookRefused(f"webhook {url!r}: {exc}") from exc
    host = parts.hostname
    if not allow_private:
        literal = _literal(host)
        if (literal is not None and forbidden_address(literal)) or host == "localhost":
            raise WebhookRefused(
                f"webhook {url!r}: {host} is a loopback, private or link-local address; "
                "set KEEL_GUARDRAILS__WEBHOOK_ALLOW_PRIVATE=true to allow it"
            )
    return host, port


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class PinnedResolver(AbstractResolver):
    """Answers aiohttp's look-ups with addresses that were already checked."""

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


async def resolve_target(url: str, *, allow_private: bool) -> PinnedResolver:
    """Resolve the webhook's host and refuse it if any address is internal."""
    host, port = check_url(url, allow_private=allow_private)
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise WebhookRefused(f"webhook {url!r}: cannot resolve {host}: {exc}") from exc
    results: list[ResolveResult] = []
    for family, _type, proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if not allow_private and forbidden_address(address):
            raise WebhookRefused(
                f"webhook {url!r}: {host} resolves to {address}, a loopback, private or "
                "link-local address; set KEEL_GUARDRAILS__WEBHOOK_ALLOW_PRIVATE=true to allow it"
            )
        results.append(_result(host, str(sockaddr[0]), port, family, proto))
    if not results:
        raise WebhookRefused(f"webhook {url!r}: {host} resolves to no address")
    return PinnedResolver(host, tuple(results))


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
