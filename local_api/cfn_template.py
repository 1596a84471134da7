"""Read ``template.yaml`` and resolve what the local API and the tests need from it.

The template is the one source of truth for table key schemas, TTLs, bucket names, parameters and the
function's environment. This is a deliberately small resolver: ``Ref``, ``Fn::Sub``, ``Fn::GetAtt``
(to a placeholder ARN), ``Fn::If``/``Fn::Equals``/``Fn::Not``/``Fn::And``/``Fn::Or``, ``Fn::Join``,
``Fn::Split``, ``Fn::FindInMap`` and the pseudo parameters, which is all the template uses. ``Ref`` and
``Fn::GetAtt ... .Arn`` return what CloudFormation returns for each resource type (a name, an id or an
ARN); where AWS makes up part of it (a key id, a secret's suffix, a role's generated name), a stable
stand-in derived from the logical id, so that a policy and a request built from the same stack agree.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = ROOT / "template.yaml"
LOCAL_ACCOUNT_ID = "123456789012"

_SHORT_FORMS = ("Ref", "Condition")
_NAME_PROPERTIES = (
    "TableName",
    "BucketName",
    "Name",
    "FunctionName",
    "LogGroupName",
    "TopicName",
    "AliasName",
    "RoleName",
    "ManagedPolicyName",
    "QueueName",
)
_ARN = "arn:aws:{service}:{region}:{account}:"
#: What ``Ref`` returns when it is not the resource's name (CloudFormation's "Return values" of each type).
_REF_FORMS = {
    "AWS::SecretsManager::Secret": _ARN.format(service="secretsmanager", region="{region}", account="{account}")
    + "secret:{name}-{suffix}",
    "AWS::SNS::Topic": _ARN.format(service="sns", region="{region}", account="{account}") + "{name}",
    "AWS::KMS::Key": "{key_id}",
    "AWS::ApiGatewayV2::Api": "{api_id}",
    "AWS::IAM::ManagedPolicy": "arn:aws:iam::{account}:policy/{name}",
    "AWS::IAM::OIDCProvider": "arn:aws:iam::{account}:oidc-provider/{name}",
    "AWS::SQS::Queue": "https://sqs.{region}.amazonaws.com/{account}/{name}",
    "AWS::Events::Rule": "{bus}|{name}",
}
#: What ``Fn::GetAtt X.Arn`` returns, by resource type.
_ARN_FORMS = {
    "AWS::S3::Bucket": "arn:aws:s3:::{name}",
    "AWS::DynamoDB::Table": _ARN.format(service="dynamodb", region="{region}", account="{account}") + "table/{name}",
    "AWS::Logs::LogGroup": _ARN.format(service="logs", region="{region}", account="{account}") + "log-group:{name}:*",
    "AWS::KMS::Key": _ARN.format(service="kms", region="{region}", account="{account}") + "key/{key_id}",
    "AWS::Lambda::Function": _ARN.format(service="lambda", region="{region}", account="{account}") + "function:{name}",
    "AWS::Serverless::Function": _ARN.format(service="lambda", region="{region}", account="{account}")
    + "function:{name}",
    "AWS::IAM::Role": "arn:aws:iam::{account}:role/{name}",
    "AWS::SNS::Topic": _REF_FORMS["AWS::SNS::Topic"],
    "AWS::SecretsManager::Secret": _REF_FORMS["AWS::SecretsManager::Secret"],
    "AWS::SQS::Queue": _ARN.format(service="sqs", region="{region}", account="{account}") + "{name}",
    "AWS::Events::EventBus": _ARN.format(service="events", region="{region}", account="{account}") + "event-bus/{name}",
    "AWS::Events::Rule": _ARN.format(service="events", region="{region}", account="{account}") + "rule/{bus}/{name}",
}
#: ``Fn::GetAtt`` attributes that are the resource's name.
_NAME_ATTRIBUTES = ("Name", "QueueName")
#: A table's stream label: AWS makes it the stream's creation time (a stand-in here).
STREAM_LABEL = "2026-01-01T00:00:00.000"


class _NoValue:
    """``AWS::NoValue``: the property or list item that resolves to it is removed."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


class _CfnLoader(yaml.SafeLoader):  # type: ignore[misc]
    """A YAML loader that turns ``!Sub x`` into ``{"Fn::Sub": x}`` (and ``!Ref`` into ``{"Ref": ...}``)."""


