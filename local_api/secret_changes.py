"""A secret changed in the embedded emulator is read again by the local Lambda at once (development only).

The Lambda caches Secrets Manager values for five minutes (``utils.secrets``): deployed, a key made with
``python -m ops keys create`` works within five minutes, and that stays so. Locally the emulator runs in
this process, so every write to a secret (``ops keys create|revoke --local``, a restore of saved state)
empties the Lambda's cache of secrets as it returns: the next request reads the new value. Exact and free
(nothing is read per request), unlike a short cache, which would cost a Secrets Manager call on every
request (7.7 ms each on the development machine) and still refuse a key used the instant it was made.
Like ``local_api.moto_atomic``, this wraps moto's backend methods; with ``AWS_ENDPOINT_URL`` pointing at
an emulator of your own it has nothing to wrap, and the five minutes apply.
"""

from __future__ import annotations

import functools
from typing import Any

#: Every ``SecretsManagerBackend`` method that changes a secret's value or existence.
_WRITES = (
    "create_secret",
    "put_secret_value",
    "update_secret",
    "delete_secret",
    "restore_secret",
    "rotate_secret",
    "update_secret_version_stage",
)
#: The methods as moto defines them, while ``install`` has replaced them (``uninstall`` puts them back).
_originals: dict[str, Any] = {}


def install() -> None:
    """Idempotently make the emulator's secret writes empty the Lambda's secrets cache."""
    if _originals:
        return
    from moto.secretsmanager.models import SecretsManagerBackend

    for name in _WRITES:
        original = _originals[name] = getattr(SecretsManagerBackend, name)

        @functools.wraps(original)
        def forgetting(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            try:
                return __original(self, *args, **kwargs)
            finally:  # after the write: a read racing it cannot put the old value back for long
                forget_cached_secrets()

        setattr(SecretsManagerBackend, name, forgetting)


def uninstall() -> None:
    """moto's own methods again (tests of the deployed five-minute cache share the process)."""
    from moto.secretsmanager.models import SecretsManagerBackend

    for name, original in _originals.items():
        setattr(SecretsManagerBackend, name, original)
    _originals.clear()


def forget_cached_secrets() -> None:
    from utils import secrets

    secrets.get_store().invalidate()
