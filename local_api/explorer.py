"""``GET /`` of the local API, and only there: the explorer page (development only, never deployed).

The page is one self-contained HTML document, ``clients/typescript/dist/explorer.html`` (committed; built by
``npm run bundle`` in ``clients/typescript``), so no other path is needed: every other request still goes to
the Lambda exactly as before. Its Content-Security-Policy allows only its own inline script and style (by
hash), calls to this origin and to the emulated S3 (presigned uploads, result downloads), and images and
PDFs from ``blob:`` URLs of files the user dropped.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import re
from pathlib import Path
from urllib.parse import urlsplit

PAGE = Path(__file__).resolve().parent.parent / "clients" / "typescript" / "dist" / "explorer.html"
_INLINE = {
    "script-src": re.compile(rb"<script type=\"module\">(.*?)</script>", re.S),
    "style-src": re.compile(rb"<style>(.*?)</style>", re.S),
}


def _hash_sources(page: bytes) -> dict[str, str]:
    sources = {}
    for directive, pattern in _INLINE.items():
        digests = [base64.b64encode(hashlib.sha256(m).digest()).decode() for m in pattern.findall(page)]
        sources[directive] = " ".join(f"'sha256-{d}'" for d in digests) or "'none'"
    return sources


def _endpoint_sources(aws_endpoint_url: str) -> str:
    """The emulated AWS origin, path-style (``http://127.0.0.1:PORT/bucket``) or virtual-hosted."""
    parts = urlsplit(aws_endpoint_url)
    if not parts.scheme or not parts.hostname:
        return ""
    origin = f"{parts.scheme}://{parts.netloc}"
    try:
        ipaddress.ip_address(parts.hostname)
    except ValueError:  # a name: buckets may be its subdomains (virtual-hosted style, e.g. LocalStack)
        return f"{origin} {parts.scheme}://*.{parts.netloc}"
    return origin


def content_security_policy(page: bytes, aws_endpoint_url: str) -> str:
    sources = _hash_sources(page)
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {sources['script-src']}",
            f"style-src {sources['style-src']}",
            f"connect-src 'self' {_endpoint_sources(aws_endpoint_url)}".rstrip(),
            "img-src blob: data:",
            "object-src blob:",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


def response(method: str, target: str, aws_endpoint_url: str) -> tuple[int, list[tuple[str, str]], bytes] | None:
    """The page for ``GET /`` (and ``HEAD /``); None for anything else, which goes to the Lambda."""
    if method not in ("GET", "HEAD") or urlsplit(target).path != "/" or not PAGE.is_file():
        return None
    page = PAGE.read_bytes()  # read per request: a rebuilt page shows without a restart
    headers = [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Cache-Control", "no-store"),
        ("Content-Security-Policy", content_security_policy(page, aws_endpoint_url)),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
    ]
    return 200, headers, page
