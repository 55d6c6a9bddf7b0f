#!/usr/bin/env python3
"""Creates the stack's AWS resources locally from template.yaml itself: tables in DynamoDB Local, the rest in moto.

Because the tables, queues and function environment come from the deployed template, local runs and AWS cannot
drift apart: change the template and the local stack follows.

What it creates (idempotent: re-running against an already provisioned stack updates in place and succeeds):
- every `AWS::DynamoDB::Table`, at the DynamoDB endpoint: keys, attribute definitions, GSIs/LSIs, billing mode,
  streams, and TTL (`UpdateTimeToLive`);
- every `AWS::SQS::Queue`, dead-letter queues first, with the template's attributes and its `RedrivePolicy`
  pointing at the created dead-letter queue;
- one Secrets Manager secret per template parameter whose name ends in `SecretArn`, holding a local value; the
  parameter then resolves to that secret's ARN.
Physical names are `<prefix>-<LogicalId>` (default prefix `tour-booking-local`); secrets drop the `Arn` suffix
(`tour-booking-local-WebhookSecret`). Different prefixes give independent copies side by side in one DynamoDB Local
and one moto (the Rust tests give each test its own): keep a prefix to letters, digits, `-` and `_`, which every
service accepts in a name (DynamoDB Local, unlike moto, refuses a table name with other characters).

It then resolves each function's environment (Globals + the function's own variables; `!Ref`/`!GetAtt`/`!Sub`
of parameters, tables and queues) into the environment the local functions run with.

CLI (kept stable: the Rust integration tests call it against the servers they start). It needs boto3 and PyYAML:
run it with the project venv's python, `$TOUR_BOOKING_VENV/bin/python` (make exports TOUR_BOOKING_VENV=.venv).

    .venv/bin/python infra/local/provision.py --endpoint http://127.0.0.1:5050 \
        [--dynamodb-endpoint http://127.0.0.1:8000]   # DynamoDB Local (default: --endpoint)
        [--template template.yaml] [--prefix tour-booking-local] [--region us-east-1] \
        [--param Key=Value ...]          # template parameters, e.g. --param ResManBaseUrl=http://127.0.0.1:8091
        [--secret ParamName=VALUE ...]   # secret contents, e.g. --secret WebhookSecretArn=s3cret
        [--env-out FILE]                 # where the env goes ("-" or absent: standard output)

The env file holds `KEY=VALUE` lines only (sorted, no comments; a value is single-quoted only when a shell would
misread it, which none of today's values is), usable as `cargo lambda watch --env-file` and by `set -a; . FILE`:
- every function's environment variables, e.g. TABLE_NAME, SYNC_QUEUE_URL, RESMAN_BASE_URL,
  RESMAN_CREDENTIALS_SECRET_ARN, API_KEYS_SECRET_ARN, WEBHOOK_SECRET_ARN (the local secrets' ARNs), ...;
- for every variable `<X>_QUEUE_URL` naming a queue that has a dead-letter queue: `<X>_DLQ_URL`
  (so SYNC_QUEUE_URL gives SYNC_DLQ_URL);
- `QUEUE_URL_<LogicalId>` for every queue and `TABLE_NAME_<LogicalId>` for every table;
- AWS_ENDPOINT_URL (moto), AWS_REGION, AWS_ACCESS_KEY_ID=testing, AWS_SECRET_ACCESS_KEY=testing, and, when the
  tables are elsewhere, AWS_ENDPOINT_URL_DYNAMODB: the AWS SDKs (Rust, boto3) send DynamoDB calls there and every
  other service to AWS_ENDPOINT_URL.
Progress goes to standard error. Exit status 0 on success, 1 with a one-line reason otherwise.

Parameters without `--param` take the template's defaults (RESMAN_BASE_URL is then the real ResMan URL: point it
at a sandbox with `--param ResManBaseUrl=...`). Secret values default to the ResMan sandbox's credentials, `["local-api-key"]` and `local-webhook-secret`. An
existing secret keeps its value unless `--secret` gives one.

Import `provision(...)` from other scripts and tests for the same work without the CLI.
"""

from __future__ import annotations

