#!/usr/bin/env python3
"""Moves the messages of a deployed stack's dead-letter queue back to the queue they failed in (SQS's own redrive,
`StartMessageMoveTask`), for the runbook (docs/operations/runbook.md): `make redrive QUEUE=<DLQ logical id> STACK=<stack name>`.

    .venv/bin/python infra/local/redrive.py --stack tour-booking-dev --queue TourSyncDeadLetterQueue \
        [--region us-east-1] [--rate 10] [--dry-run]

The dead-letter queue is named by its logical id in template.yaml; its URL comes from the stack's resources, and the
queue it redrives to is the one whose RedrivePolicy names it (SQS's `ListDeadLetterSourceQueues`), so nothing here
repeats the template. Redriven messages arrive as new messages (their receive count starts again), and SQS runs one
move at a time per queue. `--rate` caps the messages moved per second (default: as fast as SQS moves them);
`--dry-run` says what would be moved and the equivalent `aws sqs start-message-move-task` command, and moves nothing.
An empty dead-letter queue is reported as such.

Credentials and region come from the usual AWS environment (AWS_PROFILE, AWS_REGION, ...); `--region` overrides it.
Exit status: 0 done (or nothing to do), 1 with a one-line reason, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Callable

import boto3
from botocore.exceptions import BotoCoreError, ClientError

QUEUE_TYPE = "AWS::SQS::Queue"


class RedriveError(Exception):
    """The stack, the queue or SQS does not allow the redrive; the message says why."""


@dataclass(frozen=True)
class Plan:
    """A dead-letter queue of the stack and where its messages go back to."""

    queue: str  # its logical id
    url: str
    arn: str
    waiting: int  # messages visible now
    in_flight: int  # messages being looked at (received, not yet visible again)
    destination_arns: tuple[str, ...]  # the queues whose RedrivePolicy names it

    @property
    def destination_arn(self) -> str | None:
        """The one queue to move back to; None when several queues share the dead-letter queue, and SQS then sends
        each message back to the queue it came from."""
        return self.destination_arns[0] if len(self.destination_arns) == 1 else None

    def cli_command(self, region: str, rate: int | None) -> str:
        command = f"aws sqs start-message-move-task --region {region} --source-arn {self.arn}"
        if self.destination_arn:
            command += f" --destination-arn {self.destination_arn}"
        if rate:
            command += f" --max-number-of-messages-per-second {rate}"
        return command


def stack_queues(cloudformation, stack: str) -> dict[str, str]:
    """Logical id -> queue URL of every SQS queue of the stack."""
    queues = {}
    try:
        for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack):
            for resource in page["StackResourceSummaries"]:
                if resource["ResourceType"] == QUEUE_TYPE and resource.get("PhysicalResourceId"):
                    queues[resource["LogicalResourceId"]] = resource["PhysicalResourceId"]
    except ClientError as error:
        if error.response["Error"]["Code"] == "ValidationError":
            raise RedriveError(f"there is no stack {stack} in this account and region ({error})") from error
        raise
    return queues


def find_plan(cloudformation, sqs, stack: str, queue: str) -> Plan:
    queues = stack_queues(cloudformation, stack)
    if queue not in queues:
        raise RedriveError(f"{stack} has no queue {queue}; its queues: {', '.join(sorted(queues)) or 'none'}")
    url = queues[queue]
    sources = sorted(sqs.list_dead_letter_source_queues(QueueUrl=url).get("queueUrls") or [])
    if not sources:
        dead_letter = [
            name for name, other in sorted(queues.items())
            if sqs.list_dead_letter_source_queues(QueueUrl=other).get("queueUrls")
        ]
        raise RedriveError(
            f"{queue} is not a dead-letter queue (no queue redrives to it); the stack's dead-letter queues: "
            f"{', '.join(dead_letter) or 'none'}"
        )
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["QueueArn", "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    destinations = tuple(
        sqs.get_queue_attributes(QueueUrl=source, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        for source in sources
    )
    return Plan(
        queue=queue,
        url=url,
        arn=attributes["QueueArn"],
        waiting=int(attributes.get("ApproximateNumberOfMessages", 0)),
        in_flight=int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0)),
        destination_arns=destinations,
    )


def running_task(sqs, source_arn: str) -> dict | None:
    """The move already running from this queue, if any (SQS runs one at a time per queue)."""
    for task in sqs.list_message_move_tasks(SourceArn=source_arn, MaxResults=10).get("Results") or []:
        if task.get("Status") == "RUNNING":
            return task
    return None


def watch_hint(plan: Plan, region: str) -> str:
    return f"aws sqs list-message-move-tasks --region {region} --source-arn {plan.arn}"


def redrive(sqs, plan: Plan, region: str, rate: int | None, dry_run: bool, say: Callable[[str], None]) -> str | None:
    """Starts the move, or says why not; returns the task handle when one was started."""
    where = plan.destination_arn or "the queue each message came from"
    running = running_task(sqs, plan.arn)
    if running:
        raise RedriveError(
            f"a move from {plan.queue} is already running ({running.get('ApproximateNumberOfMessagesMoved', 0)} of "
            f"{running.get('ApproximateNumberOfMessagesToMove', '?')} moved); watch it with: {watch_hint(plan, region)}"
        )
    if plan.waiting == 0:
        extra = f" ({plan.in_flight} being read by someone right now)" if plan.in_flight else ""
        say(f"{plan.queue} is empty{extra}: nothing to redrive.")
        return None
    if dry_run:
        say(f"dry run: would move {plan.waiting} message(s) from {plan.queue} ({plan.arn}) to {where}.")
        say(f"the same by hand: {plan.cli_command(region, rate)}")
        return None
    request = {"SourceArn": plan.arn}
    if plan.destination_arn:
        request["DestinationArn"] = plan.destination_arn
    if rate:
        request["MaxNumberOfMessagesPerSecond"] = rate
    handle = sqs.start_message_move_task(**request)["TaskHandle"]
    say(f"moving about {plan.waiting} message(s) from {plan.queue} to {where}.")
    say(f"task handle: {handle}")
    say(f"watch it: {watch_hint(plan, region)}")
    say(f"stop it:  aws sqs cancel-message-move-task --region {region} --task-handle '{handle}'")
    return handle


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True, help="the deployed stack's name, e.g. tour-booking-dev")
    parser.add_argument("--queue", required=True, help="the dead-letter queue's logical id (TourSyncDeadLetterQueue)")
    parser.add_argument("--region", help="AWS region (default: the AWS environment's)")
    parser.add_argument("--rate", type=int, help="most messages moved per second, 1 to 500 (default: SQS decides)")
    parser.add_argument("--dry-run", action="store_true", help="say what would move and move nothing")
    args = parser.parse_args(argv)
    if args.rate is not None and not 1 <= args.rate <= 500:
        parser.error("--rate must be between 1 and 500")
    return args


def main(argv: list[str] | None = None, session_factory=boto3.session.Session) -> int:
    args = parse_args(argv)
    session = session_factory(region_name=args.region) if args.region else session_factory()
    region = session.region_name
    if not region:
        print("redrive: no AWS region: pass --region (make redrive ... REGION=...) or set AWS_REGION", file=sys.stderr)
        return 2
    try:
        cloudformation, sqs = session.client("cloudformation"), session.client("sqs")
        found = find_plan(cloudformation, sqs, args.stack, args.queue)
        redrive(sqs, found, region, args.rate, args.dry_run, print)
    except RedriveError as error:
        print(f"redrive: {error}", file=sys.stderr)
        return 1
    except (ClientError, BotoCoreError) as error:
        print(f"redrive: AWS refused or could not be reached: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
