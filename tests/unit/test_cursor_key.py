"""The cursor-signing key: the secret's own; a derived one only outside prod; prod fails closed."""

from __future__ import annotations

import pytest

from api.dependencies import Dependencies
from services.auth import Authenticator, CursorKeyMissing, cursor_signing_key, has_cursor_key
from tests.factories import make_settings

KEY = "k" * 64


def test_the_secrets_key_signs() -> None:
    assert cursor_signing_key({"cursor_signing_key": KEY}, "dev:name") == KEY.encode()
    assert has_cursor_key({"cursor_signing_key": KEY})


@pytest.mark.parametrize(
    "secret", [{}, {"cursor_signing_key": ""}, {"cursor_signing_key": "short"}, {"cursor_signing_key": 7}]
)
def test_without_a_usable_key_dev_derives_one_and_prod_fails_closed(secret: dict[str, object]) -> None:
    assert not has_cursor_key(secret)
    derived = cursor_signing_key(secret, "dev:location-detection/dev/api-keys")
    assert derived == cursor_signing_key(secret, "dev:location-detection/dev/api-keys"), "stable across containers"
    with pytest.raises(CursorKeyMissing):
        cursor_signing_key(secret, None)


@pytest.mark.parametrize(("environment", "fails"), [("dev", False), ("prod", True)])
def test_the_dependencies_give_prod_no_fallback(environment: str, fails: bool) -> None:
    deps = Dependencies(make_settings(environment=environment))
    deps.auth = Authenticator(lambda: {"keys": {}}, deps.auth.cursor_fallback)
    if fails:
        with pytest.raises(CursorKeyMissing):
            deps.auth.cursor_key()
    else:
        assert len(deps.auth.cursor_key()) == 32
