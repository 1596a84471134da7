"""Webhook secrets, encrypted by the application with the stack's own KMS key (every KMS call).

The table's encryption protects a stolen disk, not a stolen read: anyone who may read the jobs table (an
operator, a backup, a bug that logs an item) would see the secrets. So each secret is encrypted with
``Encrypt`` under a customer managed key before it is stored, with an encryption context that binds it
to its owner and webhook: a ciphertext copied onto another webhook does not decrypt, IAM can require the
context (the roles' ``kms:EncryptionContext:purpose`` condition), and CloudTrail records every use with
it. The API may only encrypt, the delivery worker only decrypt.
"""

from __future__ import annotations

from typing import ClassVar

from botocore.exceptions import ClientError

from storage.base import ResourceBound, error_code
from storage.webhook_store import webhooks_key
from utils import retry

#: The encryption context's ``purpose``: the roles' conditions name it.
PURPOSE = "location-detection-webhook-secret"


class SecretUnreadable(Exception):
    """KMS refused to decrypt (wrong context, a disabled or deleted key, no permission)."""


def context_of(owner_id: str, webhook_id: str) -> dict[str, str]:
    """The encryption context of one webhook's secret: the owner as the key of their webhooks' item (a
    hash: CloudTrail records the context), and the webhook's id."""
    return {"purpose": PURPOSE, "owner": webhooks_key(owner_id), "webhook_id": webhook_id}


class SecretBox(ResourceBound):
    """Encrypts and decrypts with the key (or alias) ``name``."""

    service: ClassVar[str] = "kms"

    @property
    def key_id(self) -> str:
        return self._name

    def seal(self, owner_id: str, webhook_id: str, plaintext: bytes) -> bytes:
        context = context_of(owner_id, webhook_id)
        response = retry.call(
            "kms.encrypt",
            lambda: self.client.encrypt(KeyId=self.key_id, Plaintext=plaintext, EncryptionContext=context),
        )
        return bytes(response["CiphertextBlob"])

    def open(self, owner_id: str, webhook_id: str, ciphertext: bytes) -> bytes:
        context = context_of(owner_id, webhook_id)
        try:
            response = retry.call(
                "kms.decrypt",
                lambda: self.client.decrypt(KeyId=self.key_id, CiphertextBlob=ciphertext, EncryptionContext=context),
            )
        except ClientError as exc:
            raise SecretUnreadable(error_code(exc)) from exc
        return bytes(response["Plaintext"])
