"""Where notifications may go: http(s) only, and never to private networks unless allowed.

A webhook URL comes from configuration, but the host it names is resolved at send time, and
an alert must not become a way to reach the cloud metadata endpoint or an internal admin
port. Two checks, both on every delivery:

* before sending, the URL's scheme, and its host's addresses, are checked (a clear reason is
  recorded when refused);
* the connection itself goes through a resolver that drops non-public addresses, so a
  name that resolves differently a moment later (DNS rebinding) still cannot connect to one.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from keel.core.errors import TargetRefused

SCHEMES = ("http", "https")


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool((mapped or ip).is_global)


def check_scheme(url: str) -> tuple[str, int]:
    """The host and port of an http(s) URL; anything else is refused."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        msg = f"notification target {url!r} must be an http:// or https:// URL"
        raise TargetRefused(msg, url=url)
    if not parts.hostname:
        raise TargetRefused(f"notification target {url!r} names no host", url=url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise TargetRefused(f"notification target {url!r}: {exc}", url=url) from exc
    return parts.hostname, port


async def check_target(url: str, *, allow_private: bool) -> None:
    """Refuse non-http(s) URLs and, unless allowed, hosts with any non-public address."""
    host, port = check_scheme(url)
    if allow_private:
        return
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise TargetRefused(
                f"notification target host {host!r} does not resolve: {exc}"
            ) from exc
        addresses = sorted({str(info[4][0]) for info in infos})
    private = [a for a in addresses if not is_public(a)]
    if private:
        msg = (
            f"notification target {url!r} resolves to a non-public address "
            f"({', '.join(private)}); set monitoring.allow_private_targets to allow it"
        )
        raise TargetRefused(msg, url=url, addresses=private)


class PublicOnlyResolver(AbstractResolver):
    """Resolves like the default resolver, then keeps only public addresses."""

    def __init__(self) -> None:
        self._inner = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        kept = [r for r in found if is_public(str(r["host"]))]
        if not kept:
            raise OSError(f"{host} has no public address")
        return kept

    async def close(self) -> None:
        await self._inner.close()


def resolver(allow_private: bool) -> Any:
    return ThreadedResolver() if allow_private else PublicOnlyResolver()
