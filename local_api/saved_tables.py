"""The template's DynamoDB tables in the saved state: every item of each, saved as DynamoDB JSON (typed:
``{"S": ...}``; binary values base64), and written back with ``BatchWriteItem``.

Generic over ``template.yaml``: each ``AWS::DynamoDB::Table`` the stack creates, whatever its items are
(jobs, upload claims, idempotency records, rate-limit buckets, webhooks: all typed items of the jobs
table; the preview cache). A saved table is restored only into a table with the same key schema, and
every item is checked first (its keys present, with the types the table defines): anything else makes
the whole state unreadable, before anything is written. A saved table the template no longer has is
skipped (and said); a table the template added since starts empty.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from local_api.cfn_template import Stack
from local_api.state_store import UnreadableState

#: ``BatchWriteItem`` takes at most 25 requests.
_BATCH = 25


def table_shapes(stack: Stack) -> dict[str, dict[str, Any]]:
    """Each table's name -> its key schema and attribute types, as the template defines them."""
    shapes = {}
    for logical_id in stack.of_type("AWS::DynamoDB::Table"):
        props = stack.properties(logical_id)
        shapes[props["TableName"]] = {
            "key_schema": [{"name": k["AttributeName"], "type": k["KeyType"]} for k in props["KeySchema"]],
            "attributes": {a["AttributeName"]: a["AttributeType"] for a in props["AttributeDefinitions"]},
        }
    return shapes


def snapshot_tables(dynamodb: Any, stack: Stack) -> dict[str, Any]:
    """Every item of every table, with the table's shape (to refuse a restore into a changed schema)."""
    saved = {}
    for name, shape in table_shapes(stack).items():
        items: list[dict[str, Any]] = []
        for page in dynamodb.get_paginator("scan").paginate(TableName=name, ConsistentRead=True):
            items.extend(_encoded(item) for item in page.get("Items", []))
        saved[name] = {**shape, "items": items}
    return saved


def check_tables(saved: Any, stack: Stack) -> list[str]:
    """``UnreadableState`` unless every saved table fits the template's; returns notes (tables skipped)."""
    if not isinstance(saved, dict):
        raise UnreadableState('"tables" is not an object')
    shapes, notes = table_shapes(stack), []
    for name, table in saved.items():
        if name not in shapes:
            notes.append(f"table {name} is no longer in template.yaml: its items are not restored")
            continue
        if not isinstance(table, dict) or not isinstance(table.get("items"), list):
            raise UnreadableState(f"table {name}: no list of items")
        shape = shapes[name]
        if table.get("key_schema") != shape["key_schema"]:
            raise UnreadableState(
                f"table {name}: its key schema changed (saved {table.get('key_schema')}, template.yaml has "
                f"{shape['key_schema']})"
            )
        for index, item in enumerate(table["items"]):
            problem = _item_problem(item, shape)
            if problem is None:
                try:
                    _decoded(item)
                except (ValueError, TypeError, AttributeError):
                    problem = "an attribute is not DynamoDB JSON"
            if problem:
                raise UnreadableState(f"table {name}, item {index}: {problem}")
    return notes


def restore_tables(dynamodb: Any, saved: dict[str, Any], stack: Stack) -> dict[str, int]:
    """Write the saved items (checked by ``check_tables``) into the emulated tables; table -> items."""
    shapes, counts = table_shapes(stack), {}
    for name, table in saved.items():
        if name not in shapes:
            continue
        items = [_decoded(item) for item in table["items"]]
        for start in range(0, len(items), _BATCH):
            requests = [{"PutRequest": {"Item": item}} for item in items[start : start + _BATCH]]
            _write_batch(dynamodb, name, requests)
        counts[name] = len(items)
    return counts


def _write_batch(dynamodb: Any, table: str, requests: list[dict[str, Any]]) -> None:
    pending: dict[str, Any] = {table: requests}
    for _ in range(10):  # the emulator processes everything; a real service may leave some for a retry
        pending = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
        if not pending:
            return
    raise RuntimeError(f"table {table}: items left unprocessed after 10 attempts")


def _item_problem(item: Any, shape: dict[str, Any]) -> str | None:
    if not isinstance(item, dict) or not item:
        return "not an item"
    if not all(isinstance(v, dict) and len(v) == 1 for v in item.values()):
        return "an attribute is not DynamoDB JSON"
    for key in shape["key_schema"]:
        if key["name"] not in item:
            return f"no {key['name']} (part of the key)"
    for attribute, kind in shape["attributes"].items():
        value = item.get(attribute)
        if value is not None and (not isinstance(value, dict) or list(value) != [kind]):
            return f"{attribute} is not of type {kind}, as the table (or one of its indexes) needs"
    return None


def _walk(value: dict[str, Any], binary: Callable[[Any], Any]) -> dict[str, Any]:
    """One attribute value with its binary parts converted by ``binary`` (recursively through M and L)."""
    ((kind, inner),) = value.items()
    if kind == "B":
        return {"B": binary(inner)}
    if kind == "BS":
        return {"BS": [binary(b) for b in inner]}
    if kind == "M":
        return {"M": {k: _walk(v, binary) for k, v in inner.items()}}
    if kind == "L":
        return {"L": [_walk(v, binary) for v in inner]}
    return {kind: inner}


def _encoded(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _walk(v, lambda b: base64.b64encode(bytes(b)).decode("ascii")) for k, v in item.items()}


def _decoded(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _walk(v, lambda b: base64.b64decode(str(b))) for k, v in item.items()}