import argparse
import json
import re
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from cfn_template import Resolver, Template, TemplateError, load_template
import policies

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TEMPLATE = REPO_ROOT / "template.yaml"
DEFAULT_PREFIX = "tour-booking-local"
DEFAULT_REGION = "us-east-1"
# moto's account; ARNs that we compute ourselves must agree with the ones moto returns.
LOCAL_ACCOUNT_ID = "123456789012"
LOCAL_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}

SECRET_PARAMETER_SUFFIX = "SecretArn"
DEFAULT_SECRET_VALUES = {
    # account_id is a JSON number: ResMan's AccountID is an integer, and the functions refuse a string.
    "ResManCredentialsSecretArn": json.dumps(
        {"integration_partner_id": "domiq-sandbox", "api_key": "sandbox-api-key", "account_id": 400}
    ),
    "ApiKeysSecretArn": json.dumps(["local-api-key"]),
    "WebhookSecretArn": "local-webhook-secret",
    "LinkSecretArn": "local-link-secret-0123456789",
}

# CloudFormation properties of AWS::SQS::Queue that are plain SQS queue attributes of the same name.
SQS_PLAIN_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "SqsManagedSseEnabled",
)


def log(message: str) -> None:
    print(f"provision: {message}", file=sys.stderr)


def aws_client(service: str, endpoint: str, region: str = DEFAULT_REGION):
    """A client for the local endpoint, with moto's dummy credentials: never real ones, so a mistyped endpoint
    cannot create anything in a real account."""
    return boto3.client(service, endpoint_url=endpoint, region_name=region, **LOCAL_CREDENTIALS)


def physical_name(prefix: str, logical_id: str) -> str:
    return f"{prefix}-{logical_id}"


def queue_name(prefix: str, logical_id: str, properties: dict) -> str:
    name = physical_name(prefix, logical_id)
    return f"{name}.fifo" if properties.get("FifoQueue") in (True, "true") else name


def secret_name(prefix: str, parameter: str) -> str:
    return physical_name(prefix, parameter.removesuffix("Arn"))


def is_secret_parameter(name: str) -> bool:
    return name.endswith(SECRET_PARAMETER_SUFFIX)


@dataclass
class Provisioned:
    """What was created, and the environment the local functions run with."""

    endpoint: str
    region: str
    dynamodb_endpoint: str
    tables: dict[str, dict[str, str]] = field(default_factory=dict)  # logical id -> {"Ref", "Arn", ...}
    queues: dict[str, dict[str, str]] = field(default_factory=dict)  # logical id -> {"Ref", "Arn", "QueueName", ...}
    dead_letter_queues: dict[str, str] = field(default_factory=dict)  # queue logical id -> its DLQ's logical id
    secrets: dict[str, str] = field(default_factory=dict)  # parameter name -> secret ARN
    function_env: dict[str, dict[str, str]] = field(default_factory=dict)  # function logical id -> env
    # The IAM gate's policy file (infra/local/policies.py) and each binary's access key id and timeout.
    gate_policies: dict = field(default_factory=dict)
    function_settings: dict[str, dict] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        """The single environment the local runtime gives every function (cargo lambda watch serves all the
        binaries from one process, so their variables are merged), plus the extras listed in the module doc."""
        merged: dict[str, str] = {}
        for function_id, variables in self.function_env.items():
            for key, value in variables.items():
                if key in merged and merged[key] != value:
                    log(f"warning: {function_id} sets {key} differently from another function; the local stack "
                        "runs every function with one environment and keeps the last value")
                merged[key] = value
        merged.update(self._dead_letter_urls(merged))
        for logical_id, queue in self.queues.items():
            merged[f"QUEUE_URL_{logical_id}"] = queue["QueueUrl"]
        for logical_id, table in self.tables.items():
            merged[f"TABLE_NAME_{logical_id}"] = table["Ref"]
        merged.update(
            AWS_ENDPOINT_URL=self.endpoint,
            AWS_REGION=self.region,
            AWS_ACCESS_KEY_ID=LOCAL_CREDENTIALS["aws_access_key_id"],
            AWS_SECRET_ACCESS_KEY=LOCAL_CREDENTIALS["aws_secret_access_key"],
            # The local receivers (the demo's chat webhook, the chatbot's callbacks) are plain http on 127.0.0.1:
            # only here may outbound calls go there (shared/aws/src/outbound.rs).
            OUTBOUND_ALLOW_LOCAL="true",
        )
        if self.dynamodb_endpoint != self.endpoint:
            merged["AWS_ENDPOINT_URL_DYNAMODB"] = self.dynamodb_endpoint
        return dict(sorted(merged.items()))

    def _dead_letter_urls(self, variables: dict[str, str]) -> dict[str, str]:
        urls_by_queue = {queue["QueueUrl"]: logical_id for logical_id, queue in self.queues.items()}
        extra = {}
        for key, value in variables.items():
            queue_id = urls_by_queue.get(value)
            if key.endswith("_QUEUE_URL") and queue_id in self.dead_letter_queues:
                dead_letter_id = self.dead_letter_queues[queue_id]
                extra[key.removesuffix("_QUEUE_URL") + "_DLQ_URL"] = self.queues[dead_letter_id]["QueueUrl"]
        return extra


