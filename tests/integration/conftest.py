"""Raw clients of the emulated account, for tests that look at storage behind the API's back."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from local_api.cfn_template import Stack


@pytest.fixture
def s3(aws: Stack) -> Any:
    return boto3.client("s3", region_name="us-east-1")


@pytest.fixture
def dynamodb(aws: Stack) -> Any:
    return boto3.client("dynamodb", region_name="us-east-1")