def _construct_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix if suffix in _SHORT_FORMS else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if name == "Fn::GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        document = yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(document, dict):
        raise ValueError(f"{path} is not a CloudFormation template")
    return document


@dataclass
class Stack:
    """The template with parameter values: resolves intrinsic functions to local values."""

    template: dict[str, Any]
    parameters: dict[str, str] = field(default_factory=dict)
    region: str = "us-east-1"
    account_id: str = LOCAL_ACCOUNT_ID

    def __post_init__(self) -> None:
        values = {name: str(spec.get("Default", "")) for name, spec in self.template.get("Parameters", {}).items()}
        values.update(self.parameters)
        self.parameters = values

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return dict(self.template.get("Resources", {}))

    def present(self) -> dict[str, dict[str, Any]]:
        """The resources these parameters create (those whose Condition holds, and those without one)."""
        return {name: r for name, r in self.resources.items() if "Condition" not in r or self.condition(r["Condition"])}

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {name: r for name, r in self.resources.items() if r.get("Type") == resource_type}

    def properties(self, logical_id: str) -> dict[str, Any]:
        return dict(self.resolve(self.resources[logical_id].get("Properties", {})))

    def physical_name(self, logical_id: str) -> str:
        """The resource's name: the one the template gives it, or the one CloudFormation would generate."""
        resource = self.resources[logical_id]
        props = resource.get("Properties", {})
        for key in _NAME_PROPERTIES:
            if key in props:
                return str(self.resolve(props[key]))
        if resource.get("Type") == "AWS::IAM::OIDCProvider":
            return str(self.resolve(props["Url"])).removeprefix("https://")
        # CloudFormation's own: stack name, logical id and a random suffix (64 characters at most).
        return f"{self._Ref('AWS::StackName')}-{logical_id}-{_stand_in(logical_id, 12).upper()}"[:64]

    def ref(self, logical_id: str) -> str:
        """What ``Ref`` returns for a resource (its name, unless its type returns an id or ARN)."""
        resource = self.resources[logical_id]
        if resource.get("Type") == "AWS::Lambda::Alias":  # the alias's ARN: the function's, qualified
            props = self.resolve(resource["Properties"])
            return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{props['FunctionName']}:{props['Name']}"
        form = _REF_FORMS.get(resource.get("Type", ""), "{name}")
        return self._format(form, logical_id)

    def alias(self, function_id: str) -> str:
        """SAM's ``!Ref Function.Alias``: the ARN of the alias ``AutoPublishAlias`` names."""
        name = self.resources[function_id]["Properties"]["AutoPublishAlias"]
        return f"{self.arn(function_id)}:{name}"

    def arn(self, logical_id: str) -> str:
        kind = self.resources[logical_id].get("Type", "")
        if kind not in _ARN_FORMS:
            return f"arn:aws:local:{self.region}:{self.account_id}:{logical_id}/{self.physical_name(logical_id)}"
        return self._format(_ARN_FORMS[kind], logical_id)

    def _format(self, form: str, logical_id: str) -> str:
        key_id = hashlib.sha256(logical_id.encode()).hexdigest()
        props = self.resources[logical_id].get("Properties", {})
        return form.format(
            bus=self.resolve(props.get("EventBusName", "default")),
            name=self.physical_name(logical_id),
            region=self.region,
            account=self.account_id,
            suffix=_stand_in(logical_id, 6),
            key_id=f"{key_id[:8]}-{key_id[8:12]}-{key_id[12:16]}-{key_id[16:20]}-{key_id[20:32]}",
            api_id=_stand_in(logical_id, 10).lower(),
        )

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template.get("Conditions", {})[name]))

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [r for r in (self.resolve(v) for v in value) if r is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key in ("Ref", "Condition") or key.startswith("Fn::"):
                resolver = getattr(self, "_" + key.replace("Fn::", "fn_"), None)
                if resolver is not None:
                    return resolver(arg)
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    # Intrinsic functions -------------------------------------------------------------------------
    def _Ref(self, name: str) -> Any:  # noqa: N802 - CloudFormation's spelling
        pseudo: dict[str, Any] = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": f"location-detection-{self.parameters.get('Environment', 'dev')}",
            "AWS::NoValue": NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.resources:
            return self.ref(name)
        if name.endswith(".Alias") and name.removesuffix(".Alias") in self.resources:
            return self.alias(name.removesuffix(".Alias"))
        raise KeyError(f"unresolvable Ref: {name}")

    def _Condition(self, name: str) -> bool:  # noqa: N802
        return self.condition(name)

    def _fn_Sub(self, arg: Any) -> str:  # noqa: N802
        text, local = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def substitute(found: re.Match[str]) -> str:
            name = found.group(1)
            if name in local:
                return str(local[name])
            if "." in name:
                return str(self._fn_GetAtt(name.split(".", 1)))
            return str(self._Ref(name))

        return re.sub(r"\$\{([^}!]+)\}", substitute, text)

    def _fn_GetAtt(self, arg: list[str]) -> str:  # noqa: N802
        logical_id, attribute = arg
        if attribute == "Arn":
            return self.arn(logical_id)
        if attribute in _NAME_ATTRIBUTES:
            return self.physical_name(logical_id)
        if attribute == "StreamArn":
            return f"{self.arn(logical_id)}/stream/{STREAM_LABEL}"
        return (
            f"arn:aws:local:{self.region}:{self.account_id}:{logical_id}/{attribute}/{self.physical_name(logical_id)}"
        )

    def _fn_If(self, arg: list[Any]) -> Any:  # noqa: N802
        name, when_true, when_false = arg
        return self.resolve(when_true if self.condition(name) else when_false)

    def _fn_Equals(self, arg: list[Any]) -> bool:  # noqa: N802
        left, right = (self.resolve(v) for v in arg)
        return bool(str(left) == str(right))

    def _fn_Not(self, arg: list[Any]) -> bool:  # noqa: N802
        return not self.resolve(arg[0])

    def _fn_And(self, arg: list[Any]) -> bool:  # noqa: N802
        return all(self.resolve(v) for v in arg)

    def _fn_Or(self, arg: list[Any]) -> bool:  # noqa: N802
        return any(self.resolve(v) for v in arg)

    def _fn_Split(self, arg: list[Any]) -> list[str]:  # noqa: N802
        separator, text = arg
        return str(self.resolve(text)).split(str(separator))

    def _fn_FindInMap(self, arg: list[Any]) -> Any:  # noqa: N802
        mapping, top, second = (str(self.resolve(v)) for v in arg)
        try:
            return self.template["Mappings"][mapping][top][second]
        except KeyError:
            raise KeyError(f"unresolvable Fn::FindInMap: {mapping}/{top}/{second}") from None

    def _fn_Join(self, arg: list[Any]) -> str:  # noqa: N802
        separator, items = arg
        return str(separator).join(str(v) for v in self.resolve(items))

    # What the local API and tests need ---------------------------------------------------------------
    def function_environment(self, logical_id: str = "ApiFunction") -> dict[str, str]:
        props = self.resources[logical_id].get("Properties", {})
        variables = self.resolve(props.get("Environment", {}).get("Variables", {}))
        return {k: str(v) for k, v in variables.items()}

    def process_environment(self) -> dict[str, str]:
        """Every function's environment as one process's, where one process stands for all of them (``make
        run``, the tests, the operator CLI): the API's, plus what the workers add. ``PER_FUNCTION`` names
        describe a function rather than a resource it uses and keep the API's value (its default when it
        sets none); any other name two functions give different values is a clash, refused."""
        merged = self.function_environment("ApiFunction")
        api_names = set(merged)
        for function in self.of_type("AWS::Serverless::Function"):
            for key, value in self.function_environment(function).items():
                if key in PER_FUNCTION and key not in api_names:
                    continue
                if merged.setdefault(key, value) != value and key not in PER_FUNCTION:
                    raise ValueError(f"{function} and another function give {key} different values")
        return merged

    def function_timeout(self, logical_id: str = "ApiFunction") -> int:
        return int(self.resources[logical_id].get("Properties", {}).get("Timeout", 3))


#: Settings of one function itself (its metrics' dimensions), not names of what it uses: the sweep's
#: ``METRICS_SERVICE=sweep`` must not become the API's when one process runs both.
PER_FUNCTION = frozenset({"METRICS_SERVICE", "METRICS_NAMESPACE"})


def _stand_in(seed: str, length: int) -> str:
    """A stable stand-in for the random part AWS puts in an id or a generated name."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789"
    digest = hashlib.sha256(seed.encode()).digest()
    return "".join(alphabet[b % len(alphabet)] for b in digest[:length])
