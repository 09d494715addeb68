"""Where webhooks may send: the outside only, unless ``TRACKER_WEBHOOK_ALLOW_PRIVATE`` says
otherwise.

A webhook's URL is chosen by an admin, but what the worker reaches with it is the worker's
own network: loopback (the worker's own ports, Postgres, Kafka), the cloud's metadata
address, the private network behind it. So a destination is refused when its address is
loopback, unspecified, link-local, private, unique-local, shared (CGNAT), multicast or
otherwise not global (``is_refused``), IPv4 addresses embedded in IPv6 ones included;
``TRACKER_WEBHOOK_ALLOW_PRIVATE`` lists the networks allowed all the same (a receiver on
the same host or network).

The check is made when a webhook is added (its host, and the addresses it resolves to then)
and again at every delivery after resolution: the notifier's connector resolves through
``GuardedResolver``, which hands aiohttp only the allowed addresses, so a name that resolves
elsewhere later (DNS rebinding) reaches nothing refused. URLs are shown with their query and
credentials cut (``redact``): they may carry a token.
"""
from __future__ import annotations

import asyncio
import ipaddress
import socket
from typing import Sequence
from urllib.parse import urlsplit, urlunsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Host names that are always this machine, whatever DNS says.
LOCAL_NAMES = ("localhost", "localhost.", "localhost.localdomain", "ip6-localhost", "ip6-loopback")
#: What a refused destination's delivery records as its error.
REFUSED_ERROR = "refused: the address is not public (TRACKER_WEBHOOK_ALLOW_PRIVATE)"


class RefusedDestination(OSError):
    """A destination whose addresses are all refused."""


def _embedded(address: Address) -> Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo, NAT64), if any."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        if address.teredo is not None:
            return address.teredo[1]
        if address in ipaddress.ip_network("64:ff9b::/96"):
            return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_refused(address: Address, allowed: Sequence[Network] = ()) -> bool:
    """Whether a webhook may not reach ``address`` (``allowed``: networks allowed anyway)."""
    if any(address.version == network.version and address in network for network in allowed):
        return False
    inner = _embedded(address)
    if inner is not None:
        return is_refused(inner, allowed)
    return not address.is_global or address.is_multicast or address.is_unspecified or address.is_reserved


def literal_address(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def host_refusal(url: str, allowed: Sequence[Network] = ()) -> str | None:
    """Why ``url``'s host is refused as it is written (an address, or a name of this
    machine), or None: names are checked again once resolved."""
    host = (urlsplit(url).hostname or "").lower()
    address = literal_address(host)
    if address is not None:
        return f"{address} is not a public address" if is_refused(address, allowed) else None
    if host in LOCAL_NAMES or host.endswith(".localhost") or host.endswith(".localhost."):
        loopback = ipaddress.ip_address("127.0.0.1")
        return None if not is_refused(loopback, allowed) else f"{host} is this machine"
    return None


async def resolution_refusal(url: str, allowed: Sequence[Network] = ()) -> str | None:
    """Why ``url``'s host is refused once resolved (every address it resolves to must be
    allowed), or None; a name that does not resolve now is not refused (it is checked at
    each delivery)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if literal_address(host) is not None:
        return host_refusal(url, allowed)
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return None
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if is_refused(address, allowed):
            return f"{host} resolves to {address}, which is not a public address"
    return None


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, keeping only the addresses a webhook may reach."""

    def __init__(self, allowed: Sequence[Network] = ()) -> None:
        self.allowed = tuple(allowed)
        self._resolver = DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
                      ) -> list[ResolveResult]:
        found = await self._resolver.resolve(host, port, family)
        kept = [result for result in found
                if not is_refused(ipaddress.ip_address(result["host"].split("%", 1)[0]), self.allowed)]
        if not kept:
            raise RefusedDestination(f"{host} resolves to no public address")
        return kept

    async def close(self) -> None:
        await self._resolver.close()


def redact(url: str) -> str:
    """``url`` without its credentials and with its query cut, for logs and answers."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = host + (f":{parts.port}" if parts.port else "")
    except ValueError:
        return "(a malformed URL)"
    return urlunsplit((parts.scheme, netloc, parts.path, "…" if parts.query else "", ""))
