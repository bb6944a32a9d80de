"""Read ``template.yaml`` and evaluate its intrinsic functions against local values.

Finding the template (``$PAGEDROP_TEMPLATE``, the checkout, the package data), parsing it
with CloudFormation's short tags (``!Ref``, ``!GetAtt``, ``!Sub``...), taking parameter
defaults, and resolving ``Ref``, ``Fn::GetAtt``, ``Fn::Sub`` and the other functions the
template uses. ``handler.local.resources`` turns the result into boto3 calls.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources as importlib_resources
from pathlib import Path
from typing import Any

import yaml

TEMPLATE_ENV = "PAGEDROP_TEMPLATE"
TEMPLATE_NAME = "template.yaml"


class TemplateError(ValueError):
    """template.yaml lacks something the local stack needs, or uses what it cannot resolve."""


# --------------------------------------------------------------------------------------------
# Finding and reading the template
# --------------------------------------------------------------------------------------------


def find_template() -> Path:
    """The template to build from: ``$PAGEDROP_TEMPLATE``, the checkout's root, package data.

    The package ships ``handler/resources/template.yaml``, a copy of the root template kept
    identical by a unit test, so an installed package finds it too.
    """
    override = os.environ.get(TEMPLATE_ENV)
    if override:
        path = Path(override)
        if not path.is_file():
            raise FileNotFoundError(f"{TEMPLATE_ENV}={override} is not a file")
        return path
    checkout = Path(__file__).resolve().parents[2] / TEMPLATE_NAME
    if checkout.is_file():
        return checkout
    packaged = importlib_resources.files("handler").joinpath("resources", TEMPLATE_NAME)
    with importlib_resources.as_file(packaged) as path:
        if path.is_file():
            return Path(path)
    raise FileNotFoundError(
        f"{TEMPLATE_NAME} not found: set {TEMPLATE_ENV}, run from a checkout, "
        "or install the package with its data"
    )


class CfnLoader(yaml.SafeLoader):
    """A safe YAML loader that reads CloudFormation's short tags into their long forms.

    ``!Ref X`` -> ``{"Ref": "X"}``, ``!GetAtt A.B`` -> ``{"Fn::GetAtt": ["A", "B"]}``,
    ``!Condition C`` -> ``{"Condition": "C"}``, any other ``!Name v`` -> ``{"Fn::Name": v}``.
    Dates stay strings (``AWSTemplateFormatVersion: 2010-09-09`` is not a date to CFN).
    """


def _construct_short_tag(loader: CfnLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:  # pragma: no cover - yaml has no other node kinds
        raise yaml.constructor.ConstructorError(None, None, f"bad node {node!r}", node.start_mark)
    if tag_suffix in {"Ref", "Condition"}:
        return {tag_suffix: value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    return {f"Fn::{tag_suffix}": value}


CfnLoader.add_multi_constructor("!", _construct_short_tag)
# The class's own resolver table (as yaml.add_implicit_resolver makes), without timestamps.
CfnLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load_template(path: Path | None = None) -> dict[str, Any]:
    """Parse the template (``find_template()`` when no path is given) into plain dicts."""
    path = path or find_template()
    with path.open(encoding="utf-8") as stream:
        template = yaml.load(stream, Loader=CfnLoader)  # a SafeLoader subclass
    if not isinstance(template, dict) or not isinstance(template.get("Resources"), dict):
        raise TemplateError(f"{path}: not a CloudFormation template (no Resources)")
    return template


def parameter_defaults(template: Mapping[str, Any]) -> dict[str, Any]:
    """Each parameter's default; parameters without one are left out.

    Only the deployed compute resources use parameters without a default (the worker image,
    the VPC and subnets); a local resource that named one would fail to resolve
    (``Resolver`` raises :class:`TemplateError` for an unknown ``Ref``).
    """
    return {
        name: spec["Default"]
        for name, spec in (template.get("Parameters") or {}).items()
        if "Default" in spec
    }


def resource_properties(
    template: Mapping[str, Any], logical_id: str, resource_type: str
) -> dict[str, Any]:
    """The unresolved ``Properties`` of resource ``logical_id``, which must be a ``resource_type``.

    ``{}`` when the resource declares no properties.
    """
    resource = template["Resources"].get(logical_id)
    if not resource or resource.get("Type") != resource_type:
        raise TemplateError(f"template has no {resource_type} named {logical_id}")
    return resource.get("Properties") or {}


# --------------------------------------------------------------------------------------------
# Resolving intrinsic functions against local values
# --------------------------------------------------------------------------------------------

_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")
_NO_VALUE = object()  # AWS::NoValue: the property or list item is removed
_CONDITION_FUNCTIONS = {"Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or", "Condition"}


def pseudo_parameters(
    *, region: str, account_id: str, partition: str, stack_name: str
) -> dict[str, Any]:
    """The ``AWS::*`` pseudo parameters that ``Ref`` resolves, ``AWS::NoValue`` included."""
    return {
        "AWS::Region": region,
        "AWS::AccountId": account_id,
        "AWS::Partition": partition,
        "AWS::StackName": stack_name,
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::NoValue": _NO_VALUE,
    }


@dataclass
class Resolver:
    """Evaluates intrinsic functions with what ``Ref``, ``Fn::GetAtt`` and conditions mean locally.

    ``refs`` maps what ``Ref`` names (parameters, pseudo parameters, resources) to values,
    ``attributes`` maps (logical id, attribute) to what ``Fn::GetAtt`` gives, ``conditions``
    is the template's ``Conditions``. Naming anything missing from them is a ``TemplateError``.
    """

    refs: dict[str, Any]
    conditions: Mapping[str, Any]
    attributes: dict[tuple[str, str], Any] = field(default_factory=dict)

    def add_resource(self, logical_id: str, ref: Any, **attributes: Any) -> None:
        """Make a created resource known: what ``Ref`` gives and its ``Fn::GetAtt`` values."""
        self.refs[logical_id] = ref
        self.attributes.update({(logical_id, name): value for name, value in attributes.items()})

    def resolve(self, node: Any) -> Any:
        """``node`` with its intrinsic functions evaluated (recursively)."""
        return _resolve(node, self)


def _resolve(node: Any, resolver: Resolver) -> Any:
    if isinstance(node, list):
        items = (_resolve(item, resolver) for item in node)
        return [item for item in items if item is not _NO_VALUE]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((key, arg),) = node.items()
        if key == "Ref":
            if arg not in resolver.refs:
                raise TemplateError(f"cannot resolve Ref {arg!r} locally")
            return resolver.refs[arg]
        if key == "Fn::GetAtt":
            resource, attribute = arg if isinstance(arg, list) else str(arg).split(".", 1)
            if (resource, attribute) not in resolver.attributes:
                raise TemplateError(f"cannot resolve Fn::GetAtt {resource}.{attribute} locally")
            return resolver.attributes[(resource, attribute)]
        if key == "Fn::Sub":
            return _sub(arg, resolver)
        if key == "Fn::Join":
            separator, items = arg
            return str(separator).join(str(item) for item in _resolve(items, resolver))
        if key == "Fn::Select":
            index, items = _resolve(arg, resolver)
            return items[int(index)]
        if key == "Fn::Split":
            separator, text = _resolve(arg, resolver)
            return str(text).split(separator)
        if key == "Fn::If":
            condition, when_true, when_false = arg
            return _resolve(when_true if _condition(condition, resolver) else when_false, resolver)
        if key in _CONDITION_FUNCTIONS:
            return _condition_value(key, arg, resolver)
        if key == "Fn::ToJsonString":
            return json.dumps(_resolve(arg, resolver), separators=(",", ":"))
        if key == "Fn::Base64":
            return base64.b64encode(str(_resolve(arg, resolver)).encode()).decode("ascii")
        if key.startswith("Fn::"):
            raise TemplateError(f"{key} is not supported by the local stack")
    resolved = {key: _resolve(value, resolver) for key, value in node.items()}
    return {key: value for key, value in resolved.items() if value is not _NO_VALUE}


def _sub(arg: Any, resolver: Resolver) -> str:
    if isinstance(arg, list):
        text, variables = arg[0], {k: _resolve(v, resolver) for k, v in arg[1].items()}
    else:
        text, variables = arg, {}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1).strip()
        if name in variables:
            return str(variables[name])
        if "." in name and not name.startswith("AWS::"):
            resource, attribute = name.split(".", 1)
            return str(_resolve({"Fn::GetAtt": [resource, attribute]}, resolver))
        return str(_resolve({"Ref": name}, resolver))

    return _SUB_VARIABLE.sub(replace, text).replace("${!", "${")


def _condition(name: str, resolver: Resolver) -> bool:
    if name not in resolver.conditions:
        raise TemplateError(f"unknown condition {name!r}")
    return bool(_resolve(resolver.conditions[name], resolver))


def _condition_value(key: str, arg: Any, resolver: Resolver) -> bool:
    if key == "Condition":
        return _condition(arg, resolver)
    if key == "Fn::Equals":
        left, right = _resolve(arg, resolver)
        return str(left) == str(right)
    if key == "Fn::Not":
        return not _resolve(arg[0], resolver)
    values = [bool(_resolve(item, resolver)) for item in arg]
    return all(values) if key == "Fn::And" else any(values)


# --------------------------------------------------------------------------------------------
# Reading the whole template offline (checks and tests)
# --------------------------------------------------------------------------------------------

# Properties that give a resource its name, which is what ``Ref`` returns for these types.
_NAME_PROPERTIES = {
    "AWS::S3::Bucket": "BucketName",
    "AWS::Logs::LogGroup": "LogGroupName",
    "AWS::AutoScaling::AutoScalingGroup": "AutoScalingGroupName",
}


def offline_resolver(
    template: Mapping[str, Any],
    parameters: Mapping[str, Any] | None = None,
    *,
    region: str = "us-east-1",
    account_id: str = "123456789012",
    stack_name: str = "pagedrop",
) -> Resolver:
    """A resolver for any part of the template, with nothing created.

    Parameters take ``parameters``, else their defaults. A resource's ``Ref`` is its declared
    name where it has one (bucket, log group, Auto Scaling group), else ``<LogicalId>-ref``;
    every ``Fn::GetAtt`` the template uses is a placeholder ARN ending in
    ``<LogicalId>.<Attribute>``. Enough to read policies, user data and environments as
    CloudFormation would produce them.
    """
    values = {**parameter_defaults(template), **(parameters or {})}
    pseudo = pseudo_parameters(
        region=region, account_id=account_id, partition="aws", stack_name=stack_name
    )
    resolver = Resolver(refs={**values, **pseudo}, conditions=template.get("Conditions") or {})
    resources = template["Resources"]
    for logical_id in resources:
        resolver.add_resource(logical_id, f"{logical_id}-ref")
    for logical_id, attribute in sorted(_attributes_named(resources)):
        resolver.attributes[(logical_id, attribute)] = (
            f"arn:aws:placeholder:{region}:{account_id}:{logical_id}.{attribute}"
        )
    for logical_id, resource in resources.items():
        name_property = _NAME_PROPERTIES.get(resource.get("Type", ""))
        name = (resource.get("Properties") or {}).get(name_property or "")
        if name:
            resolver.refs[logical_id] = resolver.resolve(name)
    return resolver


def _attributes_named(node: Any) -> set[tuple[str, str]]:
    """Every (logical id, attribute) that ``Fn::GetAtt`` or ``${Id.Attribute}`` names."""
    found: set[tuple[str, str]] = set()
    if isinstance(node, list):
        for item in node:
            found |= _attributes_named(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Fn::GetAtt":
                resource, attribute = value if isinstance(value, list) else value.split(".", 1)
                found.add((str(resource), str(attribute)))
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                for name in _SUB_VARIABLE.findall(str(text)):
                    if "." in name and not name.startswith("AWS::"):
                        resource, attribute = name.strip().split(".", 1)
                        found.add((resource, attribute))
                if isinstance(value, list):
                    found |= _attributes_named(value[1])
            else:
                found |= _attributes_named(value)
    return found
