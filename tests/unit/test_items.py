"""storage.items: the direct encoding and decoding of strings and integers give boto3's own answers."""

from __future__ import annotations

from decimal import Decimal, Inexact
from typing import Any

import pytest
from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer
from hypothesis import given
from hypothesis import strategies as st

from storage.items import from_item, to_item

boto_serializer = TypeSerializer()
boto_deserializer = TypeDeserializer()

# Every kind of value our stores write: strings, integers (within DynamoDB's 38 digits), booleans, None,
# Decimals, bytes, maps and lists of them.
scalars = (
    st.text()
    | st.integers(min_value=-(10**38) + 1, max_value=10**38 - 1)
    | st.booleans()
    | st.none()
    | st.decimals(allow_nan=False, allow_infinity=False, places=3, min_value=-(10**20), max_value=10**20)
    | st.binary(min_size=1, max_size=16)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@given(st.dictionaries(st.text(min_size=1, max_size=12), values, max_size=8))
def test_to_item_encodes_every_value_as_boto3_does(record: dict[str, Any]) -> None:
    assert to_item(record) == {k: boto_serializer.serialize(v) for k, v in record.items()}


@given(st.dictionaries(st.text(min_size=1, max_size=12), values, max_size=8))
def test_from_item_decodes_every_attribute_as_boto3_does(record: dict[str, Any]) -> None:
    item = {k: boto_serializer.serialize(v) for k, v in record.items()}
    assert from_item(item) == {k: boto_deserializer.deserialize(v) for k, v in item.items()}


def test_the_direct_paths_keep_types_exact() -> None:
    encoded = to_item({"s": "x", "n": 7, "b": True, "big": 10**38 - 1})
    assert encoded == {"s": {"S": "x"}, "n": {"N": "7"}, "b": {"BOOL": True}, "big": {"N": str(10**38 - 1)}}
    decoded = from_item({"n": {"N": "7"}, "s": {"S": "x"}, "bin": {"B": b"\x00"}})
    assert decoded == {"n": Decimal(7), "s": "x", "bin": Binary(b"\x00")}
    assert type(decoded["n"]) is Decimal


def test_an_integer_beyond_dynamodbs_precision_is_refused_as_boto3_refuses_it() -> None:
    with pytest.raises(Inexact):
        to_item({"n": 10**40 + 1})
    with pytest.raises(Inexact):
        boto_serializer.serialize(10**40 + 1)
