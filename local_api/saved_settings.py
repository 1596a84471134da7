"""Parameters, secrets and KMS keys in the saved state.

- **Parameters** (every one in the emulated account): a value the template gave is not restored (this run's
  template and variables, ``RATE_LIMIT_PER_MINUTE=5 make run`` say what it is now); a value someone changed
  (``aws ssm put-parameter``) or a parameter someone added is.
- **Secrets** (every one): their values, the API keys' secret among them (every key ``ops keys create``
  made, the cursor-signing key).
- **KMS keys** (customer symmetric keys, with their aliases): their id and key material, so that what was
  encrypted before the restart (webhook secrets) decrypts after it. No KMS API recreates a key with a given
  id and material, so this part reads and writes moto's KMS backend in this process, as
  ``local_api.moto_atomic`` patches moto's DynamoDB: it works for the embedded emulator only, the one case
  where state is kept at all.
"""

from __future__ import annotations

import base64
from typing import Any

from local_api.cfn_template import Stack
from local_api.state_store import UnreadableState


# ---------------------------------------------------------------------------------------------- parameters
def snapshot_parameters(ssm: Any, stack: Stack) -> list[dict[str, Any]]:
    template = {p["Name"]: str(p["Value"]) for p in map(stack.properties, stack.of_type("AWS::SSM::Parameter"))}
    names = [p["Name"] for page in ssm.get_paginator("describe_parameters").paginate() for p in page["Parameters"]]
    saved = []
    for start in range(0, len(names), 10):  # GetParameters takes ten names at most
        for parameter in ssm.get_parameters(Names=names[start : start + 10], WithDecryption=True)["Parameters"]:
            name = parameter["Name"]
            saved.append(
                {"name": name, "type": parameter["Type"], "value": parameter["Value"], "template": template.get(name)}
            )
    return sorted(saved, key=lambda p: str(p["name"]))


def changed_parameters(saved: Any) -> list[dict[str, Any]]:
    """The saved parameters to write back: those whose value is not the one the template gave."""
    if not isinstance(saved, list) or not all(
        isinstance(p, dict) and isinstance(p.get("name"), str) and isinstance(p.get("value"), str) for p in saved
    ):
        raise UnreadableState('"parameters" is not a list of names and values')
    return [p for p in saved if p["value"] != p.get("template")]


def restore_parameters(ssm: Any, saved: list[dict[str, Any]]) -> int:
    changed = changed_parameters(saved)
    for parameter in changed:
        ssm.put_parameter(
            Name=parameter["name"], Value=parameter["value"], Type=parameter.get("type", "String"), Overwrite=True
        )
    return len(changed)


# ------------------------------------------------------------------------------------------------- secrets
def snapshot_secrets(secretsmanager: Any) -> list[dict[str, Any]]:
    saved = []
    for page in secretsmanager.get_paginator("list_secrets").paginate():
        for secret in page["SecretList"]:
            if secret.get("DeletedDate"):
                continue
            value = secretsmanager.get_secret_value(SecretId=secret["Name"])
            entry: dict[str, Any] = {"name": secret["Name"]}
            if "SecretString" in value:
                entry["string"] = value["SecretString"]
            else:
                entry["binary"] = base64.b64encode(value["SecretBinary"]).decode("ascii")
            saved.append(entry)
    return sorted(saved, key=lambda s: str(s["name"]))


def check_secrets(saved: Any) -> None:
    if not isinstance(saved, list) or not all(
        isinstance(s, dict) and isinstance(s.get("name"), str) and isinstance(s.get("string", s.get("binary")), str)
        for s in saved
    ):
        raise UnreadableState('"secrets" is not a list of names and values')


def restore_secrets(secretsmanager: Any, saved: list[dict[str, Any]]) -> int:
    pages = secretsmanager.get_paginator("list_secrets").paginate()
    existing = {s["Name"] for page in pages for s in page["SecretList"]}
    for secret in saved:
        value = {"SecretString": secret["string"]} if "string" in secret else {}
        if "binary" in secret:
            value = {"SecretBinary": base64.b64decode(secret["binary"])}
        if secret["name"] in existing:
            secretsmanager.put_secret_value(SecretId=secret["name"], **value)
        else:
            secretsmanager.create_secret(Name=secret["name"], **value)
    return len(saved)


# ------------------------------------------------------------------------------------------------ KMS keys
def _kms_backend(stack: Stack) -> Any:
    from moto.kms.models import kms_backends

    return kms_backends[stack.account_id][stack.region]


def snapshot_kms_keys(stack: Stack) -> list[dict[str, Any]]:
    saved = []
    for key in list(_kms_backend(stack).keys.values()):
        if key.key_manager != "CUSTOMER" or key.key_spec != "SYMMETRIC_DEFAULT" or key.key_state != "Enabled":
            continue
        saved.append(
            {
                "key_id": key.id,
                "usage": key.key_usage,
                "description": key.description,
                "aliases": sorted(key.aliases),
                "material": base64.b64encode(key.key_material).decode("ascii"),
            }
        )
    return sorted(saved, key=lambda k: str(k["key_id"]))


def check_kms_keys(saved: Any) -> None:
    if not isinstance(saved, list):
        raise UnreadableState('"kms_keys" is not a list')
    for key in saved:
        try:
            material = base64.b64decode(key["material"], validate=True)
            valid = isinstance(key["key_id"], str) and isinstance(key["aliases"], list) and len(material) == 32
        except (KeyError, TypeError, ValueError):
            valid = False
        if not valid:
            raise UnreadableState("a KMS key without an id, aliases or 256 bits of key material")


def restore_kms_keys(stack: Stack, saved: list[dict[str, Any]]) -> int:
    """Each saved key back under its own id and material; its aliases point at it again (away from the key
    provisioning just made for them, which nothing has used)."""
    backend = _kms_backend(stack)
    for entry in saved:
        key = backend.keys.get(entry["key_id"])
        if key is None:
            usage = entry.get("usage") or "ENCRYPT_DECRYPT"
            key = backend.create_key(None, usage, "", entry.get("description", ""), None)
            backend.keys.pop(key.id)
            key.id = entry["key_id"]
            key.arn = f"arn:aws:kms:{stack.region}:{stack.account_id}:key/{key.id}"
            backend.keys[key.id] = key
        key.key_material = base64.b64decode(entry["material"])
        for alias in entry["aliases"]:
            if backend.alias_exists(alias):
                backend.update_alias(key.id, alias)
            else:
                backend.create_alias(key.id, alias)
    return len(saved)