# --- DynamoDB ------------------------------------------------------------------------------------------------------


def _table_request(name: str, properties: dict) -> dict:
    """CreateTable arguments from the resource's (already resolved) properties."""
    request = {
        "TableName": name,
        "KeySchema": properties["KeySchema"],
        "AttributeDefinitions": properties["AttributeDefinitions"],
        "BillingMode": properties.get("BillingMode", "PROVISIONED"),
    }
    if request["BillingMode"] == "PROVISIONED":
        request["ProvisionedThroughput"] = _throughput(properties.get("ProvisionedThroughput"))
    if properties.get("GlobalSecondaryIndexes"):
        request["GlobalSecondaryIndexes"] = [
            _index(index, request["BillingMode"]) for index in properties["GlobalSecondaryIndexes"]
        ]
    if properties.get("LocalSecondaryIndexes"):
        request["LocalSecondaryIndexes"] = [
            {key: index[key] for key in ("IndexName", "KeySchema", "Projection")}
            for index in properties["LocalSecondaryIndexes"]
        ]
    stream = properties.get("StreamSpecification")
    if stream:
        request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": stream["StreamViewType"]}
    # SSE, point-in-time recovery, deletion protection and tags change nothing a local function can observe.
    return request


def _throughput(throughput: dict | None) -> dict:
    throughput = throughput or {}
    return {
        "ReadCapacityUnits": int(throughput.get("ReadCapacityUnits", 5)),
        "WriteCapacityUnits": int(throughput.get("WriteCapacityUnits", 5)),
    }


def _index(index: dict, billing_mode: str) -> dict:
    request = {key: index[key] for key in ("IndexName", "KeySchema", "Projection")}
    if billing_mode == "PROVISIONED":
        request["ProvisionedThroughput"] = _throughput(index.get("ProvisionedThroughput"))
    return request


def create_table(dynamodb, name: str, properties: dict, region: str = DEFAULT_REGION) -> dict[str, str]:
    """Creates the table; its attributes are what CloudFormation answers. The `Arn` is in the stack's region and
    account, as AWS names it (DynamoDB Local's own ARNs say `ddblocal:000000000000`), so that the IAM gate's
    policies and the calls it checks name the table alike."""
    try:
        dynamodb.create_table(**_table_request(name, properties))
        log(f"table {name}: created")
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceInUseException":
            raise
        log(f"table {name}: already there")
    _enable_ttl(dynamodb, name, properties.get("TimeToLiveSpecification"))
    description = dynamodb.describe_table(TableName=name)["Table"]
    attributes = {"Ref": name, "Arn": f"arn:aws:dynamodb:{region}:{LOCAL_ACCOUNT_ID}:table/{name}"}
    if description.get("LatestStreamArn"):
        attributes["StreamArn"] = description["LatestStreamArn"]
    return attributes


