"""Each function's IAM policy, read from template.yaml as SAM and CloudFormation would make it, for the local
stack's IAM gate (infra/iam-gate).

- `function_policy(function, resolver)`: the function's statements, with every intrinsic resolved against the local
  stack's resources: its inline policy documents, the SAM policy templates it names (expanded from SAM's own
  definitions, `samtranslator/policy_templates_data/policy_templates.json`, as `sam build` expands them), and the
  managed policy SAM attaches for an SQS event source (AWSLambdaSQSQueueExecutionRole: receive, delete and read
  attributes of any queue).
- `gate_policies(...)`: the policy file the gate reads: each function's access key id, role and statements.

Anything the template could say that this cannot reproduce (a managed policy by name, a `Condition`, `NotAction`)
fails loudly, naming the function, instead of being left out: a policy the gate does not know cannot be enforced.
"""

from __future__ import annotations

import copy
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import samtranslator

from cfn_template import NO_VALUE, Function, Resolver, Template, TemplateError

SAM_POLICY_TEMPLATES = Path(samtranslator.__file__).parent / "policy_templates_data" / "policy_templates.json"

# What SAM attaches to the role of a function with an SQS event (the managed policy's statement, without its
# CloudWatch Logs actions, which no local call needs).
SQS_EVENT_SOURCE_STATEMENT = {
    "Sid": "AWSLambdaSQSQueueExecutionRole",
    "Effect": "Allow",
    "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
    "Resource": "*",
}

SUPPORTED_STATEMENT_KEYS = {"Sid", "Effect", "Action", "Resource"}


@lru_cache(maxsize=1)
def sam_policy_templates() -> dict:
    return json.loads(SAM_POLICY_TEMPLATES.read_text())["Templates"]


def access_key_id(binary: str) -> str:
    """The access key id a function signs its AWS calls with locally: readable in logs, one per function. Letters and
    digits only, as DynamoDB Local accepts (it refuses any other key id as UnrecognizedClientException)."""
    return "LOCAL" + "".join(part.capitalize() for part in binary.split("-"))


def _substitute_parameters(value: Any, arguments: dict) -> Any:
    """A SAM policy template's `{"Ref": "<Parameter>"}` replaced by the value the function gave it."""
    if isinstance(value, dict):
        if set(value) == {"Ref"} and value["Ref"] in arguments:
            return copy.deepcopy(arguments[value["Ref"]])
        return {key: _substitute_parameters(item, arguments) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute_parameters(item, arguments) for item in value]
    return value


def _expand_sam_template(name: str, arguments: Any, where: str) -> list[dict]:
    templates = sam_policy_templates()
    if name not in templates:
        raise TemplateError(f"{where}: {name} is neither a policy document nor a SAM policy template")
    template = templates[name]
    arguments = arguments or {}
    missing = sorted(set(template.get("Parameters") or {}) - set(arguments))
    if missing:
        raise TemplateError(f"{where}: {name} needs {', '.join(missing)}")
    return _substitute_parameters(template["Definition"]["Statement"], arguments)


def _as_list(value: Any) -> list:
    return value if isinstance(value, list) else [value]


def _statement(raw: dict, resolver: Resolver, where: str) -> dict:
    unsupported = sorted(set(raw) - SUPPORTED_STATEMENT_KEYS)
    if unsupported:
        raise TemplateError(f"{where}: the local IAM gate cannot evaluate {', '.join(unsupported)}")
    resolved = resolver.resolve(raw)
    effect = resolved.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise TemplateError(f"{where}: Effect must be Allow or Deny, got {effect!r}")
    actions = [str(a) for a in _as_list(resolved.get("Action", []))]
    resources = [str(r) for r in _as_list(resolved.get("Resource", []))]
    if not actions or not resources:
        raise TemplateError(f"{where}: a statement needs an Action and a Resource")
    statement = {"effect": effect, "actions": actions, "resources": resources}
    if resolved.get("Sid"):
        statement["sid"] = str(resolved["Sid"])
    return statement


