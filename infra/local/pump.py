#!/usr/bin/env python3
"""The local stand-in for Lambda's event sources, read from template.yaml.

Nothing delivers SQS messages or schedules to a function running under `cargo lambda watch`; this process does
what AWS would, for every function of the template:
- `Events` of Type `SQS`: long-polls the queue, invokes the function with a real-shaped SQS event of up to
  `BatchSize` records (at most 10 locally: one ReceiveMessage), deletes the messages that succeeded. With
  `FunctionResponseTypes: [ReportBatchItemFailures]` a response `{"batchItemFailures": [{"itemIdentifier": id}]}`
  fails only those messages; a function error (non-2xx, an `X-Amz-Function-Error` header or an `errorType` body),
  or a failure naming a message that was not in the batch, fails the whole batch. Failed messages are left alone:
  they reappear after the visibility timeout, and the queue's redrive policy moves them to the dead-letter queue
  after `maxReceiveCount` receives, as in AWS.
- `Events` of Type `Schedule` or `ScheduleV2`: invokes the function every LOCAL_SCHEDULE_PERIOD_SECONDS (default
  10) with an EventBridge "Scheduled Event" (or the event's `Input`, when the template gives one). The template's
  own rate is not used: waiting a real minute or hour makes local work slow.

Functions are invoked through cargo lambda watch's raw invoke API,
`POST {LAMBDA_BASE}/2015-03-31/functions/<binary>/invocations`, where <binary> is the function's
`Metadata.BuildProperties.Binary`. Logs: one line per delivery with ids and counts, never message bodies (they may
hold personal data). Stops cleanly on SIGTERM or SIGINT.

    python infra/local/pump.py --endpoint http://127.0.0.1:5050 --lambda-base http://127.0.0.1:9000 \
        [--template template.yaml] [--prefix tour-booking-local] [--region us-east-1] \
        [--schedule-period SECONDS] [--poll-wait SECONDS]
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
from dataclasses import dataclass
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


def _queue_logical_id(reference) -> str:
    """The queue named by an SQS event's `Queue: !GetAtt X.Arn` (the only form SAM accepts besides a literal)."""
    if isinstance(reference, dict) and "Fn::GetAtt" in reference:
        target = reference["Fn::GetAtt"]
        logical_id, attribute = target.split(".", 1) if isinstance(target, str) else target
        if attribute == "Arn":
            return logical_id
    raise TemplateError(f"an SQS event's Queue must be !GetAtt <Queue>.Arn locally, got {reference!r}")


def _is_enabled(properties: dict) -> bool:
    return properties.get("Enabled", True) not in (False, "false") and properties.get("State") != "DISABLED"


def sources_from_template(
    template: Template, sqs, prefix: str, region: str
) -> tuple[list[SqsSource], list[ScheduleSource]]:
    resolver = Resolver(template=template, region=region, account_id=LOCAL_ACCOUNT_ID, stack_name=prefix)
    sqs_sources: list[SqsSource] = []
    schedule_sources: list[ScheduleSource] = []
    for function in template.functions():
        if not resolver.condition_holds(function.condition):
            continue
        for _, properties in function.events_of_type("SQS"):
            if _is_enabled(properties):
                sqs_sources.append(_sqs_source(template, sqs, prefix, function, properties))
        for name, properties in function.events_of_type("Schedule", "ScheduleV2"):
            if _is_enabled(properties):
                schedule_sources.append(_schedule_source(resolver, prefix, region, function, name, properties))
    return sqs_sources, schedule_sources


def _sqs_source(template: Template, sqs, prefix: str, function: Function, properties: dict) -> SqsSource:
    queue_id = _queue_logical_id(properties.get("Queue"))
    queue_properties = (template.resources.get(queue_id) or {}).get("Properties") or {}
    url = sqs.get_queue_url(QueueName=queue_name(prefix, queue_id, queue_properties))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
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


# --- Invoking a function -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Invocation:
    ok: bool
    payload: object  # the parsed JSON answer, or None
    problem: str = ""  # why it failed, without the answer's body


def invoke(lambda_base: str, binary: str, event: dict, timeout: float = INVOKE_TIMEOUT_SECONDS) -> Invocation:
    url = f"{lambda_base.rstrip('/')}/2015-03-31/functions/{binary}/invocations"
    request = urllib.request.Request(
        url, data=json.dumps(event).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            function_error = response.headers.get("X-Amz-Function-Error")
            body = response.read()
    except urllib.error.HTTPError as error:
        return Invocation(ok=False, payload=None, problem=f"HTTP {error.code}")
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        return Invocation(ok=False, payload=None, problem=f"cannot reach {lambda_base}: {error}")
    payload = _parse_json(body)
    if function_error:
        return Invocation(ok=False, payload=payload, problem=f"function error {function_error}")
    if isinstance(payload, dict) and "errorType" in payload:
        return Invocation(ok=False, payload=payload, problem=f"function error {payload['errorType']}")
    return Invocation(ok=True, payload=payload)


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
    ):
        self.lambda_base = lambda_base
        self.region = region
        self.schedule_period = schedule_period
        self.poll_wait = poll_wait
        self.sqs = aws_client("sqs", endpoint, region)
        self.sqs_sources, self.schedule_sources = sources_from_template(
            load_template(template_path), self.sqs, prefix, region
        )
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        for source in self.sqs_sources:
            self._spawn(
                f"sqs-{source.queue_id}",
                run_sqs_source,
                source, self.sqs, self.lambda_base, self.region, self.poll_wait, self.stop_event,
            )
        for source in self.schedule_sources:
            self._spawn(
                f"schedule-{source.function_id}",
                run_schedule_source,
                source, self.lambda_base, self.region, self.schedule_period, self.stop_event,
            )
        log(
            f"delivering {len(self.sqs_sources)} SQS source(s) "
            f"({', '.join(f'{s.queue_id}->{s.binary}' for s in self.sqs_sources) or 'none'}) and "
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
    parser = argparse.ArgumentParser(description="Delivers SQS messages and schedules to local functions.")
    parser.add_argument("--endpoint", required=True, help="moto server URL")
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
            args.schedule_period, args.poll_wait,
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
