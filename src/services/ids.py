"""Minting ids: the time part from the clock, the random part from the OS (formats: ``models.job``)."""

from __future__ import annotations

import secrets

from models.ids import IdFormat
from utils.clock import compact_utc


def new_id(kind: IdFormat, now: float, random_hex: str | None = None) -> str:
    """A fresh id of ``kind`` minted at ``now`` (``random_hex``: a test's fixed random part)."""
    if random_hex is None:
        random_hex = secrets.token_hex(kind.random_hex_digits // 2)
    return kind.make(compact_utc(now), random_hex)
