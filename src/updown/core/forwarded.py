"""The client's address behind trusted reverse proxies, from ``X-Forwarded-For``.

A request's socket peer is the client unless a proxy stands between: behind nginx every peer is
nginx. Only a peer in one of the configured trusted networks (``server.trusted_proxies``) is
believed about who it forwards for; with none configured (the default) the header is ignored, as
warehouse and Supabase do. The header is read as nginx's ``real_ip_recursive`` and werkzeug's
``ProxyFix`` read it: from the right, where each proxy appends the address it was reached from,
skipping trusted proxies; the first address that is not a trusted proxy is the client. Whatever a
client writes to the left of that is never looked at, so a forged entry cannot win; an entry that
is not an IP address on the way there means the chain cannot be trusted, and the peer is used.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Iterable

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.cache
def networks(cidrs: tuple[str, ...]) -> tuple[Network, ...]:
    """The networks of ``cidrs`` (``10.0.0.0/8``, ``::1``, a bare address is one host), parsed once.

    Raises:
        ValueError: an entry is not an IPv4 or IPv6 network.
    """
    return tuple(ipaddress.ip_network(c.strip(), strict=False) for c in cidrs)


def parse_address(text: str) -> Address | None:
    """An IP address as a proxy writes one (no port, no brackets), IPv4-mapped IPv6 as IPv4; else None."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: Address, trusted: Iterable[Network]) -> bool:
    return any(address.version == net.version and address in net for net in trusted)


def client_address(peer: str, forwarded_for: Iterable[str], trusted: tuple[Network, ...]) -> str:
    """The client's address: ``peer`` unless it is a trusted proxy, then the rightmost
    ``X-Forwarded-For`` entry that is not a trusted proxy (all trusted: the leftmost, as nginx).

    Args:
        peer: the socket peer's address (``request.client.host``).
        forwarded_for: every ``X-Forwarded-For`` header value, in order (they join with commas).
        trusted: the proxies' networks (:func:`networks`); empty trusts no one.

    Returns:
        The address in canonical form (``str(ipaddress.ip_address(...))``) when one is taken from
        the header or the peer is an address; else ``peer`` as given.
    """
    peer_address = parse_address(peer)
    if peer_address is None:
        return peer
    if not trusted or not _trusted(peer_address, trusted):
        return str(peer_address)
    entries = [e for value in forwarded_for for e in value.split(",")]
    found = peer_address
    for entry in reversed(entries):
        address = parse_address(entry)
        if address is None:
            return str(peer_address)
        found = address
        if not _trusted(address, trusted):
            break
    return str(found)