def _enable_ttl(dynamodb, table: str, ttl: dict | None) -> None:
    if not ttl or ttl.get("Enabled") not in (True, "true"):
        return
    current = dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    if current.get("TimeToLiveStatus") == "ENABLED" and current.get("AttributeName") == ttl["AttributeName"]:
        return
    dynamodb.update_time_to_live(
        TableName=table, TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True}
    )


# --- SQS -----------------------------------------------------------------------------------------------------------


def queues_in_creation_order(template: Template) -> list[tuple[str, dict]]:
    """Queues with every dead-letter queue before the queues that redrive to it."""
    queues = dict(template.resources_of_type("AWS::SQS::Queue"))
    ordered: list[str] = []

    def visit(logical_id: str, path: tuple[str, ...]) -> None:
        if logical_id in ordered:
            return
        if logical_id in path:
            raise TemplateError(f"queues redrive to each other in a cycle: {' -> '.join(path + (logical_id,))}")
        target = dead_letter_target(queues[logical_id])
        if target is not None:
            if target not in queues:
                raise TemplateError(f"{logical_id} redrives to {target}, which is not a queue of this template")
            visit(target, path + (logical_id,))
        ordered.append(logical_id)

    for logical_id in queues:
        visit(logical_id, ())
    return [(logical_id, queues[logical_id]) for logical_id in ordered]


def dead_letter_target(queue_resource: dict) -> str | None:
    """The logical id of a queue's dead-letter queue when it is given as `!GetAtt Queue.Arn`."""
    redrive = (queue_resource.get("Properties") or {}).get("RedrivePolicy") or {}
    target = redrive.get("deadLetterTargetArn") if isinstance(redrive, dict) else None
    if isinstance(target, dict) and "Fn::GetAtt" in target:
        reference = target["Fn::GetAtt"]
        logical_id, attribute = reference.split(".", 1) if isinstance(reference, str) else reference
        if attribute == "Arn":
            return logical_id
    return None


def _queue_attributes(properties: dict) -> dict[str, str]:
    attributes = {
        key: _attribute_text(properties[key]) for key in SQS_PLAIN_ATTRIBUTES if key in properties
    }
    redrive = properties.get("RedrivePolicy")
    if redrive:
        redrive = json.loads(redrive) if isinstance(redrive, str) else redrive
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": redrive["deadLetterTargetArn"], "maxReceiveCount": int(redrive["maxReceiveCount"])}
        )
    return attributes


def _attribute_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def create_queue(sqs, name: str, properties: dict) -> dict[str, str]:
    attributes = _queue_attributes(properties)
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as error:
        if error.response["Error"]["Code"] not in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"):
            raise
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        log(f"queue {name}: created")
    else:
        # FifoQueue cannot be changed after creation; everything else follows the template.
        changeable = {key: value for key, value in attributes.items() if key != "FifoQueue"}
        if changeable:
            sqs.set_queue_attributes(QueueUrl=url, Attributes=changeable)
        log(f"queue {name}: already there, attributes updated")
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return {"Ref": url, "QueueUrl": url, "Arn": arn, "QueueName": name}


# --- Secrets Manager -----------------------------------------------------------------------------------------------


def create_secret(secretsmanager, name: str, value: str, overwrite: bool) -> str:
    """Creates the secret, or gives an existing one the value when `overwrite`; returns its ARN."""
    try:
        return secretsmanager.create_secret(Name=name, SecretString=value)["ARN"]
    except ClientError as error:
        if error.response["Error"]["Code"] != "ResourceExistsException":
            raise
    if overwrite:
        secretsmanager.put_secret_value(SecretId=name, SecretString=value)
    return secretsmanager.describe_secret(SecretId=name)["ARN"]


# --- The whole stack -----------------------------------------------------------------------------------------------


