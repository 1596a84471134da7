"""The HTTP API's side of the integration, as the local API plays it: the payload-2.0 event API Gateway
builds from a request (for the route the request matches), the Lambda context object, and how API
Gateway turns the function's result back into HTTP (``isBase64Encoded``, the simple-response inference).
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

#: Content types API Gateway hands to the Lambda as text; everything else arrives base64-encoded.
_TEXT_TYPES = (
    "text/",
    "application/json",
    "application/xml",
    "application/javascript",
    "application/x-www-form-urlencoded",
)
LOCAL_ACCOUNT = "123456789012"
LOCAL_API_ID = "localapi"


class LambdaContext:
    """The parts of the Lambda context object our handler (and Powertools-style code) reads."""

    def __init__(self, function_name: str, timeout_seconds: int, memory_mb: int = 1024) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:{LOCAL_ACCOUNT}:function:{function_name}"
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def is_text(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media.startswith(_TEXT_TYPES) or media.endswith("+json") or media.endswith("+xml")


#: The HTTP API's routes (template.yaml's AWS::ApiGatewayV2::Route resources), most specific first.
ROUTES = (
    "GET /health",
    "GET /api/v1/openapi.json",
    "OPTIONS /api/{proxy+}",
    "ANY /api/{proxy+}",
    "ANY /",
    "ANY /{proxy+}",
)


def route_key(method: str, path: str) -> str:
    """The route API Gateway matches a request to: an exact path first, then the longest greedy one."""
    for key in ROUTES:
        route_method, pattern = key.split(" ", 1)
        if route_method not in ("ANY", method):
            continue
        prefix = pattern.removesuffix("{proxy+}")
        if path == pattern or (prefix != pattern and path.startswith(prefix) and len(path) > len(prefix)):
            return key
    return "$default"


def build_event(
    method: str, target: str, headers: list[tuple[str, str]], body: bytes, source_ip: str = "127.0.0.1"
) -> dict[str, Any]:
    """An HTTP API payload-2.0 event, as API Gateway builds it for the route the request matches."""
    url = urlsplit(target)
    lowered: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        lowered[key] = f"{lowered[key]},{value}" if key in lowered else value
    query: dict[str, str] = {}
    for key, value in parse_qsl(url.query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    now = datetime.now(UTC)
    path = url.path or "/"
    route = route_key(method, path)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route,
        "rawPath": path,
        "rawQueryString": url.query,
        "headers": lowered,
        "requestContext": {
            "accountId": LOCAL_ACCOUNT,
            "apiId": LOCAL_API_ID,
            "domainName": lowered.get("host", "127.0.0.1"),
            "domainPrefix": lowered.get("host", "127.0.0.1").split(".")[0],
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": base64.b32encode(uuid.uuid4().bytes[:10]).decode().rstrip("=")[:16],
            "routeKey": route,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if route.endswith("{proxy+}"):
        event["pathParameters"] = {"proxy": path.removeprefix(route.split(" ", 1)[1].removesuffix("{proxy+}"))}
    if body:
        if is_text(lowered.get("content-type", "")):
            try:
                event["body"] = body.decode("utf-8")
            except UnicodeDecodeError:
                event["body"] = base64.b64encode(body).decode()
                event["isBase64Encoded"] = True
        else:
            event["body"] = base64.b64encode(body).decode()
            event["isBase64Encoded"] = True
    return event


Response = tuple[int, list[tuple[str, str]], bytes]


def to_http(result: Any) -> Response:
    """A Lambda result as API Gateway (payload 2.0) turns it into an HTTP response."""
    if isinstance(result, dict) and "statusCode" in result:
        status = int(result["statusCode"])
        headers = [(str(k), str(v)) for k, v in (result.get("headers") or {}).items()]
        headers.extend(("Set-Cookie", str(c)) for c in result.get("cookies") or [])
        raw = result.get("body") or ""
        body = base64.b64decode(raw) if result.get("isBase64Encoded") else str(raw).encode("utf-8")
        return status, headers, body
    # Simple response inference: anything else is the JSON body of a 200.
    text = result if isinstance(result, str) else json.dumps(result)
    return 200, [("Content-Type", "application/json")], text.encode("utf-8")
