"""Read ``template.yaml`` and resolve what the local API and the tests need from it.

The template is the one source of truth for table key schemas, TTLs, bucket names, parameters and the
function's environment. This is a deliberately small resolver: ``Ref``, ``Fn::Sub``, ``Fn::GetAtt``
(to a placeholder ARN), ``Fn::If``/``Fn::Equals``/``Fn::Not``/``Fn::And``/``Fn::Or``, ``Fn::Join``,
``Fn::Split``, ``Fn::FindInMap`` and the pseudo parameters, which is all the template uses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = ROOT / "template.yaml"
LOCAL_ACCOUNT_ID = "123456789012"

_SHORT_FORMS = ("Ref", "Condition")


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

    def __post_init__(self) -> None:
        values = {name: str(spec.get("Default", "")) for name, spec in self.template.get("Parameters", {}).items()}
        values.update(self.parameters)
        self.parameters = values

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return dict(self.template.get("Resources", {}))

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {name: r for name, r in self.resources.items() if r.get("Type") == resource_type}

    def properties(self, logical_id: str) -> dict[str, Any]:
        return dict(self.resolve(self.resources[logical_id].get("Properties", {})))

    def physical_name(self, logical_id: str) -> str:
        """What ``Ref`` returns for a resource, as the local API names it."""
        resource = self.resources[logical_id]
        props = resource.get("Properties", {})
        for key in ("TableName", "BucketName", "Name", "FunctionName", "LogGroupName"):
            if key in props:
                return str(self.resolve(props[key]))
        return logical_id

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
            "AWS::AccountId": LOCAL_ACCOUNT_ID,
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
            return self.physical_name(name)
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
        name = self.physical_name(logical_id)
        if attribute == "Arn":
            kind = self.resources[logical_id]["Type"]
            if kind == "AWS::S3::Bucket":
                return f"arn:aws:s3:::{name}"
            if kind == "AWS::DynamoDB::Table":
                return f"arn:aws:dynamodb:{self.region}:{LOCAL_ACCOUNT_ID}:table/{name}"
        return f"arn:aws:local:{self.region}:{LOCAL_ACCOUNT_ID}:{logical_id}/{attribute}/{name}"

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

    def function_timeout(self, logical_id: str = "ApiFunction") -> int:
        return int(self.resources[logical_id].get("Properties", {}).get("Timeout", 3))
