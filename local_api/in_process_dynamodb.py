"""This process's DynamoDB calls answered by moto's own DynamoDB code, without the HTTP round trip.

With ``local_api.in_process`` installed, botocore hands each DynamoDB request of this process to moto's
``BotocoreStubber``, which normalises it into a werkzeug request, matches its URL against every service's
patterns, sets up a ``DynamoHandler``, runs the action, serialises the answer with moto's generic,
model-driven serializer (most of a local GET's CPU: it looks every member of every attribute of every item
up under half a dozen aliases), and botocore parses that JSON back. Here a botocore ``before-call``
handler does the same work more directly, for the operations ``src/`` makes:

- the request: moto's own JSON request parser reads the body botocore built (so moto sees exactly the
  parameters it would have parsed), and a ``DynamoHandler`` is set up with what ``setup_class`` would
  give it (account from the signing credentials, region from the URL);
- the action: moto's ``call_action`` itself (``local_api.moto_atomic``'s lock, IAM bookkeeping, the
  action method, its exceptions, request id, ``x-amz-crc32``), so conditional writes, the expressions
  that filter out expired items (TTL), and the stream records the backend keeps are moto's, unchanged;
- the answer: a plain result (``ActionResult`` of dicts, lists, strings, numbers, booleans, bytes) is
  converted by a walk of the output shape into exactly what moto's serializer followed by botocore's
  parser produces (the JSON body is still written, with the same bytes, for the CRC header); anything
  the walk cannot prove identical (an alias the serializer would look up, a timestamp, an odd type, a
  union without one member) is serialised by moto's serializer as before;
- errors, and every answer the walk declined: moto's stubber returns them at ``before-send`` (the HTTP
  response it would have built), so botocore parses it, raises the same ``ClientError``
  (modelled fields such as ``Item`` and ``CancellationReasons`` included) and applies its retry rules as on
  the normal path. A retry goes to moto's stubber.

Every other call, and any call this cannot vouch for (another service, an operation not listed, an
endpoint moto would not route to DynamoDB in process, IAM authorisation or moto's recorder switched on,
unsigned requests, an account header) goes the normal ``mock_aws`` way. Dev-only: never imported by
``src/``; ``tests/integration/test_in_process_dynamodb.py`` holds it to the normal path.
"""

from __future__ import annotations

import base64
import json
import math
import re
import threading
from collections.abc import Callable
from typing import Any