def function_policy(function: Function, resolver: Resolver) -> list[dict]:
    """The function's statements, resolved."""
    statements: list[dict] = []
    for index, entry in enumerate(function.properties.get("Policies") or []):
        where = f"{function.logical_id} Policies[{index}]"
        entry = resolver.resolve(entry) if _is_conditional(entry) else entry
        if entry is NO_VALUE or entry == {}:
            continue
        if isinstance(entry, str):
            raise TemplateError(f"{where}: the managed policy {entry} is not known to the local IAM gate")
        if not isinstance(entry, dict):
            raise TemplateError(f"{where}: {entry!r} is not a policy")
        if "Statement" in entry:
            raw_statements = _as_list(entry["Statement"])
        elif len(entry) == 1:
            name, arguments = next(iter(entry.items()))
            raw_statements = _expand_sam_template(name, arguments, where)
        else:
            raise TemplateError(f"{where}: {sorted(entry)} is not a policy")
        statements.extend(_statement(raw, resolver, where) for raw in raw_statements)
    if function.events_of_type("SQS"):
        statements.append(_statement(SQS_EVENT_SOURCE_STATEMENT, resolver, f"{function.logical_id} SQS event"))
    return statements


def _is_conditional(entry: Any) -> bool:
    return isinstance(entry, dict) and set(entry) == {"Fn::If"}


def role_arn(function: Function, resolver: Resolver) -> str:
    """How AWS names the function's caller in a denial: its role (SAM's `<LogicalId>Role`) and session."""
    role = f"{resolver.stack_name}-{function.logical_id}Role"
    return f"arn:aws:sts::{resolver.account_id}:assumed-role/{role}/{resolver.stack_name}-{function.logical_id}"


def gate_policies(functions: list[Function], resolver: Resolver) -> dict:
    """The IAM gate's policy file: every function (whose condition holds) by its access key id."""
    principals = {}
    for function in functions:
        if not resolver.condition_holds(function.condition):
            continue
        binary = function.require_binary()
        principals[access_key_id(binary)] = {
            "function": binary,
            "arn": role_arn(function, resolver),
            "statements": function_policy(function, resolver),
        }
    return {"region": resolver.region, "account": resolver.account_id, "principals": principals}


def function_settings(functions: list[Function], resolver: Resolver) -> dict:
    """What the local Lambda sandbox needs per binary: its access key id, timeout (seconds) and the names of its own
    environment variables (cargo lambda watch gives every function one merged environment; the sandbox takes every
    other function's variables away, as a deployed function never sees them)."""
    settings = {}
    for function in functions:
        if resolver.condition_holds(function.condition):
            binary = function.require_binary()
            settings[binary] = {
                "logical_id": function.logical_id,
                "access_key_id": access_key_id(binary),
                "timeout_seconds": int(resolver.resolve_string(function.properties.get("Timeout", 3), "Timeout")),
                "variables": sorted(function.environment),
            }
    return settings


# --- The permission table (docs/operations/permissions.md) --------------------------------------------------------------------------------

ARN_PREFIX = re.compile(r"^arn:aws:[a-z0-9-]+:[a-z0-9-]*:[0-9]*:")


def _symbolic_resolver(template: Template) -> Resolver:
    """Resolves every resource to its logical id and every secret parameter to its name, so that the table reads in
    the template's words, whatever a stack's physical names are."""
    resolver = Resolver(template=template, parameters={}, resources={})
    for logical_id in template.resources:
        resolver.resources[logical_id] = {"Ref": logical_id, "Arn": logical_id, "QueueName": logical_id}
    for name in template.parameters:
        if name.endswith("SecretArn"):
            resolver.parameters[name] = name
    return resolver


def _readable(resource: str) -> str:
    return ARN_PREFIX.sub("", resource).removeprefix("secret:")


def permission_table(template: Template) -> str:
    """A Markdown table of each function's grants: its binary, the actions of each statement, and their resources."""
    resolver = _symbolic_resolver(template)
    lines = ["| Function | Actions | Resources |", "| --- | --- | --- |"]
    for function in sorted(template.functions(), key=lambda f: f.require_binary()):
        first = True
        for statement in function_policy(function, resolver):
            name = f"`{function.require_binary()}`" if first else ""
            actions = ", ".join(f"`{a}`" for a in statement["actions"])
            resources = ", ".join(f"`{_readable(r)}`" for r in statement["resources"])
            lines.append(f"| {name} | {actions} | {resources} |")
            first = False
        if first:
            lines.append(f"| `{function.require_binary()}` | none: it makes no AWS call | |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    from cfn_template import load_template

    print(permission_table(load_template(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parents[2] / "template.yaml")), end="")
