"""DynamoDB items <-> plain values, for every table's store.

Strings and integers (nearly every attribute we store) are encoded and decoded directly; anything else
goes through boto3's serializer and deserializer: the same results in a third of the time per job
(``bench``'s profiles; ``tests/unit/test_items.py`` holds both paths to boto3's answers).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, cast

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
#: DynamoDB numbers hold 38 significant digits; boto3's serializer refuses a larger integer, so it gets one.
_NUMBER_LIMIT = 10**38


def to_item(values: dict[str, Any]) -> dict[str, Any]:
    """Plain values (numbers as int or Decimal) as DynamoDB attribute values."""
    return {k: _value(v) for k, v in values.items()}


def _value(value: Any) -> dict[str, Any]:
    kind = type(value)
    if kind is str:
        return {"S": value}
    if kind is int and -_NUMBER_LIMIT < value < _NUMBER_LIMIT:  # bool is not this exact type: BOOL
        return {"N": str(value)}
    return cast(dict[str, Any], _serializer.serialize(value))


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