def provision(
    endpoint: str,
    template_path: str | Path = DEFAULT_TEMPLATE,
    params: dict[str, str] | None = None,
    secrets: dict[str, str] | None = None,
    prefix: str = DEFAULT_PREFIX,
    region: str = DEFAULT_REGION,
    dynamodb_endpoint: str | None = None,
) -> Provisioned:
    """Creates (or updates) the template's tables at `dynamodb_endpoint` (default: `endpoint`), and its queues and
    secrets in moto at `endpoint`.

    `params` are template parameter values; `secrets` maps a `...SecretArn` parameter to its secret's content.
    """
    template = load_template(template_path)
    secrets = secrets or {}
    unknown = sorted(set(secrets) - {name for name in template.parameters if is_secret_parameter(name)})
    if unknown:
        raise TemplateError(f"--secret names no secret parameter of the template: {', '.join(unknown)}")
    result = Provisioned(endpoint=endpoint, region=region, dynamodb_endpoint=dynamodb_endpoint or endpoint)
    resolver = Resolver(
        template=template,
        parameters=dict(params or {}),
        resources={},
        region=region,
        account_id=LOCAL_ACCOUNT_ID,
        stack_name=prefix,
    )

    secretsmanager = aws_client("secretsmanager", endpoint, region)
    for parameter in template.parameters:
        if is_secret_parameter(parameter):
            value = secrets.get(parameter, DEFAULT_SECRET_VALUES.get(parameter, f"local-{parameter}"))
            arn = create_secret(secretsmanager, secret_name(prefix, parameter), value, parameter in secrets)
            result.secrets[parameter] = arn
            resolver.parameters[parameter] = arn

    dynamodb = aws_client("dynamodb", result.dynamodb_endpoint, region)
    for logical_id, resource in template.resources_of_type("AWS::DynamoDB::Table"):
        if resolver.condition_holds(resource.get("Condition")):
            properties = resolver.resolve(resource.get("Properties") or {})
            result.tables[logical_id] = create_table(dynamodb, physical_name(prefix, logical_id), properties, region)
            resolver.resources[logical_id] = result.tables[logical_id]

    sqs = aws_client("sqs", endpoint, region)
    for logical_id, resource in queues_in_creation_order(template):
        if resolver.condition_holds(resource.get("Condition")):
            properties = resolver.resolve(resource.get("Properties") or {})
            name = queue_name(prefix, logical_id, properties)
            result.queues[logical_id] = create_queue(sqs, name, properties)
            resolver.resources[logical_id] = result.queues[logical_id]
            target = dead_letter_target(resource)
            if target is not None:
                result.dead_letter_queues[logical_id] = target

    sesv2 = aws_client("sesv2", endpoint, region)
    for logical_id, resource in template.resources_of_type("AWS::SES::ConfigurationSet"):
        if resolver.condition_holds(resource.get("Condition")):
            properties = resolver.resolve(resource.get("Properties") or {})
            name = str(properties.get("Name") or physical_name(prefix, logical_id))
            try:
                sesv2.create_configuration_set(ConfigurationSetName=name)
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") not in ("AlreadyExistsException", "ConfigurationSetAlreadyExistsException"):
                    raise
            resolver.resources[logical_id] = {"Ref": name}
    # The SMS stand-in takes any configuration set by name: only its name is needed.
    for logical_id, resource in template.resources_of_type("AWS::SMSVOICE::ConfigurationSet"):
        if resolver.condition_holds(resource.get("Condition")):
            # Its event destination names an SNS topic, which the local stack has no twin of: only the name is read.
            named = (resource.get("Properties") or {}).get("ConfigurationSetName")
            name = str(resolver.resolve(named) if named else physical_name(prefix, logical_id))
            resolver.resources[logical_id] = {"Ref": name}
    # SES sends only from a verified identity: the sender's domain (verified at once in moto).
    if "SenderEmail" in template.parameters:
        sender = str(resolver.resolve({"Ref": "SenderEmail"}))
        sesv2.create_email_identity(EmailIdentity=sender.rpartition("@")[2])

    # An HTTP API has no local twin (cargo lambda watch serves the functions by name): its `!Ref` is a name, so
    # that addresses built from it resolve; the local stack then points them at the local functions.
    for logical_id, resource in template.resources_of_type("AWS::Serverless::HttpApi"):
        if resolver.condition_holds(resource.get("Condition")):
            resolver.resources[logical_id] = {"Ref": physical_name(prefix, logical_id)}
    for function in template.functions():
        if resolver.condition_holds(function.condition):
            _register_function(resolver, function.logical_id, prefix, region)
    for function in template.functions():
        if resolver.condition_holds(function.condition):
            result.function_env[function.logical_id] = {
                key: resolver.resolve_string(value, f"{function.logical_id} environment variable {key}")
                for key, value in function.environment.items()
            }
    result.gate_policies = policies.gate_policies(template.functions(), resolver)
    result.function_settings = policies.function_settings(template.functions(), resolver)
    return result


