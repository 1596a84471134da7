"""Job, upload and feedback ids: ``{prefix}_{YYYYMMDDTHHMMSS}_{random lowercase hex}``. No I/O."""

from __future__ import annotations

import re
from datetime import datetime

from models.errors import InvalidJobId


class IdFormat:
    """``{prefix}_{YYYYMMDDTHHMMSS}_{random lowercase hex}``: the UTC time an id was minted and randomness."""

    __slots__ = ("name", "pattern", "prefix", "random_hex_digits")

    def __init__(self, name: str, prefix: str, random_hex_digits: int) -> None:
        self.name = name
        self.prefix = prefix
        self.random_hex_digits = random_hex_digits
        self.pattern = re.compile(rf"{prefix}_[0-9]{{8}}T[0-9]{{6}}_[0-9a-f]{{{random_hex_digits}}}")

    def matches(self, value: str) -> bool:
        """The shape, and a timestamp that is a real UTC time (no month 13, hour 25 or 30 February)."""
        if self.pattern.fullmatch(value) is None:
            return False
        at = len(self.prefix) + 1  # YYYYMMDDTHHMMSS, all digits (the pattern checked them)
        try:  # datetime() rules on the calendar (strptime would too, at ~6x the cost and its import)
            datetime(
                int(value[at : at + 4]),
                int(value[at + 4 : at + 6]),
                int(value[at + 6 : at + 8]),
                int(value[at + 9 : at + 11]),
                int(value[at + 11 : at + 13]),
                int(value[at + 13 : at + 15]),
            )
        except ValueError:
            return False
        return True

    def make(self, compact_time: str, random_hex: str) -> str:
        value = f"{self.prefix}_{compact_time}_{random_hex}"
        if not self.matches(value):
            raise ValueError(f"{self.name} id parts do not form a valid {self.name} id")
        return value


#: 64 random bits. Uploads carry 128 because the id alone lets its holder finalise the upload.
JOB_ID = IdFormat("job", "job", 16)
UPLOAD_ID = IdFormat("upload", "upl", 32)
FEEDBACK_ID = IdFormat("feedback", "fb", 16)


def is_valid_job_id(value: str) -> bool:
    return JOB_ID.matches(value)


def is_valid_upload_id(value: str) -> bool:
    return UPLOAD_ID.matches(value)


def validate_job_id(job_id: str) -> str:
    """``job_id`` itself if it is one, else ``InvalidJobId`` (before any read: a malformed id is the
    client's mistake, not an absent job)."""
    if not is_valid_job_id(job_id):
        raise InvalidJobId(details={"expected_format": "job_{YYYYMMDDTHHMMSS}_{16 lowercase hex}"})
    return job_id
