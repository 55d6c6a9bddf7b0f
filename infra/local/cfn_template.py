"""Reads template.yaml the way CloudFormation and SAM would, as far as the local stack needs it.

- `load_template(path)`: parses YAML with CloudFormation's short tags (`!Ref`, `!GetAtt`, `!Sub`, `!If`, ...) into
  the long JSON form (`{"Ref": ...}`, `{"Fn::GetAtt": [...]}`), which is what every other piece works on.
- `Template.functions()`: the `AWS::Serverless::Function`s with SAM's `Globals` merged in, as SAM merges them.
- `Resolver`: evaluates intrinsic functions against known parameter values and already-created resources.

It is deliberately not a CloudFormation engine: it knows the intrinsics and attributes that our template uses and
fails loudly, naming the place, when it meets one it does not know, instead of guessing a value.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

SERVERLESS_FUNCTION = "AWS::Serverless::Function"


class TemplateError(Exception):
    """The template uses something the local stack cannot reproduce, or a value it needs is missing."""


# --- YAML with CloudFormation short tags ------------------------------------------------------------------------


class _CfnLoader(yaml.SafeLoader):
    """A safe YAML loader that turns `!Tag value` into CloudFormation's long form."""


def _construct_short_tag(loader: _CfnLoader, tag_suffix: str, node: yaml.Node) -> dict:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix in ("Ref", "Condition"):
        return {tag_suffix: value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        # `!GetAtt Res.Attr.Sub` names attribute "Attr.Sub" of "Res".
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


_CfnLoader.add_multi_constructor("!", _construct_short_tag)
# CloudFormation reads unquoted dates as strings, not as datetime objects.
_CfnLoader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)