def _register_function(resolver: Resolver, logical_id: str, prefix: str, region: str) -> None:
    """What `!Ref`/`!GetAtt` of a function give, so that one function's environment may name another."""
    name = physical_name(prefix, logical_id)
    resolver.resources[logical_id] = {
        "Ref": name,
        "Arn": f"arn:aws:lambda:{region}:{LOCAL_ACCOUNT_ID}:function:{name}",
    }


# --- Env files -----------------------------------------------------------------------------------------------------


_SHELL_SAFE = re.compile(r"^[A-Za-z0-9_@%+=:,./-]*$")


def format_env(env: dict[str, str]) -> str:
    """KEY=VALUE lines. Values go raw (ARNs, URLs, names) unless a shell would read them differently, then they
    are single-quoted, so that the file can also be sourced."""
    lines = []
    for key, value in env.items():
        if "\n" in value or "\r" in value:
            raise TemplateError(f"the value of {key} spans lines; it cannot go in a KEY=VALUE file")
        lines.append(f"{key}={value if _SHELL_SAFE.match(value) else shlex.quote(value)}\n")
    return "".join(lines)


def write_env_file(path: str | Path, env: dict[str, str]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(format_env(env))


def read_env_file(path: str | Path) -> dict[str, str]:
    """Reads a KEY=VALUE file as written by `write_env_file` (blank lines and `#` comments allowed)."""
    env = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = shlex.split(value)[0] if value.startswith("'") else value
    return env


# --- CLI -----------------------------------------------------------------------------------------------------------


def _key_values(pairs: Iterable[str], option: str) -> dict[str, str]:
    result = {}
    for pair in pairs:
        key, separator, value = pair.partition("=")
        if not separator or not key:
            raise SystemExit(f"provision: {option} wants Key=Value, got {pair!r}")
        result[key] = value
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", required=True, help="moto server URL, e.g. http://127.0.0.1:5050")
    parser.add_argument(
        "--dynamodb-endpoint", help="DynamoDB Local URL, e.g. http://127.0.0.1:8000 (default: --endpoint)"
    )
    parser.add_argument("--template", default=str(DEFAULT_TEMPLATE), help="SAM template (default: template.yaml)")
    parser.add_argument("--prefix", default=DEFAULT_PREFIX, help="physical name prefix (default: %(default)s)")
    parser.add_argument("--region", default=DEFAULT_REGION, help="(default: %(default)s)")
    parser.add_argument("--param", action="append", default=[], metavar="Key=Value", help="template parameter")
    parser.add_argument("--secret", action="append", default=[], metavar="ParamName=VALUE", help="secret content")
    parser.add_argument("--env-out", default="-", metavar="FILE", help="env file to write (default: stdout)")
    parser.add_argument(
        "--policies-out", metavar="FILE", help="write each function's resolved IAM policy here (the IAM gate's file)"
    )
    args = parser.parse_args(argv)
    try:
        result = provision(
            endpoint=args.endpoint,
            template_path=args.template,
            params=_key_values(args.param, "--param"),
            secrets=_key_values(args.secret, "--secret"),
            prefix=args.prefix,
            region=args.region,
            dynamodb_endpoint=args.dynamodb_endpoint,
        )
        env = result.env()
        if args.policies_out:
            Path(args.policies_out).write_text(json.dumps(result.gate_policies, indent=2) + "\n")
        if args.env_out == "-":
            sys.stdout.write(format_env(env))
        else:
            write_env_file(args.env_out, env)
            log(f"environment written to {args.env_out}")
    except TemplateError as error:
        log(f"error: {error}")
        return 1
    except (ClientError, BotoCoreError, OSError) as error:
        log(f"error talking to {args.endpoint} (DynamoDB: {args.dynamodb_endpoint or args.endpoint}): {error}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
