"""The Lambda's AWS calls answered in this process by the embedded moto's own backends, not over HTTP.

The local API embeds a moto server (``ThreadedMotoServer``) that browsers, curl and the operator CLI
reach over HTTP: presigned uploads land there, and ``AWS_ENDPOINT_URL`` names it. The handler runs in the
same process, so sending each of its boto3 calls over loopback HTTP to that server (a request built,
signed, sent, parsed by werkzeug in another thread, answered, parsed again) was most of a local request's
time (``bench``: the local API at ~46 requests/s with 8 clients). moto's backends are global to a
process: with ``mock_aws`` active here, botocore hands each call straight to the same backends the
server uses, so both paths see one state:

- DynamoDB, Parameter Store, Secrets Manager, EventBridge, SQS, the stream: the clients built without an
  endpoint (``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS``) go to AWS's own host names, which ``mock_aws``
  answers in process;
- S3 keeps the server's endpoint (``set_client``), so presigned URLs point at the HTTP server, where
  browsers and curl can reach them; ``MOTO_S3_CUSTOM_ENDPOINTS`` makes ``mock_aws`` answer that client's
  own calls in process too.

In this process, therefore, a client given the server's endpoint is answered as S3 (moto maps that
endpoint to S3's host names): only the S3 client may name it; other processes (the operator CLI, curl)
use the server over HTTP as before. ``LOCAL_API_AWS_OVER_HTTP=1`` keeps everything on HTTP.
DynamoDB's calls skip moto's URL dispatch and generic serializer too (``local_api.in_process_dynamodb``:
moto's own handler, its answer converted by a walk of the output shape; ``LOCAL_API_DYNAMODB_DIRECT=0``
leaves them to ``mock_aws``'s stubber).
Conditional writes stay atomic (``local_api.moto_atomic`` locks moto's DynamoDB handler, whichever path
a call takes); TTL, the stream and its consumer see the same tables. Dev-only, never imported by ``src/``.
"""

from __future__ import annotations

import os
from typing import Any

_mock: Any = None


def install(endpoint: str) -> None:
    """Answer this process's AWS calls in process (idempotent); ``endpoint``: the embedded moto server's
    URL (``AWS_ENDPOINT_URL``), which stays what presigned URLs and other processes use."""
    global _mock
    if _mock is not None:
        return
    os.environ["MOTO_S3_CUSTOM_ENDPOINTS"] = endpoint
    os.environ["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] = "true"
    # botocore's account-based host names (``<account>.streams-ddb.<region>.amazonaws.com``) are not among
    # the ones moto answers in process; the regional ones are.
    os.environ["AWS_ACCOUNT_ID_ENDPOINT_MODE"] = "disabled"
    import boto3
    from moto import mock_aws

    from utils import aws

    _mock = mock_aws()
    _mock.start(reset=False)  # the server's backends, already provisioned, are the state
    if os.environ.get("LOCAL_API_DYNAMODB_DIRECT") != "0":
        from local_api import in_process_dynamodb

        in_process_dynamodb.install()
        session = aws.current_session()
        if session is not None:  # made before: its clients copy its handlers
            in_process_dynamodb.register(session.events)
    aws.reset_clients()
    s3 = boto3.session.Session().client("s3", endpoint_url=endpoint, config=aws.client_config(signature_version="s3v4"))
    aws.set_client("s3", s3)


def endpoint_for(service: str, endpoint: str) -> str:
    """The endpoint a client of ``service`` made in this process may name: the server's, until this is
    installed; then only S3's (every other service's calls are answered in process; "" for none)."""
    return endpoint if _mock is None or service == "s3" else ""


def uninstall() -> None:
    """Back to HTTP (tests); the backends keep their state."""
    global _mock
    if _mock is None:
        return
    from local_api import in_process_dynamodb

    in_process_dynamodb.uninstall()
    _mock.stop(remove_data=False)
    _mock = None
    os.environ.pop("MOTO_S3_CUSTOM_ENDPOINTS", None)
    os.environ.pop("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", None)
    os.environ.pop("AWS_ACCOUNT_ID_ENDPOINT_MODE", None)
    from utils import aws

    aws.reset_clients()
