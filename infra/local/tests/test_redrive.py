"""infra/local/redrive.py (`make redrive`): finds a stack's dead-letter queue and the queue it redrives to, and moves
its messages back with SQS's StartMessageMoveTask; says so instead when asked for a dry run, when the queue is empty
or not a dead-letter queue. AWS is played by botocore's Stubber: no network, and any call not expected fails."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

import redrive

REGION = "us-east-1"
STACK = "tour-booking-dev"
PREFIX = f"https://sqs.{REGION}.amazonaws.com/123456789012"
ARN = f"arn:aws:sqs:{REGION}:123456789012"
SYNC_URL, SYNC_ARN = f"{PREFIX}/{STACK}-TourSyncQueue-AAA", f"{ARN}:{STACK}-TourSyncQueue-AAA"
DLQ_URL, DLQ_ARN = f"{PREFIX}/{STACK}-TourSyncDeadLetterQueue-BBB", f"{ARN}:{STACK}-TourSyncDeadLetterQueue-BBB"
HANDLE = "eyJ0YXNrSWQiOiJ0YXNrIn0="


class FakeSession:
    """What redrive.main asks of a boto3 Session, with stubbed clients."""

    def __init__(self, aws: "Aws", region_name: str | None = REGION):
        self.aws, self.region_name = aws, region_name

    def client(self, service: str):
        return {"cloudformation": self.aws.cloudformation, "sqs": self.aws.sqs}[service]


class Aws:
    def __init__(self):
        credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        self.cloudformation = boto3.client("cloudformation", region_name=REGION, **credentials)
        self.sqs = boto3.client("sqs", region_name=REGION, **credentials)
        self.cfn_stub, self.sqs_stub = Stubber(self.cloudformation), Stubber(self.sqs)
        self.cfn_stub.activate()
        self.sqs_stub.activate()
        self.sessions: list[dict] = []

    def session(self, **kwargs):
        self.sessions.append(kwargs)
        return FakeSession(self, kwargs.get("region_name", REGION))

    def stack_has_queues(self, queues: dict[str, str]):
        summaries = [
            {
                "LogicalResourceId": logical_id,
                "PhysicalResourceId": url,
                "ResourceType": "AWS::SQS::Queue",
                "LastUpdatedTimestamp": "2026-01-01T00:00:00Z",
                "ResourceStatus": "CREATE_COMPLETE",
            }
            for logical_id, url in queues.items()
        ]
        summaries.append(
            {
                "LogicalResourceId": "ToursTable",
                "PhysicalResourceId": "tour-booking-dev-ToursTable-CCC",
                "ResourceType": "AWS::DynamoDB::Table",
                "LastUpdatedTimestamp": "2026-01-01T00:00:00Z",
                "ResourceStatus": "CREATE_COMPLETE",
            }
        )
        self.cfn_stub.add_response("list_stack_resources", {"StackResourceSummaries": summaries}, {"StackName": STACK})

    def sources(self, url: str, sources: list[str]):
        self.sqs_stub.add_response("list_dead_letter_source_queues", {"queueUrls": sources}, {"QueueUrl": url})

    def dead_letter_queue_holds(self, waiting: int, in_flight: int = 0):
        self.sqs_stub.add_response(
            "get_queue_attributes",
            {
                "Attributes": {
                    "QueueArn": DLQ_ARN,
                    "ApproximateNumberOfMessages": str(waiting),
                    "ApproximateNumberOfMessagesNotVisible": str(in_flight),
                }
            },
            {
                "QueueUrl": DLQ_URL,
                "AttributeNames": ["QueueArn", "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            },
        )
        self.sqs_stub.add_response(
            "get_queue_attributes",
            {"Attributes": {"QueueArn": SYNC_ARN}},
            {"QueueUrl": SYNC_URL, "AttributeNames": ["QueueArn"]},
        )

    def move_tasks(self, results: list[dict]):
        self.sqs_stub.add_response(
            "list_message_move_tasks", {"Results": results}, {"SourceArn": DLQ_ARN, "MaxResults": 10}
        )

    def the_tour_sync_dead_letter_queue_holds(self, waiting: int, in_flight: int = 0):
        self.stack_has_queues({"TourSyncQueue": SYNC_URL, "TourSyncDeadLetterQueue": DLQ_URL})
        self.sources(DLQ_URL, [SYNC_URL])
        self.dead_letter_queue_holds(waiting, in_flight)
        self.move_tasks([])

    def run(self, *args: str) -> int:
        return redrive.main(list(args), session_factory=self.session)

    def every_expected_call_was_made(self):
        self.cfn_stub.assert_no_pending_responses()
        self.sqs_stub.assert_no_pending_responses()


@pytest.fixture
def aws():
    return Aws()


def test_the_dead_letter_queue_moves_back_to_the_queue_that_redrives_to_it(aws, capsys):
    aws.the_tour_sync_dead_letter_queue_holds(3)
    aws.sqs_stub.add_response(
        "start_message_move_task", {"TaskHandle": HANDLE}, {"SourceArn": DLQ_ARN, "DestinationArn": SYNC_ARN}
    )
    assert aws.run("--stack", STACK, "--queue", "TourSyncDeadLetterQueue") == 0
    aws.every_expected_call_was_made()
    out = capsys.readouterr().out
    assert f"task handle: {HANDLE}" in out
    assert f"aws sqs list-message-move-tasks --region {REGION} --source-arn {DLQ_ARN}" in out


def test_a_rate_and_a_region_are_passed_on(aws, capsys):
    aws.the_tour_sync_dead_letter_queue_holds(500)
    aws.sqs_stub.add_response(
        "start_message_move_task",
        {"TaskHandle": HANDLE},
        {"SourceArn": DLQ_ARN, "DestinationArn": SYNC_ARN, "MaxNumberOfMessagesPerSecond": 10},
    )
    assert aws.run("--stack", STACK, "--queue", "TourSyncDeadLetterQueue", "--rate", "10", "--region", REGION) == 0
    aws.every_expected_call_was_made()
    assert aws.sessions == [{"region_name": REGION}]


def test_a_dry_run_moves_nothing_and_prints_the_aws_command(aws, capsys):
    aws.the_tour_sync_dead_letter_queue_holds(3)
    assert aws.run("--stack", STACK, "--queue", "TourSyncDeadLetterQueue", "--dry-run") == 0
    aws.every_expected_call_was_made()
    out = capsys.readouterr().out
    assert "dry run: would move 3 message(s)" in out
    assert (
        f"aws sqs start-message-move-task --region {REGION} --source-arn {DLQ_ARN} --destination-arn {SYNC_ARN}" in out
    )


def test_an_empty_dead_letter_queue_is_reported_and_nothing_moves(aws, capsys):
    aws.the_tour_sync_dead_letter_queue_holds(0, in_flight=1)
    assert aws.run("--stack", STACK, "--queue", "TourSyncDeadLetterQueue") == 0
    aws.every_expected_call_was_made()
    assert "TourSyncDeadLetterQueue is empty (1 being read by someone right now): nothing to redrive." in (
        capsys.readouterr().out
    )


def test_a_move_already_running_is_reported_and_no_second_one_starts(aws, capsys):
    aws.stack_has_queues({"TourSyncQueue": SYNC_URL, "TourSyncDeadLetterQueue": DLQ_URL})
    aws.sources(DLQ_URL, [SYNC_URL])
    aws.dead_letter_queue_holds(3)
    aws.move_tasks(
        [
            {
                "TaskHandle": HANDLE,
                "Status": "RUNNING",
                "SourceArn": DLQ_ARN,
                "ApproximateNumberOfMessagesMoved": 1,
                "ApproximateNumberOfMessagesToMove": 3,
            }
        ]
    )
    assert aws.run("--stack", STACK, "--queue", "TourSyncDeadLetterQueue") == 1
    aws.every_expected_call_was_made()
    assert "already running (1 of 3 moved)" in capsys.readouterr().err


def test_a_queue_the_stack_does_not_have_is_refused_naming_its_queues(aws, capsys):
    aws.stack_has_queues({"TourSyncQueue": SYNC_URL, "TourSyncDeadLetterQueue": DLQ_URL})
    assert aws.run("--stack", STACK, "--queue", "TourSyncDLQ") == 1
    assert "has no queue TourSyncDLQ; its queues: TourSyncDeadLetterQueue, TourSyncQueue" in capsys.readouterr().err


def test_a_queue_that_is_not_a_dead_letter_queue_is_refused_naming_the_ones_that_are(aws, capsys):
    aws.stack_has_queues({"TourSyncQueue": SYNC_URL, "TourSyncDeadLetterQueue": DLQ_URL})
    aws.sources(SYNC_URL, [])
    aws.sources(DLQ_URL, [SYNC_URL])  # the listing of the stack's dead-letter queues
    aws.sources(SYNC_URL, [])
    assert aws.run("--stack", STACK, "--queue", "TourSyncQueue") == 1
    aws.every_expected_call_was_made()
    assert "TourSyncQueue is not a dead-letter queue" in (err := capsys.readouterr().err)
    assert "the stack's dead-letter queues: TourSyncDeadLetterQueue" in err


def test_an_unknown_stack_is_reported_in_one_line(aws, capsys):
    aws.cfn_stub.add_client_error(
        "list_stack_resources",
        service_error_code="ValidationError",
        service_message=f"Stack with id {STACK} does not exist",
    )
    assert aws.run("--stack", STACK, "--queue", "TourSyncDeadLetterQueue") == 1
    assert f"there is no stack {STACK}" in capsys.readouterr().err


def test_without_a_region_it_asks_for_one(aws, capsys):
    assert redrive.main(["--stack", STACK, "--queue", "Q"], session_factory=lambda **_: FakeSession(aws, None)) == 2
    assert "no AWS region" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["--queue", "TourSyncDeadLetterQueue"],
        ["--stack", STACK],
        ["--stack", STACK, "--queue", "TourSyncDeadLetterQueue", "--rate", "0"],
        ["--stack", STACK, "--queue", "TourSyncDeadLetterQueue", "--rate", "501"],
    ],
)
def test_usage_errors_exit_2_before_calling_aws(aws, argv):
    with pytest.raises(SystemExit) as exit_:
        aws.run(*argv)
    assert exit_.value.code == 2
    assert aws.sessions == []
