"""Which network addresses outbound requests may reach, and the one way a host name is resolved.

Outbound HTTP to an address a client chose is an attack surface (SSRF): a URL whose host resolves to
the instance metadata service (169.254.169.254, fd00:ec2::254), a private network, loopback or anything
that is not the public internet must never be reached. ``check`` resolves a host once and refuses it when
*any* of its addresses is not public (a name with one public and one private record would otherwise be
a coin toss, or a DNS rebinding away); the caller then connects to the address it was given back, never
resolving the name again (``utils.outbound_http``).

IPv6 counts the IPv4 address it carries: IPv4-mapped (``::ffff:10.0.0.1``), NAT64 (``64:ff9b::/96``),
6to4 (``2002::/16``) and Teredo (``2001::/32``) addresses are judged by their IPv4 part too.
``allow_loopback`` (local development only) lets loopback addresses through, and nothing else.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
#: ``host, port`` -> the addresses it resolves to (tests replace it to make DNS say what they need).
Resolver = Callable[[str, int], list[str]]

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class ForbiddenDestination(Exception):
    """The host cannot be resolved, or resolves to an address outbound requests may not reach.
    ``reason`` is safe to show: it names the kind of address, never what the host resolved to."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's resolver (``getaddrinfo``): every address, in its order, once each."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


#: How every host name is resolved (module level, so tests can stand DNS in for a test).
resolver: Resolver = system_resolver


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # the client's address (the server's is public by definition)
    return None


def classify(address: IPAddress) -> str | None:
    """None for a public unicast address; else what it is (``loopback``, ``private``, ...)."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return classify(embedded)
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("not public", not address.is_global),
    )
    return next((kind for kind, hit in checks if hit), None)


def allowed(address: IPAddress, *, allow_loopback: bool) -> bool:
    kind = classify(address)
    return kind is None or (allow_loopback and kind == "loopback")


def check(host: str, port: int, *, allow_loopback: bool, require_loopback: bool = False) -> str:
    """The address to connect to for ``host``: resolved once, every address checked. Raises
    ``ForbiddenDestination`` when the name does not resolve or any of its addresses is not allowed
    (``require_loopback``: any that is not loopback, for plain ``http://`` in local development)."""
    try:
        found = resolver(host, port)
    except (OSError, UnicodeError, ValueError):
        raise ForbiddenDestination("the host name does not resolve") from None
    if not found:
        raise ForbiddenDestination("the host name does not resolve")
    addresses: list[IPAddress] = []
    for text in found:
        try:
            addresses.append(ipaddress.ip_address(text.split("%", 1)[0]))
        except ValueError:
            raise ForbiddenDestination("the host resolves to something that is not an address") from None
    for address in addresses:
        kind = classify(address)
        if require_loopback and kind != "loopback":
            raise ForbiddenDestination("http:// is for loopback addresses only; use https://")
        if not allowed(address, allow_loopback=allow_loopback):
            raise ForbiddenDestination(f"the host resolves to a {kind} address")
    return str(addresses[0])
