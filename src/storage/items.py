"""DynamoDB items <-> plain values, for every table's store.

Strings and numbers (nearly every attribute we store) are decoded directly; anything else goes through
boto3's deserializer: the same results in a third of the time per job (``bench``'s profiles).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    """Plain values (numbers as int or Decimal) as DynamoDB attribute values."""
    return {k: _serializer.serialize(v) for k, v in values.items()}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    """An item's attributes as plain values (numbers as ``Decimal``)."""
    return {k: _attribute(v) for k, v in item.items()}


def _attribute(value: Any) -> Any:
    if len(value) == 1:
        kind, raw = next(iter(value.items()))
        if kind == "S":
            return raw
        if kind == "N":
            return Decimal(raw)
    return _deserializer.deserialize(value)
