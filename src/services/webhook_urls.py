"""Which webhook URLs the API accepts and sends to (the contract's URL rules), checked at registration and
again before every delivery, since what a name resolves to can change in between.

- ``https://`` only; ``http://`` only with the ``WEBHOOK_ALLOW_LOOPBACK`` setting (local development)
  and only to a host that resolves to loopback alone;
- no user name or password in the URL (it would be stored, listed and sent), no fragment;
- a host that resolves, and only to public addresses (``utils.addresses``: not private, loopback unless
  allowed, link-local, the metadata service, multicast, reserved; IPv4 and IPv6, embedded IPv4 too).
The check answers the address to connect to (``Target``): the delivery never resolves the name again.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from models.errors import InvalidWebhookUrl
from models.webhooks import MAX_URL_CHARS
from utils import addresses
from utils.outbound_http import Target

_DEFAULT_PORTS = {"https": 443, "http": 80}
#: No whitespace or control characters anywhere in a URL (RFC 3986 has none; some parsers strip them).
_UNSAFE = re.compile(r"[\s\x00-\x1f\x7f]")


def _refuse(reason: str) -> InvalidWebhookUrl:
    return InvalidWebhookUrl(f"The webhook URL is refused: {reason}", details={"field": "url", "reason": reason})


def check_url(url: str, *, allow_loopback: bool) -> Target:
    """Where a delivery to ``url`` goes, or ``InvalidWebhookUrl`` saying why it may not."""
    if not url or len(url) > MAX_URL_CHARS or _UNSAFE.search(url):
        raise _refuse(f"it must be an absolute URL of at most {MAX_URL_CHARS} characters, without spaces")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _refuse("it is not a valid URL") from None
    if port == 0:
        raise _refuse("its port must be 1..65535")
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or (scheme == "http" and not allow_loopback):
        raise _refuse("it must start with https://")
    if parts.username is not None or parts.password is not None:
        raise _refuse("it must not carry a user name or password")
    if parts.fragment or url.endswith("#"):
        raise _refuse("it must not have a fragment")
    host = _ascii_host(parts.hostname or "")
    port = port or _DEFAULT_PORTS[scheme]
    try:
        address = addresses.check(host, port, allow_loopback=allow_loopback, require_loopback=scheme == "http")
    except addresses.ForbiddenDestination as exc:
        raise _refuse(exc.reason) from None
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme=scheme, host=host, port=port, path=path, address=address)


def _ascii_host(host: str) -> str:
    """The host as DNS and TLS see it (an internationalised name in its ``xn--`` form)."""
    if not host:
        raise _refuse("it has no host")
    if ":" in host:  # an IPv6 literal: urlsplit took the brackets off
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        raise _refuse("its host is not a valid name") from None