#: What ``src/`` calls (``storage/``): anything else takes the normal path.
OPERATIONS = frozenset({"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "TransactWriteItems"})
#: Where botocore's request context carries an answer for moto's stubber to return at ``before-send``.
_PENDING = "local_api.in_process_dynamodb.answer"

_enabled = False
_registered = False
_stats_lock = threading.Lock()
#: How calls went (tests and the benchmark notes): "direct" (parsed here), "served" (botocore parsed
#: moto's answer), "passed" (normal path).
stats = {"direct": 0, "served": 0, "passed": 0}


class _Decline(Exception):
    """The shape walk cannot prove its result identical to moto's serializer + botocore's parser."""


def _count(what: str) -> None:
    with _stats_lock:
        stats[what] += 1


# ------------------------------------------------------------------------------------------ shape walk
Converter = Callable[[Any], Any]
_converters: dict[str, Converter] = {}  # by shape name (DynamoDB's, from moto's model)


def _plain_name(shape: Any) -> bool:
    return "name" not in shape.serialization


def _alias_keys(member: str, shape: Any, parent: Any) -> set[str]:
    """Every key moto's ``XFormedAttributePicker`` may look ``member`` up under, besides ``member`` itself
    (``ShapeNameAlias``, ``xform_name``, ``ShapePrefixAlias``, ``ModelAlias``)."""
    from botocore import xform_name

    keys = {xform_name(member)}
    if member.lower().startswith("dict"):  # ClassPrefixAlias, for a dict
        keys |= {member[4:], xform_name(member[4:])}
    if shape.type_name in ("list", "structure") and shape.name not in parent.members and shape.name != member:
        keys |= {shape.name, xform_name(shape.name)}
    if member.lower().startswith(parent.name.lower()) and member[len(parent.name) :] not in parent.members:
        short = member[len(parent.name) :]
        keys |= {short, xform_name(short)}
    keys.discard(member)
    return keys


def _converter(shape: Any) -> Converter:
    """The function turning a value of moto's result for ``shape`` into what botocore would have parsed
    from moto's JSON (built once per shape; recursive shapes resolve lazily)."""
    key = shape.name
    found = _converters.get(key)
    if found is not None:
        return found
    box: list[Converter] = []

    def lazy(value: Any) -> Any:
        return box[0](value)

    _converters[key] = lazy  # a shape reached again inside itself (AttributeValue -> M -> AttributeValue)
    built = _build(shape)
    box.append(built)
    _converters[key] = built
    return built


def _build(shape: Any) -> Converter:
    if not _plain_name(shape):
        return _decline
    kind = shape.type_name
    scalar = _SCALARS.get(kind)
    if scalar is not None:
        return scalar
    builder = _CONTAINERS.get(kind)
    return builder(shape) if builder is not None else _decline  # timestamps and newer: moto's serializer


def _structure(shape: Any) -> Converter:
    if shape.is_document_type or shape.serialization.get("eventstream"):
        return _decline
    members = dict(shape.members)
    aliases: set[str] = set()
    for name, member in members.items():
        if not _plain_name(member) or _alias_keys(name, member, shape) & set(members):
            return _decline
        aliases |= _alias_keys(name, member, shape)
    converters = [(name, _converter(member)) for name, member in members.items()]
    allowed = frozenset(members)
    looked_up = frozenset(aliases)
    union = bool(shape.is_tagged_union)

    def structure(value: Any) -> Any:
        # Keys that are no member are ignored by both sides (moto's DeleteItem adds
        # "ConsumedCapacityUnits"), unless the serializer would look a member up under one.
        if type(value) is not dict or (not allowed.issuperset(value) and not looked_up.isdisjoint(value)):
            raise _Decline
        out = {}
        for name, convert in converters:
            item = value.get(name)
            if item is not None:
                out[name] = convert(item)
        if union and len(out) != 1:
            raise _Decline
        return out

    return structure


def _map(shape: Any) -> Converter:
    if shape.key.type_name != "string":
        return _decline
    convert_value = _converter(shape.value)

    def mapping(value: Any) -> Any:
        if type(value) is not dict:
            raise _Decline
        out = {}
        for k, v in value.items():
            if type(k) is not str or v is None:
                raise _Decline
            out[k] = convert_value(v)
        return out

    return mapping


def _list(shape: Any) -> Converter:
    convert_item = _converter(shape.member)

    def sequence(value: Any) -> Any:
        if type(value) is not list:
            raise _Decline
        out = []
        for item in value:
            if item is None:
                raise _Decline
            out.append(convert_item(item))
        return out

    return sequence


def _of_type(wanted: type) -> Converter:
    def exactly(value: Any) -> Any:
        if type(value) is not wanted:
            raise _Decline
        return value

    return exactly


def _double(value: Any) -> Any:
    if type(value) is float:
        return value
    if type(value) is int:
        return float(value)
    raise _Decline


def _decline(value: Any) -> Any:
    raise _Decline


_CONTAINERS: dict[str, Callable[[Any], Converter]] = {"structure": _structure, "map": _map, "list": _list}
_SCALARS: dict[str, Converter] = {
    "string": _of_type(str),
    "boolean": _of_type(bool),
    "blob": _of_type(bytes),  # botocore decodes moto's base64 back to the same bytes
    "integer": _of_type(int),
    "long": _of_type(int),
    "float": _double,  # moto writes float(value); JSON keeps a float's repr exactly
    "double": _double,
}


def _json_default(value: Any) -> Any:
    if type(value) is bytes:
        return base64.b64encode(value).decode("utf-8")
    raise TypeError(type(value).__name__)


# ------------------------------------------------------------------------------------------ moto's side
def _handler_class() -> type[Any]:
    from moto import settings
    from moto.core.responses import ActionResult
    from moto.dynamodb.responses import DynamoHandler, DynamoResult

    plain_results = (ActionResult, DynamoResult)

    class Handler(DynamoHandler):
        """moto's handler, with its answer converted by the shape walk when it can be."""

        direct: Any = None
        direct_body = ""
        output_converter: Converter = _decline
        content_type = ""
        status_code = 200

        def serialized(self, action_result: Any) -> Any:
            result = action_result.result
            if (
                type(action_result) in plain_results
                and not isinstance(result, Exception)
                and not settings.PRETTIFY_RESPONSES
                and not self.RESPONSE_KEY_PATH_TO_TRANSFORMER
            ):
                try:
                    parsed = self.output_converter(result)
                except _Decline:
                    pass
                else:
                    self.direct = parsed
                    self.direct_body = json.dumps(parsed, default=_json_default)
                    headers = {"Content-Type": self.content_type}
                    headers.update(self.response_headers)
                    return self.status_code, headers, self.direct_body
            return super().serialized(action_result)

    return Handler


_state: dict[str, Any] = {}
_routes: dict[str, bool] = {}


_build_lock = threading.RLock()  # the first calls may come from several threads at once


def _moto_parts() -> dict[str, Any]:
    if _state:
        return _state
    with _build_lock:
        if _state:
            return _state
        from moto.core.responses import BaseResponse
        from moto.core.serialize import JSONSerializer, get_serializer_class
        from moto.core.utils import get_service_model

        service_model = get_service_model("dynamodb")
        handler = _handler_class()
        _cache_method_names(handler)
        _state.update(
            handler=handler,
            service_model=service_model,
            region_regex=BaseResponse.region_regex,
            access_key_regex=BaseResponse.access_key_regex,
            json_serializer=get_serializer_class(service_model.service_name, "json") is JSONSerializer,
            operations={},
        )
    return _state


def _cache_method_names(handler: type[Any]) -> None:
    """``call_action`` lists the handler class's methods with ``inspect.getmembers`` on every call (a
    quarter of what is left of a GET's moto time): the same list, once, for this class only."""
    from moto.core import responses
    from moto.core.utils import method_names_from_class as original

    names: list[str] = []

    def method_names_from_class(clazz: object) -> list[str]:
        if clazz is not handler:
            return original(clazz)
        if not names:
            names.extend(original(clazz))
        return names

    responses.method_names_from_class = method_names_from_class  # type: ignore[attr-defined]


def _routed_to_dynamodb(url: str) -> bool:
    """moto's stubber would hand ``url`` to ``DynamoHandler.dispatch`` (checked once per URL)."""
    known = _routes.get(url)
    if known is not None:
        return known
    from urllib.parse import urlsplit

    from moto import backend_index
    from moto.core.utils import get_equivalent_url_in_aws_domain

    parsed, _ = get_equivalent_url_in_aws_domain(url)
    clean = f"{parsed.scheme}://{parsed.netloc}{parsed.path}"
    service = next((name for name, pattern in backend_index.backend_url_patterns if pattern.match(clean)), None)
    ok = service == "dynamodb" and urlsplit(url).path == "/" and not urlsplit(url).query
    if ok:
        from moto.core.models import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends
        from moto.dynamodb.responses import DynamoHandler

        backend = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
        route = next((m for u, m in backend.urls.items() if re.compile(u).match(clean)), None)
        ok = getattr(route, "__func__", None) is getattr(DynamoHandler.dispatch, "__func__", DynamoHandler)
    _routes[url] = ok
    return ok


def _operation(name: str, botocore_model: Any) -> dict[str, Any] | None:
    """moto's model of the operation and the converter of its output; None when moto's model and the
    client's differ (the walk would then follow the wrong shapes)."""
    parts = _moto_parts()
    cached = parts["operations"].get(name)
    if cached is None:
        with _build_lock:
            cached = parts["operations"].get(name) or _operation_entry(parts, name, botocore_model)
            parts["operations"][name] = cached
    return cached if cached["same"] else None


def _operation_entry(parts: dict[str, Any], name: str, botocore_model: Any) -> dict[str, Any]:
    model = parts["service_model"].operation_model(name)
    same = _signature(model.output_shape) == _signature(botocore_model.output_shape) and _signature(
        model.input_shape
    ) == _signature(botocore_model.input_shape)
    return {
        "model": model,
        "same": same,
        "convert": _converter(model.output_shape) if same else _decline,
        "status": model.http.get("responseCode", 200),
    }


def _signature(shape: Any, seen: frozenset[str] = frozenset()) -> Any:
    if shape is None:
        return None
    if shape.name in seen:
        return shape.name
    seen = seen | {shape.name}
    kind = shape.type_name
    detail: Any = None
    if kind == "structure":
        detail = tuple((n, _signature(m, seen)) for n, m in shape.members.items())
    elif kind == "list":
        detail = _signature(shape.member, seen)
    elif kind == "map":
        detail = (_signature(shape.key, seen), _signature(shape.value, seen))
    return (shape.name, kind, json.dumps(shape.serialization, sort_keys=True, default=str), detail)


def _answer(operation: Any, request_dict: dict[str, Any], request_signer: Any) -> Any:
    """moto's handler run on this request; (handler, (status, headers, body)) or None (normal path)."""
    from moto import settings
    from moto.core.config import passthrough_service, passthrough_url, service_whitelisted
    from moto.core.models import botocore_stubber
    from moto.core.parse import PROTOCOL_PARSERS
    from moto.core.request import determine_request_protocol
    from moto.iam.models import mark_account_as_visited
    from moto.moto_api import recorder

    url = request_dict["url"]
    headers = request_dict["headers"]
    if not (
        botocore_stubber.enabled
        and request_dict["method"] == "POST"
        and _routed_to_dynamodb(url)
        and math.isinf(settings.INITIAL_NO_AUTH_ACTION_COUNT)
        and not recorder._user_enabled
        and service_whitelisted("dynamodb")
        and not passthrough_service("dynamodb")
        and not passthrough_url(url.split("?", 1)[0])
        and "x-moto-account-id" not in headers
        and isinstance(request_dict["body"], bytes)
    ):
        return None
    credentials = getattr(request_signer, "_credentials", None)
    if credentials is None or request_signer.signature_version != "v4":
        return None
    parts = _moto_parts()
    entry = _operation(operation.name, operation)
    region = parts["region_regex"].search(url)
    if entry is None or region is None or not parts["json_serializer"]:
        return None
    content_type = headers.get("Content-Type", "")
    if determine_request_protocol(parts["service_model"], content_type) != "json":
        return None
    # moto reads the key from the SigV4 Authorization header with its regex (a key it does not recognise
    # there, such as "testing", counts as AKIAEXAMPLE): the header's "Credential=<key>/" decides.
    found = parts["access_key_regex"].search(
        f"AWS4-HMAC-SHA256 Credential={credentials.get_frozen_credentials().access_key}/"
    )
    access_key = found.group("access_key") if found else "AKIAEXAMPLE"
    body: bytes = request_dict["body"]

    handler = parts["handler"]()
    handler.output_converter = entry["convert"]
    handler.content_type = f"application/x-amz-json-{parts['service_model'].metadata.get('jsonVersion', '1.0')}"
    handler.status_code = entry["status"]
    # What BaseResponse.setup_class sets from the normalised request (moto/core/responses.py).
    from urllib.parse import urlparse

    from moto.core.utils import utcnow
    from werkzeug.datastructures import MultiDict
    from werkzeug.http import http_date

    handler.is_werkzeug_request = False
    handler.parsed_url = urlparse(url)
    handler.body = handler.raw_body = body.decode("utf-8")
    handler.form_data = {}
    handler.querystring = {}
    handler.data = handler.querystring
    handler.uri = url
    handler.path = handler.parsed_url.path
    handler.raw_path = handler.parsed_url.path
    handler.method = "POST"
    handler.region = region.group(1)
    handler.partition = _partition(handler.region)
    handler.uri_match = {}
    handler.headers = headers
    handler.response_headers = {"server": "amazon.com", "date": http_date(utcnow())}
    parser = PROTOCOL_PARSERS["json"](entry["model"], map_type=handler.PROTOCOL_PARSER_MAP_TYPE)
    handler.params = parser.parse(
        {"method": "POST", "values": MultiDict(), "headers": headers, "body": body, "url_path": "/", "url_params": {}}
    )
    handler.access_key = access_key
    handler.current_account = _account(access_key)
    mark_account_as_visited(
        account_id=handler.current_account, access_key=access_key, service="dynamodb", region=handler.region
    )
    return handler, handler.call_action()


def _partition(region: str) -> str:
    from moto.utilities.utils import get_partition

    return str(get_partition(region))


def _account(access_key: str) -> str:
    """``BaseResponse.get_current_account`` without the request (no ``x-moto-account-id``: checked)."""
    import os

    if "MOTO_ACCOUNT_ID" in os.environ:
        return os.environ["MOTO_ACCOUNT_ID"]
    from moto.iam.models import get_account_id_from

    return str(get_account_id_from(access_key))


# ------------------------------------------------------------------------------------------ botocore's side
def before_call(model: Any, params: dict[str, Any], request_signer: Any, context: dict[str, Any], **_: Any) -> Any:
    """``before-call`` (DynamoDB's operations): the answer, parsed, for a plain success; otherwise the HTTP
    response moto would give, left in the context for its stubber to return at ``before-send``, or
    nothing at all (None: the normal path)."""
    if (
        not _enabled
        or model.name not in OPERATIONS
        or model.service_model.service_name != "dynamodb"
        or _PENDING in context  # registered twice on one emitter: answered once
    ):
        return None
    answer = _answer(model, params, request_signer)
    if answer is None:
        _count("passed")
        return None
    handler, (status, headers, body) = answer
    from botocore.awsrequest import AWSResponse
    from botocore.utils import lowercase_dict
    from moto.core.botocore_stubber import MockRawResponse

    http = AWSResponse(params["url"], status, headers, MockRawResponse(body))
    # (moto's _enrich_response rewrites "<RequestId>...</RequestId>" in any body: then botocore parses it)
    if handler.direct is None or status >= 300 or body != handler.direct_body:
        context[_PENDING] = http
        _count("served")
        return None
    parsed = handler.direct
    metadata: dict[str, Any] = {}
    if "x-amzn-requestid" in http.headers:
        metadata["RequestId"] = http.headers["x-amzn-requestid"]
    metadata["HTTPStatusCode"] = status
    metadata["HTTPHeaders"] = lowercase_dict(http.headers)
    parsed["ResponseMetadata"] = metadata
    if not _after_response(model, params, request_signer, http, parsed):
        context[_PENDING] = http  # botocore would retry this answer: let it, the normal way
        _count("served")
        return None
    metadata["RetryAttempts"] = 0
    _count("direct")
    return http, parsed


def _after_response(model: Any, request_dict: dict[str, Any], request_signer: Any, http: Any, parsed: Any) -> bool:
    """What botocore's endpoint does with a parsed answer before handing it back (``response-received``,
    then ``needs-retry``: the retry handler's bookkeeping, e.g. standard mode's ``MaxAttemptsReached``
    and its quota); False if a handler asks for a retry (not seen for a 200; left to the normal path)."""
    from botocore.endpoint import convert_to_response_dict
    from botocore.hooks import first_non_none_response

    emitter = request_signer._event_emitter  # the client's, which its endpoint shares
    service_id = model.service_model.service_id.hyphenize()
    emitter.emit(
        f"response-received.{service_id}.{model.name}",
        response_dict=convert_to_response_dict(http, model),
        parsed_response=parsed,
        context=request_dict["context"],
        exception=None,
    )
    responses = emitter.emit(
        f"needs-retry.{service_id}.{model.name}",
        response=(http, parsed),
        endpoint=None,
        operation=model,
        attempts=1,
        caught_exception=None,
        request_dict=request_dict,
    )
    return first_non_none_response(responses) is None


def _serve_pending(original: Any) -> Any:
    """moto's stubber (``before-send``), first handing over the response ``before_call`` left for this
    request (once: a retry is answered by moto afresh, as on the normal path)."""

    def call(self: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
        context = getattr(request, "context", None)
        if context and _PENDING in context:
            return context.pop(_PENDING)
        return original(self, event_name, request, **kwargs)

    call._serves_pending = True  # type: ignore[attr-defined]
    return call


def register(emitter: Any) -> None:
    """Add the handler to one botocore event emitter (a session's; the clients made from it copy it),
    after the generic ``before-call`` handlers (the request as botocore would send it)."""
    emitter.register_last("before-call", before_call, unique_id="local_api.in_process_dynamodb")


def install() -> None:
    """Answer this process's DynamoDB calls this way (idempotent): sessions created from now on get
    the handler; ``register`` adds it to one made before."""
    global _enabled, _registered
    if not _registered:
        from botocore.handlers import BUILTIN_HANDLERS, REGISTER_LAST
        from moto.core.botocore_stubber import BotocoreStubber

        if not getattr(BotocoreStubber.__call__, "_serves_pending", False):
            BotocoreStubber.__call__ = _serve_pending(BotocoreStubber.__call__)  # type: ignore[method-assign]
        BUILTIN_HANDLERS.append(("before-call", before_call, REGISTER_LAST))
        _registered = True
    _enabled = True


def uninstall() -> None:
    """Back to moto's stubber for every call (the handlers stay registered and pass)."""
    global _enabled
    _enabled = False
