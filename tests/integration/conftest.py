"""Raw clients of the emulated account, for tests that look at storage behind the API's back; the fake
clock retries sleep on."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from local_api.cfn_template import Stack
from utils import retry


class FakeClock:
    """Monotonic time that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """Retries run without waiting: ``utils.retry`` sleeps on, and reads the time of, a fake clock."""
    fake = FakeClock()
    monkeypatch.setattr(retry, "sleeper", fake.sleep)
    monkeypatch.setattr(retry, "now", fake)
    return fake


@pytest.fixture
def s3(aws: Stack) -> Any:
    return boto3.client("s3", region_name="us-east-1")


@pytest.fixture
def dynamodb(aws: Stack) -> Any:
    return boto3.client("dynamodb", region_name="us-east-1")
