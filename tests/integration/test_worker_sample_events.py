"""events/workers/*.json, the workers' sample events (`sam local invoke JobEventsFunction -e ...`), through
their handlers so they never rot: a stream batch as Lambda's event source mapping delivers it, and a
Step Functions task's input."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest

from local_api.cfn_template import Stack
from local_api.server import LambdaContext
from tests.conftest import EVENTS, invoke_event, load_event
from tests.events import Subscriber, kinds
from workers import pipeline_task, stream_consumer

SAMPLES = EVENTS / "workers"


@pytest.fixture
def subscriber(aws: Stack) -> Iterator[Subscriber]:
    session = boto3.session.Session(region_name="us-east-1")
    subscribed = Subscriber(session.client("events"), session.client("sqs"))
    yield subscribed
    subscribed.close()


def test_the_stream_batch_sample_publishes_its_two_job_changes_and_nothing_else(subscriber: Subscriber) -> None:
    batch = json.loads((SAMPLES / "job_events_batch.json").read_text())
    names = [record["eventName"] for record in batch["Records"]]
    assert names == ["INSERT", "INSERT", "MODIFY", "REMOVE"], "a job, an idem# item, a start, a TTL deletion"

    answer = stream_consumer.lambda_handler(batch, LambdaContext("location-detection-dev-job-events", 60))

    assert answer == {"batchItemFailures": []}
    job_id = "job_20261121T231500_9f2c4e7a1b3d5f60"
    assert kinds(subscriber.take()) == [(f"{job_id}:1", "job.created"), (f"{job_id}:2", "job.processing")]


def test_the_pipeline_task_sample_starts_a_job(aws: Stack) -> None:
    created = invoke_event(load_event("create_job.json"))
    assert created.status == 201, created.body
    task = {**json.loads((SAMPLES / "pipeline_task_start.json").read_text()), "job_id": created.data["job_id"]}

    job = pipeline_task.lambda_handler(task, LambdaContext("location-detection-dev-pipeline-task", 30))
    assert (job["job_id"], job["status"]) == (created.data["job_id"], "processing")
