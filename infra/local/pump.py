#!/usr/bin/env python3
"""The local stand-in for Lambda's event sources, read from template.yaml.

Nothing delivers SQS messages, DynamoDB stream records or schedules to a function running under
`cargo lambda watch`; this process does what AWS would, for every function of the template:
- `Events` of Type `SQS`: long-polls the queue, invokes the function with a real-shaped SQS event of up to
  `BatchSize` records (at most 10 locally: one ReceiveMessage), deletes the messages that succeeded. With
  `FunctionResponseTypes: [ReportBatchItemFailures]` a response `{"batchItemFailures": [{"itemIdentifier": id}]}`
  fails only those messages; a function error (non-2xx, an `X-Amz-Function-Error` header or an `errorType` body),
  or a failure naming a message that was not in the batch, fails the whole batch. Failed messages are left alone:
  they reappear after the visibility timeout, and the queue's redrive policy moves them to the dead-letter queue
  after `maxReceiveCount` receives, as in AWS.
- `Events` of Type `DynamoDB` (`Stream: !GetAtt <Table>.StreamArn`): reads the table's stream in DynamoDB Local
  (`--dynamodb-endpoint`, required when the template has such an event) as Lambda's event source mapping does: every
  shard from `StartingPosition` (TRIM_HORIZON or LATEST), a child shard only after its parent is done, records in
  order per shard, in Lambda's record shape, in batches of up to `BatchSize` (default 100) gathered for up to
  `MaximumBatchingWindowInSeconds` (default 0). `FilterCriteria` drop the records no filter matches before batching
  (literals, `prefix`, `exists`, `anything-but`). A failed batch (a function error, or with
  `FunctionResponseTypes: [ReportBatchItemFailures]` the records from the lowest reported `SequenceNumber` on) is
  retried every STREAM_RETRY_BACKOFF_SECONDS; with `BisectBatchOnFunctionError` a batch that errs is split in halves
  first (a split uses no retry). After `MaximumRetryAttempts` retries (default -1: forever) the records are skipped
  and, with `DestinationConfig.OnFailure` naming a queue of the template, their metadata (AWS's invocation record,
  without the records) goes to that queue; the records after them go on being delivered.
  Not played locally: checkpoints (a restarted pump starts again from `StartingPosition`: DynamoDB Local keeps its
  data in memory, so its streams restart with it), `MaximumRecordAgeInSeconds`, `ParallelizationFactor` (shards are
  read one after the other by one thread per event source); `TumblingWindowInSeconds` is refused.
- `Events` of Type `Schedule` or `ScheduleV2`: invokes the function every LOCAL_SCHEDULE_PERIOD_SECONDS (default
  10) with an EventBridge "Scheduled Event" (or the event's `Input`, when the template gives one). The template's
  own rate is not used: waiting a real minute or hour makes local work slow.

Functions are invoked through cargo lambda watch's raw invoke API,
`POST {LAMBDA_BASE}/2015-03-31/functions/<binary>/invocations`, where <binary> is the function's
`Metadata.BuildProperties.Binary`. Logs: one line per delivery with ids and counts (for streams: shard, sequence
numbers and counts), never message bodies, stream keys or images (they may hold personal data). Stops cleanly on
SIGTERM or SIGINT.

    python infra/local/pump.py --endpoint http://127.0.0.1:5050 --lambda-base http://127.0.0.1:9000 \
        [--dynamodb-endpoint http://127.0.0.1:8000] [--template template.yaml] [--prefix tour-booking-local] \
        [--region us-east-1] [--schedule-period SECONDS] [--poll-wait SECONDS]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from cfn_template import Function, Resolver, Template, TemplateError, load_template
from provision import (
    DEFAULT_PREFIX,
    DEFAULT_REGION,
    DEFAULT_TEMPLATE,
    LOCAL_ACCOUNT_ID,
    aws_client,
    physical_name,
    queue_name,
)

SQS_MAX_BATCH = 10  # one ReceiveMessage returns at most 10 messages
DEFAULT_SCHEDULE_PERIOD_SECONDS = 10.0
DEFAULT_POLL_WAIT_SECONDS = 5  # long-poll length: also how long a stop request may wait
INVOKE_TIMEOUT_SECONDS = 600  # generous: cargo lambda watch compiles a function on its first invocation
STREAM_DEFAULT_BATCH_SIZE = 100  # Lambda's default for DynamoDB streams
STREAM_GET_RECORDS_LIMIT = 1000  # DynamoDB Streams' most records per GetRecords
STREAM_POLL_SECONDS = 0.25  # Lambda polls each shard 4 times a second
STREAM_SHARD_REFRESH_SECONDS = 5.0  # how often the stream is described again, for new shards
STREAM_RETRY_BACKOFF_SECONDS = 0.5  # between retries of a failed batch: short, so that local runs and tests stay quick
STREAM_UNREACHABLE_BACKOFF_SECONDS = 1.0  # while the function cannot be reached at all
STREAM_STARTING_POSITIONS = ("TRIM_HORIZON", "LATEST")


def log(message: str) -> None:
    stamp = datetime.now().strftime("%H:%M:%S")
    print(f"{stamp} pump: {message}", file=sys.stderr, flush=True)


# --- What to deliver, from the template ----------------------------------------------------------------------------


@dataclass(frozen=True)
class SqsSource:
    function_id: str
    binary: str
    queue_id: str
    queue_url: str
    queue_arn: str
    batch_size: int
    reports_item_failures: bool


@dataclass(frozen=True)
class ScheduleSource:
    function_id: str
    binary: str
    event_name: str
    rule_arn: str
    payload: dict | None  # the event's `Input`, sent instead of a Scheduled Event when given


@dataclass(frozen=True)
class StreamSource:
    function_id: str
    binary: str
    function_arn: str  # what an OnFailure record names: the ARN provision gives `!GetAtt <Function>.Arn`
    event_name: str
    table_id: str
    table_name: str
    stream_arn: str  # the table's LatestStreamArn in DynamoDB Local, as `!GetAtt <Table>.StreamArn` resolves locally
    starting_position: str  # TRIM_HORIZON or LATEST
    batch_size: int
    batching_window: float  # seconds to gather a batch (MaximumBatchingWindowInSeconds)
    bisect_on_error: bool
    max_retry_attempts: int  # -1: retried for as long as the pump runs
    reports_item_failures: bool
    filters: tuple[dict, ...]  # parsed FilterCriteria patterns; none: every record is delivered
    on_failure_queue_id: str | None = None
    on_failure_queue_url: str | None = None


@dataclass(frozen=True)
class Sources:
    sqs: list[SqsSource]
    schedules: list[ScheduleSource]
    streams: list[StreamSource]


def _get_att_logical_id(reference, attribute: str, what: str) -> str:
    """The resource named by `!GetAtt X.<attribute>` (what SAM's event properties take locally)."""
    if isinstance(reference, dict) and "Fn::GetAtt" in reference:
        target = reference["Fn::GetAtt"]
        logical_id, named = target.split(".", 1) if isinstance(target, str) else target
        if named == attribute:
            return logical_id
    raise TemplateError(f"{what} must be !GetAtt <Resource>.{attribute} locally, got {reference!r}")


def _queue_logical_id(reference) -> str:
    """The queue named by an SQS event's `Queue: !GetAtt X.Arn` (the only form SAM accepts besides a literal)."""
    return _get_att_logical_id(reference, "Arn", "an SQS event's Queue")


def _is_enabled(properties: dict) -> bool:
    return properties.get("Enabled", True) not in (False, "false") and properties.get("State") != "DISABLED"


def sources_from_template(template: Template, sqs, prefix: str, region: str, dynamodb=None) -> Sources:
    """Every enabled event source of the template's functions. `dynamodb` (a client for DynamoDB Local) is needed
    only when a function has a DynamoDB event: without it such a template is refused, never half played."""
    resolver = Resolver(template=template, region=region, account_id=LOCAL_ACCOUNT_ID, stack_name=prefix)
    sources = Sources(sqs=[], schedules=[], streams=[])
    for function in template.functions():
        if not resolver.condition_holds(function.condition):
            continue
        for _, properties in function.events_of_type("SQS"):
            if _is_enabled(properties):
                sources.sqs.append(_sqs_source(template, sqs, prefix, function, properties))
        for name, properties in function.events_of_type("DynamoDB"):
            if _is_enabled(properties):
                if dynamodb is None:
                    raise TemplateError(
                        f"{function.logical_id}'s DynamoDB event {name} reads a table's stream: the pump needs "
                        "--dynamodb-endpoint (the DynamoDB Local URL) to deliver it"
                    )
                sources.streams.append(
                    _stream_source(template, sqs, dynamodb, prefix, region, function, name, properties)
                )
        for name, properties in function.events_of_type("Schedule", "ScheduleV2"):
            if _is_enabled(properties):
                sources.schedules.append(_schedule_source(resolver, prefix, region, function, name, properties))
    return sources


def _queue_url_and_arn(template: Template, sqs, prefix: str, queue_id: str) -> tuple[str, str]:
    queue_properties = (template.resources.get(queue_id) or {}).get("Properties") or {}
    url = sqs.get_queue_url(QueueName=queue_name(prefix, queue_id, queue_properties))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def _sqs_source(template: Template, sqs, prefix: str, function: Function, properties: dict) -> SqsSource:
    queue_id = _queue_logical_id(properties.get("Queue"))
    url, arn = _queue_url_and_arn(template, sqs, prefix, queue_id)
    batch_size = int(properties.get("BatchSize", SQS_MAX_BATCH))
    if batch_size > SQS_MAX_BATCH:
        log(f"{function.logical_id}: BatchSize {batch_size} is delivered locally in batches of {SQS_MAX_BATCH}")
    return SqsSource(
        function_id=function.logical_id,
        binary=function.require_binary(),
        queue_id=queue_id,
        queue_url=url,
        queue_arn=arn,
        batch_size=min(batch_size, SQS_MAX_BATCH),
        reports_item_failures="ReportBatchItemFailures" in (properties.get("FunctionResponseTypes") or []),
    )


def _stream_source(
    template: Template, sqs, dynamodb, prefix: str, region: str, function: Function, event_name: str, properties: dict
) -> StreamSource:
    where = f"{function.logical_id}'s DynamoDB event {event_name}"
    table_id = _get_att_logical_id(properties.get("Stream"), "StreamArn", f"{where}: Stream")
    table = template.resources.get(table_id) or {}
    if table.get("Type") != "AWS::DynamoDB::Table":
        raise TemplateError(f"{where}: Stream names {table_id}, which is not a table of this template")
    if not (table.get("Properties") or {}).get("StreamSpecification"):
        raise TemplateError(f"{where}: table {table_id} has no StreamSpecification, so no stream to read")
    if "TumblingWindowInSeconds" in properties:
        # Tumbling windows change what the function receives and answers (state carried between invocations).
        raise TemplateError(f"{where}: TumblingWindowInSeconds is not played locally")
    starting_position = str(properties.get("StartingPosition", ""))
    if starting_position not in STREAM_STARTING_POSITIONS:
        raise TemplateError(
            f"{where}: StartingPosition must be one of {', '.join(STREAM_STARTING_POSITIONS)}, "
            f"got {starting_position!r}"
        )
    for ignored in ("MaximumRecordAgeInSeconds", "ParallelizationFactor"):
        if ignored in properties:
            log(f"{where}: {ignored} is not played locally")
    table_name = physical_name(prefix, table_id)  # how provision.py names every table
    function_name = physical_name(prefix, function.logical_id)
    stream_arn = dynamodb.describe_table(TableName=table_name)["Table"].get("LatestStreamArn")
    if not stream_arn:
        raise TemplateError(f"{where}: table {table_name} has no stream in DynamoDB Local; provision it first")
    queue_id = queue_url = None
    on_failure = ((properties.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
    if on_failure is not None:
        queue_id = _get_att_logical_id(on_failure, "Arn", f"{where}: DestinationConfig.OnFailure.Destination")
        if (template.resources.get(queue_id) or {}).get("Type") != "AWS::SQS::Queue":
            raise TemplateError(f"{where}: the OnFailure destination {queue_id} is not a queue (only SQS is played)")
        queue_url, _ = _queue_url_and_arn(template, sqs, prefix, queue_id)
    return StreamSource(
        function_id=function.logical_id,
        binary=function.require_binary(),
        function_arn=f"arn:aws:lambda:{region}:{LOCAL_ACCOUNT_ID}:function:{function_name}",
        event_name=event_name,
        table_id=table_id,
        table_name=table_name,
        stream_arn=stream_arn,
        starting_position=starting_position,
        batch_size=int(properties.get("BatchSize", STREAM_DEFAULT_BATCH_SIZE)),
        batching_window=float(properties.get("MaximumBatchingWindowInSeconds", 0)),
        bisect_on_error=properties.get("BisectBatchOnFunctionError") in (True, "true"),
        max_retry_attempts=int(properties.get("MaximumRetryAttempts", -1)),
        reports_item_failures="ReportBatchItemFailures" in (properties.get("FunctionResponseTypes") or []),
        filters=filter_patterns(properties.get("FilterCriteria"), where),
        on_failure_queue_id=queue_id,
        on_failure_queue_url=queue_url,
    )


def _schedule_source(
    resolver: Resolver, prefix: str, region: str, function: Function, event_name: str, properties: dict
) -> ScheduleSource:
    raw_input = resolver.resolve(properties.get("Input"))
    rule_name = physical_name(prefix, f"{function.logical_id}{event_name}")
    return ScheduleSource(
        function_id=function.logical_id,
        binary=function.require_binary(),
        event_name=event_name,
        rule_arn=f"arn:aws:events:{region}:{LOCAL_ACCOUNT_ID}:rule/{rule_name}",
        payload=json.loads(raw_input) if raw_input else None,
    )


# --- Events, shaped as AWS sends them ------------------------------------------------------------------------------


def sqs_record(message: dict, queue_arn: str, region: str) -> dict:
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes") or {},
        "messageAttributes": {
            name: _message_attribute(value) for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def _message_attribute(value: dict) -> dict:
    """boto3's MessageAttributeValue in the camelCase form of a Lambda SQS record (binary as base64)."""
    attribute = {
        "stringListValues": value.get("StringListValues", []),
        "binaryListValues": [base64.b64encode(item).decode() for item in value.get("BinaryListValues", [])],
        "dataType": value["DataType"],
    }
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    return attribute


def scheduled_event(source: ScheduleSource, region: str, now: datetime) -> dict:
    if source.payload is not None:
        return source.payload
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": LOCAL_ACCOUNT_ID,
        "time": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [source.rule_arn],
        "detail": {},
    }


def stream_record(record: dict, stream_arn: str, region: str) -> dict:
    """A DynamoDB Streams record (as boto3 returns it) in the shape of a Lambda DynamoDB event record."""
    change = {key: _change_field(key, value) for key, value in record["dynamodb"].items()}
    shaped = {
        "eventID": record["eventID"],
        "eventName": record["eventName"],
        "eventVersion": record.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        # DynamoDB Local says `ddblocal`; Lambda names the function's region.
        "awsRegion": region,
        "dynamodb": change,
        "eventSourceARN": stream_arn,
    }
    if "userIdentity" in record:  # TTL deletions
        shaped["userIdentity"] = record["userIdentity"]
    return shaped


def _change_field(key: str, value):
    if key == "ApproximateCreationDateTime" and isinstance(value, datetime):
        seconds = value.timestamp()  # Lambda sends epoch seconds, a JSON number
        return int(seconds) if seconds.is_integer() else seconds
    if key in ("Keys", "NewImage", "OldImage"):
        return {name: _attribute_value(attribute) for name, attribute in value.items()}
    return value


def _attribute_value(attribute: dict) -> dict:
    """boto3's AttributeValue as JSON: binary (B, BS) as base64, as Lambda's records carry it; the rest as given."""
    (kind, value), = attribute.items()
    if kind == "B":
        return {"B": base64.b64encode(value).decode()}
    if kind == "BS":
        return {"BS": [base64.b64encode(item).decode() for item in value]}
    if kind == "M":
        return {"M": {name: _attribute_value(item) for name, item in value.items()}}
    if kind == "L":
        return {"L": [_attribute_value(item) for item in value]}
    return {kind: value}


# --- FilterCriteria: Lambda's content filtering, the part of it a template of ours uses -----------------------------

_MISSING = object()  # a field the record does not have
_LITERALS = (str, int, float, bool, type(None))


def filter_patterns(filter_criteria: dict | None, where: str) -> tuple[dict, ...]:
    """The parsed patterns of `FilterCriteria.Filters[].Pattern`; refuses (at start) one this pump cannot evaluate."""
    patterns = []
    for index, entry in enumerate((filter_criteria or {}).get("Filters") or []):
        raw = entry.get("Pattern") if isinstance(entry, dict) else None
        try:
            pattern = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError as error:
            raise TemplateError(f"{where}: FilterCriteria pattern {index + 1} is not valid JSON ({error}): {raw}")
        if not isinstance(pattern, dict) or not pattern:
            raise TemplateError(f"{where}: FilterCriteria pattern {index + 1} is not a JSON object with fields")
        _check_pattern(pattern, f"{where}: FilterCriteria pattern {index + 1}")
        patterns.append(pattern)
    return tuple(patterns)


def _check_pattern(pattern: dict, where: str) -> None:
    for key, expected in pattern.items():
        if isinstance(expected, dict):
            _check_pattern(expected, f"{where}, field {key}")
        elif not isinstance(expected, list) or not expected:
            raise TemplateError(f"{where}, field {key}: a pattern's values must be a non-empty array")
        else:
            for rule in expected:
                _check_rule(rule, f"{where}, field {key}")


def _check_rule(rule, where: str) -> None:
    if isinstance(rule, _LITERALS):
        return
    if isinstance(rule, dict) and len(rule) == 1:
        (operator, argument), = rule.items()
        if operator == "prefix" and isinstance(argument, str):
            return
        if operator == "exists" and isinstance(argument, bool):
            return
        if operator == "anything-but" and _valid_anything_but(argument):
            return
    raise TemplateError(
        f"{where}: {json.dumps(rule)} is not played locally (literals, prefix, exists and anything-but are)"
    )


def _valid_anything_but(argument) -> bool:
    if isinstance(argument, list):
        return bool(argument) and all(isinstance(item, _LITERALS) for item in argument)
    if isinstance(argument, dict):
        return list(argument) == ["prefix"] and isinstance(argument["prefix"], str)
    return isinstance(argument, _LITERALS)


def record_passes(patterns: tuple[dict, ...], record: dict) -> bool:
    """Whether Lambda would deliver the record: no filters, or any one filter matches (filters are ORed)."""
    return not patterns or any(pattern_matches(pattern, record) for pattern in patterns)


def pattern_matches(pattern: dict, value) -> bool:
    """Every field of the pattern matches (fields are ANDed); a nested object matches the nested record object."""
    for key, expected in pattern.items():
        actual = value[key] if isinstance(value, dict) and key in value else _MISSING
        if isinstance(expected, dict):
            if not pattern_matches(expected, actual):
                return False
        elif not any(_rule_matches(rule, actual) for rule in expected):  # a field's values are ORed
            return False
    return True


def _rule_matches(rule, actual) -> bool:
    if isinstance(rule, dict):
        (operator, argument), = rule.items()
        if operator == "exists":
            return (actual is not _MISSING) == argument
        if actual is _MISSING:
            return False
        values = actual if isinstance(actual, list) else [actual]  # an array matches when any element does
        if operator == "prefix":
            return any(isinstance(item, str) and item.startswith(argument) for item in values)
        return any(not _excluded(argument, item) for item in values)  # anything-but
    if actual is _MISSING:
        return False
    return any(_same_literal(rule, item) for item in (actual if isinstance(actual, list) else [actual]))


def _excluded(argument, item) -> bool:
    if isinstance(argument, dict):
        return isinstance(item, str) and item.startswith(argument["prefix"])
    return any(_same_literal(excluded, item) for excluded in (argument if isinstance(argument, list) else [argument]))


def _same_literal(rule, item) -> bool:
    """JSON equality: a string never equals a number, and true is not 1."""
    if isinstance(rule, bool) or isinstance(item, bool):
        return isinstance(rule, bool) and isinstance(item, bool) and rule == item
    if isinstance(rule, (int, float)) and isinstance(item, (int, float)):
        return rule == item
    return type(rule) is type(item) and rule == item


# --- Invoking a function -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Invocation:
    ok: bool
    payload: object  # the parsed JSON answer, or None
    problem: str = ""  # why it failed, without the answer's body
    status: int | None = None  # the HTTP status; None when the runtime could not be reached at all
    function_error: str = ""  # the X-Amz-Function-Error header, or the errorType of the body

    @property
    def reached(self) -> bool:
        return self.status is not None


def invoke(lambda_base: str, binary: str, event: dict, timeout: float = INVOKE_TIMEOUT_SECONDS) -> Invocation:
    url = f"{lambda_base.rstrip('/')}/2015-03-31/functions/{binary}/invocations"
    request = urllib.request.Request(
        url, data=json.dumps(event).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            function_error = response.headers.get("X-Amz-Function-Error")
            status = response.status
            body = response.read()
    except urllib.error.HTTPError as error:
        return Invocation(ok=False, payload=None, problem=f"HTTP {error.code}", status=error.code)
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        return Invocation(ok=False, payload=None, problem=f"cannot reach {lambda_base}: {error}")
    payload = _parse_json(body)
    if function_error:
        return Invocation(
            ok=False, payload=payload, problem=f"function error {function_error}", status=status,
            function_error=function_error,
        )
    if isinstance(payload, dict) and "errorType" in payload:
        return Invocation(
            ok=False, payload=payload, problem=f"function error {payload['errorType']}", status=status,
            function_error="Unhandled",
        )
    return Invocation(ok=True, payload=payload, status=status)


def _parse_json(body: bytes) -> object:
    try:
        return json.loads(body) if body.strip() else None
    except ValueError:
        return None


def failed_message_ids(invocation: Invocation, batch_ids: list[str], reports_item_failures: bool) -> set[str]:
    """Which messages of the batch failed, by Lambda's rules for SQS event source mappings."""
    if not invocation.ok:
        return set(batch_ids)
    if not reports_item_failures or not isinstance(invocation.payload, dict):
        return set()
    failures = invocation.payload.get("batchItemFailures") or []
    ids = {failure.get("itemIdentifier") if isinstance(failure, dict) else None for failure in failures}
    if not ids <= set(batch_ids):
        # An empty, missing or unknown identifier makes Lambda treat the whole batch as failed.
        return set(batch_ids)
    return ids


def stream_retry_from(invocation: Invocation, sequence_numbers: list[str], reports_item_failures: bool) -> int | None:
    """Where a stream batch is retried from, by Lambda's rules: None when it succeeded, else the index of the first
    record to retry (the records before it count as processed)."""
    if not invocation.ok:
        return 0
    if not reports_item_failures or not isinstance(invocation.payload, dict):
        return None
    failures = invocation.payload.get("batchItemFailures") or []
    ids = [failure.get("itemIdentifier") if isinstance(failure, dict) else None for failure in failures]
    if not ids:
        return None
    if not all(identifier in sequence_numbers for identifier in ids):
        # An empty, missing or unknown identifier makes Lambda treat the whole batch as failed.
        return 0
    # The checkpoint is the lowest sequence number reported: everything from there on is retried.
    return min(sequence_numbers.index(identifier) for identifier in ids)


# --- Delivery loops ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    received: int
    deleted: int
    failed: list[str]


def deliver_sqs_batch(source: SqsSource, sqs, lambda_base: str, region: str, poll_wait: int) -> Delivery | None:
    """One receive-invoke-delete round; None when the queue had nothing."""
    messages = sqs.receive_message(
        QueueUrl=source.queue_url,
        MaxNumberOfMessages=source.batch_size,
        WaitTimeSeconds=poll_wait,
        MessageSystemAttributeNames=["All"],
        MessageAttributeNames=["All"],
    ).get("Messages", [])
    if not messages:
        return None
    batch_ids = [message["MessageId"] for message in messages]
    event = {"Records": [sqs_record(message, source.queue_arn, region) for message in messages]}
    invocation = invoke(lambda_base, source.binary, event)
    failed = failed_message_ids(invocation, batch_ids, source.reports_item_failures)
    succeeded = [message for message in messages if message["MessageId"] not in failed]
    if succeeded:
        sqs.delete_message_batch(
            QueueUrl=source.queue_url,
            Entries=[
                {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
                for index, message in enumerate(succeeded)
            ],
        )
    ordered_failures = [message_id for message_id in batch_ids if message_id in failed]
    problem = f" ({invocation.problem})" if invocation.problem else ""
    log(
        f"sqs {source.queue_id} -> {source.binary}: {len(messages)} received, {len(succeeded)} deleted, "
        f"{len(ordered_failures)} failed{problem}; ids {','.join(batch_ids)}"
        + (f"; failed ids {','.join(ordered_failures)}" if ordered_failures else "")
    )
    return Delivery(received=len(messages), deleted=len(succeeded), failed=ordered_failures)


def run_sqs_source(
    source: SqsSource, sqs, lambda_base: str, region: str, poll_wait: int, stop: threading.Event
) -> None:
    while not stop.is_set():
        try:
            deliver_sqs_batch(source, sqs, lambda_base, region, poll_wait)
        except Exception as error:  # noqa: BLE001 - one bad round must not end deliveries for the whole session
            log(f"sqs {source.queue_id}: {type(error).__name__}: {error}; retrying in 1 s")
            stop.wait(1)


def fire_schedule(source: ScheduleSource, lambda_base: str, region: str) -> Invocation:
    invocation = invoke(lambda_base, source.binary, scheduled_event(source, region, datetime.now(timezone.utc)))
    outcome = "ok" if invocation.ok else f"failed ({invocation.problem})"
    log(f"schedule {source.function_id}.{source.event_name} -> {source.binary}: {outcome}")
    return invocation


def run_schedule_source(
    source: ScheduleSource, lambda_base: str, region: str, period: float, stop: threading.Event
) -> None:
    next_tick = time.monotonic()
    while not stop.is_set():
        try:
            fire_schedule(source, lambda_base, region)
        except Exception as error:  # noqa: BLE001 - as above: the next tick tries again
            log(f"schedule {source.function_id}: {type(error).__name__}: {error}")
        # Ticks missed while an invocation ran long (a function being rebuilt) are skipped, not fired back to back:
        # a schedule's next run is the next period boundary.
        next_tick += period
        while next_tick < time.monotonic():
            next_tick += period
        stop.wait(max(0.0, next_tick - time.monotonic()))


@dataclass(frozen=True)
class StreamDelivery:
    invocations: int
    succeeded: int  # records delivered (with their retries) without an error in the end
    discarded: list[str]  # sequence numbers of the records skipped after their retries ran out


@dataclass
class _Attempt:
    records: list[dict]
    retries: int = 0  # retries so far of these records (a split is not one: it spends none of the quota)
    invocations: int = 0  # how many times these records were sent to the function


def deliver_stream_batch(
    source: StreamSource,
    shard_id: str,
    records: list[dict],
    lambda_base: str,
    sqs,
    stop: threading.Event,
    backoff: float = STREAM_RETRY_BACKOFF_SECONDS,
) -> StreamDelivery:
    """Invokes the function with one batch of a shard until every record succeeded or was given up on, as Lambda's
    event source mapping does: the shard waits meanwhile, so order within it is kept."""
    pending = [_Attempt(records)]
    invocations = succeeded = 0
    discarded: list[str] = []
    while pending and not stop.is_set():
        attempt = pending.pop(0)
        sequence_numbers = [record["dynamodb"]["SequenceNumber"] for record in attempt.records]
        invocation = invoke(lambda_base, source.binary, {"Records": attempt.records})
        invocations += 1
        attempt.invocations += 1
        retry_from = stream_retry_from(invocation, sequence_numbers, source.reports_item_failures)
        outcome = _stream_outcome(invocation, retry_from, len(attempt.records))
        _log_stream_invocation(source, shard_id, attempt, outcome)
        if retry_from is None:
            succeeded += len(attempt.records)
            continue
        succeeded += retry_from
        failed = _Attempt(attempt.records[retry_from:], attempt.retries, attempt.invocations)
        if not invocation.reached:
            # Lambda retries what failed before reaching the function until the records expire, without
            # spending the retry quota: here, until the runtime answers (cargo lambda watch restarting).
            pending.insert(0, failed)
            stop.wait(STREAM_UNREACHABLE_BACKOFF_SECONDS)
        elif source.bisect_on_error and not invocation.ok and len(failed.records) > 1:
            half = len(failed.records) // 2
            pending[:0] = [
                _Attempt(failed.records[:half], failed.retries, failed.invocations),
                _Attempt(failed.records[half:], failed.retries, failed.invocations),
            ]
        elif source.max_retry_attempts < 0 or failed.retries < source.max_retry_attempts:
            failed.retries += 1
            pending.insert(0, failed)
            stop.wait(backoff)
        else:
            discarded.extend(record["dynamodb"]["SequenceNumber"] for record in failed.records)
            _give_up(source, shard_id, failed, invocation, sqs)
    return StreamDelivery(invocations=invocations, succeeded=succeeded, discarded=discarded)


def _stream_outcome(invocation: Invocation, retry_from: int | None, count: int) -> str:
    if retry_from is None:
        return "ok"
    if invocation.ok:
        return f"{count - retry_from} failed (reported from item {retry_from + 1})"
    return f"failed ({invocation.problem})"


def _stream_label(source: StreamSource) -> str:
    return f"dynamodb {source.table_id} -> {source.binary}"


def _sequence_range(records: list[dict]) -> str:
    first, last = records[0]["dynamodb"]["SequenceNumber"], records[-1]["dynamodb"]["SequenceNumber"]
    return first if first == last else f"{first}..{last}"


def _log_stream_invocation(source: StreamSource, shard_id: str, attempt: _Attempt, outcome: str) -> None:
    # Shard ids, sequence numbers and counts only: keys and images may hold personal data.
    retry = f", retry {attempt.retries}" if attempt.retries else ""
    log(
        f"{_stream_label(source)}: {len(attempt.records)} record(s), shard {shard_id}, sequence "
        f"{_sequence_range(attempt.records)}{retry}: {outcome}"
    )


def _give_up(source: StreamSource, shard_id: str, failed: _Attempt, invocation: Invocation, sqs) -> None:
    """Skips records whose retries ran out; their metadata goes to the OnFailure queue, as AWS sends it."""
    where = f"{len(failed.records)} record(s), shard {shard_id}, sequence {_sequence_range(failed.records)}"
    if source.on_failure_queue_url is None:
        log(f"{_stream_label(source)}: retries exhausted, {where} skipped (no OnFailure destination)")
        return
    sqs.send_message(
        QueueUrl=source.on_failure_queue_url,
        MessageBody=json.dumps(stream_failure_record(source, shard_id, failed.records, failed.invocations, invocation)),
    )
    log(f"{_stream_label(source)}: retries exhausted, {where} skipped; its record sent to {source.on_failure_queue_id}")


def stream_failure_record(
    source: StreamSource, shard_id: str, records: list[dict], invoke_count: int, invocation: Invocation
) -> dict:
    """AWS's invocation record for discarded stream records: where they are in the stream, never what they hold."""
    response_context: dict = {"statusCode": invocation.status or 200, "executedVersion": "$LATEST"}
    if not invocation.ok:
        response_context["functionError"] = invocation.function_error or "Unhandled"
    return {
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "functionArn": source.function_arn,
            "condition": "RetryAttemptsExhausted",
            "approximateInvokeCount": invoke_count,
        },
        "responseContext": response_context,
        "version": "1.0",
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "DDBStreamBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": records[0]["dynamodb"]["SequenceNumber"],
            "endSequenceNumber": records[-1]["dynamodb"]["SequenceNumber"],
            "approximateArrivalOfFirstRecord": _arrival(records[0]),
            "approximateArrivalOfLastRecord": _arrival(records[-1]),
            "batchSize": len(records),
            "streamArn": source.stream_arn,
        },
    }


def _arrival(record: dict) -> str | None:
    seconds = record["dynamodb"].get("ApproximateCreationDateTime")
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Shard:
    shard_id: str
    parent_id: str | None
    position: str  # where reading starts: TRIM_HORIZON or LATEST
    iterator: str | None = None  # None: not opened yet (or expired)
    last_read: str | None = None  # sequence number of the last record read: where an expired iterator reopens
    pending: list[dict] = field(default_factory=list)  # read and kept by the filters, not yet delivered
    pending_since: float = 0.0  # when the batching window of the pending records began
    closed: bool = False  # GetRecords gave no next iterator: the shard gets no more records


class StreamReader:
    """One stream source's event source mapping: the stream's shards, each read in order (a child only after its
    parent is done) and delivered in batches."""

    def __init__(
        self,
        source: StreamSource,
        streams,
        sqs,
        lambda_base: str,
        region: str,
        stop: threading.Event,
        backoff: float = STREAM_RETRY_BACKOFF_SECONDS,
        shard_refresh: float = STREAM_SHARD_REFRESH_SECONDS,
    ):
        self.source = source
        self.streams = streams
        self.sqs = sqs
        self.lambda_base = lambda_base
        self.region = region
        self.stop = stop
        self.backoff = backoff
        self.shard_refresh = shard_refresh
        self.shards: dict[str, _Shard] = {}  # open or still delivering, in the stream's order
        self.finished: set[str] = set()
        self.next_refresh = 0.0
        self.described_once = False

    def poll(self) -> bool:
        """One round over the shards; True when it read or delivered something (then the next round comes at once)."""
        if time.monotonic() >= self.next_refresh:
            self.refresh_shards()
        busy = False
        for shard in list(self.shards.values()):
            if self.stop.is_set():
                break
            if shard.parent_id in self.shards:  # a parent shard is read and delivered to its end first
                continue
            busy = self._read(shard) or busy
            busy = self._deliver_ready(shard) or busy
            if shard.closed and not shard.pending:
                del self.shards[shard.shard_id]
                self.finished.add(shard.shard_id)
                log(f"{_stream_label(self.source)}: shard {shard.shard_id} done")
        return busy

    def refresh_shards(self) -> None:
        """Describes the stream again: shards it has not seen are added (a closed shard that is done is not)."""
        for described in self._describe_shards():
            shard_id = described["ShardId"]
            if shard_id in self.shards or shard_id in self.finished:
                continue
            # The mapping starts where the template says; a shard that appears later holds records written since,
            # so it is read from its beginning.
            position = self.source.starting_position if not self.described_once else "TRIM_HORIZON"
            shard = _Shard(shard_id=shard_id, parent_id=described.get("ParentShardId"), position=position)
            if position == "LATEST":
                shard.iterator = self._open(shard)  # now: LATEST means what is written from the start on
            self.shards[shard_id] = shard
        self.described_once = True
        self.next_refresh = time.monotonic() + self.shard_refresh

    def _describe_shards(self) -> list[dict]:
        shards: list[dict] = []
        request = {"StreamArn": self.source.stream_arn}
        while True:
            description = self.streams.describe_stream(**request)["StreamDescription"]
            shards.extend(description.get("Shards") or [])
            last = description.get("LastEvaluatedShardId")
            if not last:
                return shards
            request["ExclusiveStartShardId"] = last

    def _open(self, shard: _Shard) -> str:
        request = {"StreamArn": self.source.stream_arn, "ShardId": shard.shard_id}
        if shard.last_read is not None:
            request.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=shard.last_read)
        else:
            request["ShardIteratorType"] = shard.position
        return self.streams.get_shard_iterator(**request)["ShardIterator"]

    def _read(self, shard: _Shard) -> bool:
        if shard.closed or len(shard.pending) >= self.source.batch_size:
            return False
        if shard.iterator is None:
            shard.iterator = self._open(shard)
        try:
            response = self.streams.get_records(ShardIterator=shard.iterator, Limit=STREAM_GET_RECORDS_LIMIT)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ExpiredIteratorException":
                raise
            shard.iterator = None  # reopened after the last record read, at the next round
            return True
        shard.iterator = response.get("NextShardIterator")
        shard.closed = shard.iterator is None
        records = response.get("Records") or []
        if not records:
            return False
        shard.last_read = records[-1]["dynamodb"]["SequenceNumber"]
        shaped = [stream_record(record, self.source.stream_arn, self.region) for record in records]
        kept = [record for record in shaped if record_passes(self.source.filters, record)]
        if len(kept) < len(shaped):
            # Lambda never delivers them and counts them as processed.
            log(
                f"{_stream_label(self.source)}: {len(shaped) - len(kept)} of {len(shaped)} record(s), shard "
                f"{shard.shard_id}, sequence {_sequence_range(shaped)}: filtered out"
            )
        if kept and not shard.pending:
            shard.pending_since = time.monotonic()
        shard.pending.extend(kept)
        return True

    def _deliver_ready(self, shard: _Shard) -> bool:
        delivered = False
        while shard.pending and not self.stop.is_set() and self._batch_ready(shard):
            batch = shard.pending[: self.source.batch_size]
            deliver_stream_batch(
                self.source, shard.shard_id, batch, self.lambda_base, self.sqs, self.stop, self.backoff
            )
            # Only now: a round that failed half way (the OnFailure queue unreachable) delivers the batch again.
            del shard.pending[: len(batch)]
            # The next batching window begins when this invocation is done, as Lambda's does.
            shard.pending_since = time.monotonic()
            delivered = True
        return delivered

    def _batch_ready(self, shard: _Shard) -> bool:
        return (
            len(shard.pending) >= self.source.batch_size
            or shard.closed
            or time.monotonic() - shard.pending_since >= self.source.batching_window
        )


def run_stream_source(
    source: StreamSource, streams, sqs, lambda_base: str, region: str, stop: threading.Event
) -> None:
    reader = StreamReader(source, streams, sqs, lambda_base, region, stop)
    while not stop.is_set():
        try:
            busy = reader.poll()
        except Exception as error:  # noqa: BLE001 - as above: the stream is read again at the next round
            log(f"{_stream_label(source)}: {type(error).__name__}: {error}; retrying in 1 s")
            stop.wait(1)
            continue
        if not busy:
            stop.wait(STREAM_POLL_SECONDS)


class Pump:
    """All deliveries of one template, one thread per event source."""

    def __init__(
        self,
        endpoint: str,
        lambda_base: str,
        template_path: str | Path = DEFAULT_TEMPLATE,
        prefix: str = DEFAULT_PREFIX,
        region: str = DEFAULT_REGION,
        schedule_period: float = DEFAULT_SCHEDULE_PERIOD_SECONDS,
        poll_wait: int = DEFAULT_POLL_WAIT_SECONDS,
        dynamodb_endpoint: str | None = None,
    ):
        self.lambda_base = lambda_base
        self.region = region
        self.schedule_period = schedule_period
        self.poll_wait = poll_wait
        self.sqs = aws_client("sqs", endpoint, region)
        # Streams are read straight from DynamoDB Local (not through the IAM gate): the pump plays Lambda's service.
        dynamodb = aws_client("dynamodb", dynamodb_endpoint, region) if dynamodb_endpoint else None
        self.streams = aws_client("dynamodbstreams", dynamodb_endpoint, region) if dynamodb_endpoint else None
        sources = sources_from_template(load_template(template_path), self.sqs, prefix, region, dynamodb)
        self.sqs_sources, self.schedule_sources, self.stream_sources = sources.sqs, sources.schedules, sources.streams
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        for source in self.sqs_sources:
            self._spawn(
                f"sqs-{source.queue_id}",
                run_sqs_source,
                source, self.sqs, self.lambda_base, self.region, self.poll_wait, self.stop_event,
            )
        for source in self.stream_sources:
            self._spawn(
                f"stream-{source.function_id}-{source.event_name}",
                run_stream_source,
                source, self.streams, self.sqs, self.lambda_base, self.region, self.stop_event,
            )
        for source in self.schedule_sources:
            self._spawn(
                f"schedule-{source.function_id}",
                run_schedule_source,
                source, self.lambda_base, self.region, self.schedule_period, self.stop_event,
            )
        log(
            f"delivering {len(self.sqs_sources)} SQS source(s) "
            f"({', '.join(f'{s.queue_id}->{s.binary}' for s in self.sqs_sources) or 'none'}), "
            f"{len(self.stream_sources)} DynamoDB stream source(s) "
            f"({', '.join(f'{s.table_id}->{s.binary}' for s in self.stream_sources) or 'none'}) and "
            f"{len(self.schedule_sources)} schedule(s) "
            f"({', '.join(s.binary for s in self.schedule_sources) or 'none'}, every {self.schedule_period:g} s)"
        )

    def _spawn(self, name: str, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def stop(self, timeout: float = 30.0) -> None:
        self.stop_event.set()
        deadline = time.monotonic() + timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Delivers SQS messages, DynamoDB stream records and schedules to local functions."
    )
    parser.add_argument("--endpoint", required=True, help="moto server URL")
    parser.add_argument(
        "--dynamodb-endpoint",
        help="DynamoDB Local URL, where the tables and their streams are (needed for Events of Type DynamoDB)",
    )
    parser.add_argument("--lambda-base", required=True, help="cargo lambda watch, e.g. http://127.0.0.1:9000")
    parser.add_argument("--template", default=str(DEFAULT_TEMPLATE))
    parser.add_argument("--prefix", default=DEFAULT_PREFIX)
    parser.add_argument("--region", default=DEFAULT_REGION)
    parser.add_argument(
        "--schedule-period",
        type=float,
        default=float(os.environ.get("LOCAL_SCHEDULE_PERIOD_SECONDS", DEFAULT_SCHEDULE_PERIOD_SECONDS)),
        help="seconds between scheduled invocations (env LOCAL_SCHEDULE_PERIOD_SECONDS, default 10)",
    )
    parser.add_argument("--poll-wait", type=int, default=DEFAULT_POLL_WAIT_SECONDS, help="SQS long-poll seconds")
    args = parser.parse_args(argv)

    stop_requested = threading.Event()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signal_number, lambda number, frame: stop_requested.set())
    try:
        pump = Pump(
            args.endpoint, args.lambda_base, args.template, args.prefix, args.region,
            args.schedule_period, args.poll_wait, args.dynamodb_endpoint,
        )
    except (TemplateError, ClientError, BotoCoreError) as error:
        log(f"error: cannot read the event sources: {error}")
        return 1
    pump.start()
    while not stop_requested.wait(1):
        pass
    log("stopping")
    pump.stop()
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