def parse_yaml(text: str) -> dict:
    document = yaml.load(text, Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass
    if not isinstance(document, dict):
        raise TemplateError("the template is not a YAML mapping")
    return document


# --- The template and its SAM functions ---------------------------------------------------------------------------


def _is_intrinsic(value: Any) -> bool:
    if not (isinstance(value, dict) and len(value) == 1):
        return False
    key = next(iter(value))
    return key in ("Ref", "Condition") or key.startswith("Fn::")


def merge_globals(global_value: Any, own_value: Any) -> Any:
    """SAM's Globals rule: maps merge key by key, lists are concatenated (globals first), anything else (scalars,
    intrinsic functions) is taken from the resource itself."""
    if isinstance(global_value, dict) and isinstance(own_value, dict):
        if _is_intrinsic(global_value) or _is_intrinsic(own_value):
            return copy.deepcopy(own_value)
        merged = copy.deepcopy(global_value)
        for key, value in own_value.items():
            merged[key] = merge_globals(merged[key], value) if key in merged else copy.deepcopy(value)
        return merged
    if isinstance(global_value, list) and isinstance(own_value, list):
        return copy.deepcopy(global_value) + copy.deepcopy(own_value)
    return copy.deepcopy(own_value)


@dataclass(frozen=True)
class Function:
    """A SAM function with Globals applied."""

    logical_id: str
    properties: dict
    metadata: dict
    condition: str | None = None

    @property
    def binary(self) -> str | None:
        """The cargo binary that `rust-cargolambda` builds for this function (what cargo lambda watch serves)."""
        return (self.metadata.get("BuildProperties") or {}).get("Binary")

    @property
    def environment(self) -> dict:
        return ((self.properties.get("Environment") or {}).get("Variables")) or {}

    @property
    def events(self) -> dict:
        return self.properties.get("Events") or {}

    def events_of_type(self, *types: str) -> list[tuple[str, dict]]:
        return [
            (name, event.get("Properties") or {})
            for name, event in self.events.items()
            if event.get("Type") in types
        ]

    def require_binary(self) -> str:
        if not self.binary:
            raise TemplateError(
                f"function {self.logical_id} has no Metadata.BuildProperties.Binary: the local stack cannot tell "
                "which cargo binary runs it"
            )
        return self.binary


@dataclass
class Template:
    path: Path
    document: dict

    @property
    def parameters(self) -> dict:
        return self.document.get("Parameters") or {}

    @property
    def resources(self) -> dict:
        return self.document.get("Resources") or {}

    def resources_of_type(self, resource_type: str) -> list[tuple[str, dict]]:
        return [
            (logical_id, resource)
            for logical_id, resource in self.resources.items()
            if resource.get("Type") == resource_type
        ]

    def functions(self) -> list[Function]:
        function_globals = (self.document.get("Globals") or {}).get("Function") or {}
        return [
            Function(
                logical_id=logical_id,
                properties=merge_globals(function_globals, resource.get("Properties") or {}),
                metadata=resource.get("Metadata") or {},
                condition=resource.get("Condition"),
            )
            for logical_id, resource in self.resources_of_type(SERVERLESS_FUNCTION)
        ]


def load_template(path: str | Path) -> Template:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise TemplateError(f"cannot read the template {path}: {error}") from error
    return Template(path=path, document=parse_yaml(text))


# --- Intrinsic functions -----------------------------------------------------------------------------------------


class _NoValue:
    """`!Ref AWS::NoValue`: the property disappears."""


NO_VALUE = _NoValue()


@dataclass
class Resolver:
    """Evaluates intrinsic functions.

    `resources` maps a logical id to what CloudFormation would answer for it: key "Ref" for `!Ref`, and each
    attribute name for `!GetAtt` (for example {"Ref": queue_url, "Arn": ..., "QueueName": ...}).
    """

    template: Template
    parameters: dict[str, str] = field(default_factory=dict)
    resources: dict[str, dict[str, str]] = field(default_factory=dict)
    region: str = "us-east-1"
    account_id: str = "123456789012"
    stack_name: str = "tour-booking-local"

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict):
            if len(value) == 1:
                key, argument = next(iter(value.items()))
                handler = _INTRINSICS.get(key)
                if handler is not None:
                    return handler(self, argument)
                if key.startswith("Fn::"):
                    raise TemplateError(f"{key} cannot be evaluated locally")
            resolved = {key: self.resolve(item) for key, item in value.items()}
            return {key: item for key, item in resolved.items() if item is not NO_VALUE}
        if isinstance(value, list):
            return [item for item in (self.resolve(item) for item in value) if item is not NO_VALUE]
        return value

    def resolve_string(self, value: Any, where: str) -> str:
        """Resolves a value that must end up a string, as Lambda environment variables do."""
        resolved = self.resolve(value)
        if isinstance(resolved, bool):
            return "true" if resolved else "false"
        if isinstance(resolved, (str, int, float)):
            return str(resolved)
        raise TemplateError(f"{where} resolves to {resolved!r}, not to a string")

    def condition_holds(self, name: str | None) -> bool:
        if name is None:
            return True
        conditions = self.template.document.get("Conditions") or {}
        if name not in conditions:
            raise TemplateError(f"unknown condition {name}")
        return bool(self.resolve(conditions[name]))

    # Each handler takes the argument of one intrinsic function.

    def _ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": self.stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{self.region}:{self.account_id}:stack/{self.stack_name}/local",
            "AWS::NotificationARNs": [],
        }
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in pseudo:
            return pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.template.parameters:
            declared = self.template.parameters[name]
            if "Default" not in declared:
                raise TemplateError(f"parameter {name} has no default and no value was given")
            default = declared["Default"]
            if declared.get("Type") == "CommaDelimitedList" and isinstance(default, str):
                return [item.strip() for item in default.split(",")]
            return str(default) if isinstance(default, (int, float)) else default
        return self._attribute(name, "Ref")

    def _get_att(self, argument: Any) -> Any:
        if isinstance(argument, str):
            argument = argument.split(".", 1)
        logical_id, attribute = self.resolve(argument)
        return self._attribute(logical_id, attribute)

    def _attribute(self, logical_id: str, attribute: str) -> str:
        if logical_id not in self.resources:
            known = "a parameter or a resource" if attribute == "Ref" else "a resource"
            raise TemplateError(f"{logical_id} is not {known} that the local stack has created")
        values = self.resources[logical_id]
        if attribute not in values:
            what = "!Ref" if attribute == "Ref" else f"!GetAtt {logical_id}.{attribute}"
            raise TemplateError(f"the local stack has no value for {what}")
        return values[attribute]

    def _sub(self, argument: Any) -> str:
        if isinstance(argument, list):
            text, variables = argument[0], self.resolve(argument[1])
        else:
            text, variables = argument, {}

        def replace(match: re.Match) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(variables[name])
            if "." in name and not name.startswith("AWS::"):
                return str(self._attribute(*name.split(".", 1)))
            return str(self._ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, text)

    def _join(self, argument: list) -> str:
        delimiter, items = argument
        return delimiter.join(str(item) for item in self.resolve(items))

    def _select(self, argument: list) -> Any:
        index, items = self.resolve(argument)
        return items[int(index)]

    def _split(self, argument: list) -> list[str]:
        delimiter, text = self.resolve(argument)
        return text.split(delimiter)

    def _find_in_map(self, argument: list) -> Any:
        map_name, top_key, second_key = self.resolve(argument)
        try:
            return self.template.document["Mappings"][map_name][top_key][second_key]
        except KeyError as error:
            raise TemplateError(f"!FindInMap [{map_name}, {top_key}, {second_key}] finds nothing") from error

    def _if(self, argument: list) -> Any:
        condition, if_true, if_false = argument
        return self.resolve(if_true if self.condition_holds(condition) else if_false)

    def _equals(self, argument: list) -> bool:
        left, right = self.resolve(argument)
        return str(left) == str(right)

    def _not(self, argument: list) -> bool:
        return not self.resolve(argument[0])

    def _and(self, argument: list) -> bool:
        return all(self.resolve(argument))

    def _or(self, argument: list) -> bool:
        return any(self.resolve(argument))

    def _condition(self, name: str) -> bool:
        return self.condition_holds(name)


_INTRINSICS: dict[str, Callable[[Resolver, Any], Any]] = {
    "Ref": Resolver._ref,
    "Fn::GetAtt": Resolver._get_att,
    "Fn::Sub": Resolver._sub,
    "Fn::Join": Resolver._join,
    "Fn::Select": Resolver._select,
    "Fn::Split": Resolver._split,
    "Fn::FindInMap": Resolver._find_in_map,
    "Fn::If": Resolver._if,
    "Fn::Equals": Resolver._equals,
    "Fn::Not": Resolver._not,
    "Fn::And": Resolver._and,
    "Fn::Or": Resolver._or,
    "Condition": Resolver._condition,
}
