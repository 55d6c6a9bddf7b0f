"""pump.py does what Lambda's SQS and DynamoDB Streams event source mappings and EventBridge schedules would, against
real moto queues, a real DynamoDB Local (tables and their streams) and a fake of cargo lambda watch's invoke API."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from cfn_template import TemplateError
from conftest import LOCAL_DIR, eventually
from provision import aws_client, provision
from pump import (
    Pump,
    StreamReader,
    StreamSource,
    deliver_sqs_batch,
    filter_patterns,
    record_passes,
)

TEMPLATE = Path(__file__).with_name("pump-template.yaml")
ROLLUPS_PATTERN = (
    '{"dynamodb": {"Keys": {"pk": {"S": [{"prefix": "TOUR#"}]}, '
    '"sk": {"S": ["TOUR", "RATING", "STAFF_RATING", {"prefix": "MSG#"}]}}}}'
)


@pytest.fixture
def provisioned(moto, dynamodb):
    """The test template's queues in moto and its table, with its stream, in DynamoDB Local (as the stack has them)."""
    return provision(moto, TEMPLATE, dynamodb_endpoint=dynamodb)


@pytest.fixture
def queues(provisioned):
    return provisioned.queues


@pytest.fixture
def pump(moto, dynamodb, fake_lambda, provisioned):
    return Pump(moto, fake_lambda.url, TEMPLATE, schedule_period=0.2, poll_wait=1, dynamodb_endpoint=dynamodb)


@pytest.fixture
def running(pump):
    """Starts the pump (every source) and stops it after the test."""

    def start():
        pump.start()
        return pump

    yield start
    pump.stop()


def send(moto, queue_url: str, *bodies: str) -> list[str]:
    sqs = aws_client("sqs", moto)
    return [sqs.send_message(QueueUrl=queue_url, MessageBody=body)["MessageId"] for body in bodies]


def visible_and_hidden(moto, queue_url: str) -> int:
    attributes = aws_client("sqs", moto).get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def source(pump: Pump, queue_id: str):
    return next(s for s in pump.sqs_sources if s.queue_id == queue_id)


def test_the_template_gives_the_event_sources(pump, queues):
    work = source(pump, "WorkQueue")
    plain = source(pump, "PlainQueue")

    assert (work.binary, work.batch_size, work.reports_item_failures) == ("work-worker", 10, True)
    assert (plain.binary, plain.batch_size, plain.reports_item_failures) == ("plain-worker", 3, False)
    assert work.queue_arn == queues["WorkQueue"]["Arn"]
    assert [s.binary for s in pump.schedule_sources] == ["ticker"]  # the DISABLED schedule is not played


def test_a_batch_is_delivered_as_an_sqs_event_and_deleted_after_success(moto, fake_lambda, pump, queues):
    url = queues["WorkQueue"]["QueueUrl"]
    ids = send(moto, url, '{"n": 1}', '{"n": 2}', '{"n": 3}')

    delivery = deliver_sqs_batch(source(pump, "WorkQueue"), pump.sqs, fake_lambda.url, "us-east-1", 1)

    assert delivery.received == 3 and delivery.deleted == 3 and delivery.failed == []
    [event] = fake_lambda.events_for("work-worker")
    record = event["Records"][0]
    assert sorted(r["messageId"] for r in event["Records"]) == sorted(ids)
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == queues["WorkQueue"]["Arn"]
    assert record["awsRegion"] == "us-east-1"
    assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert {"receiptHandle", "messageAttributes", "body"} <= record.keys()
    assert visible_and_hidden(moto, url) == 0


def test_message_attributes_arrive_in_lambdas_shape(moto, fake_lambda, pump, queues):
    aws_client("sqs", moto).send_message(
        QueueUrl=queues["WorkQueue"]["QueueUrl"],
        MessageBody="{}",
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "tour.updated"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x01\x02"},
        },
    )

    deliver_sqs_batch(source(pump, "WorkQueue"), pump.sqs, fake_lambda.url, "us-east-1", 1)

    [event] = fake_lambda.events_for("work-worker")
    attributes = event["Records"][0]["messageAttributes"]
    assert attributes["kind"] == {
        "stringValue": "tour.updated", "stringListValues": [], "binaryListValues": [], "dataType": "String",
    }
    assert attributes["blob"]["binaryValue"] == "AQI="
    assert "md5OfMessageAttributes" in event["Records"][0]


def test_reported_item_failures_stay_on_the_queue_and_the_rest_are_deleted(moto, fake_lambda, pump, queues):
    url = queues["WorkQueue"]["QueueUrl"]
    good, bad = send(moto, url, "good", "bad")
    fake_lambda.respond = lambda binary, event: (200, {"batchItemFailures": [{"itemIdentifier": bad}]})

    delivery = deliver_sqs_batch(source(pump, "WorkQueue"), pump.sqs, fake_lambda.url, "us-east-1", 1)

    assert delivery.failed == [bad] and delivery.deleted == 1
    assert visible_and_hidden(moto, url) == 1
    again = eventually(lambda: aws_client("sqs", moto).receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages"))
    assert [m["MessageId"] for m in again] == [bad]


def test_a_function_error_fails_the_whole_batch(moto, fake_lambda, pump, queues):
    url = queues["WorkQueue"]["QueueUrl"]
    send(moto, url, "a", "b")
    fake_lambda.respond = lambda binary, event: (200, {"errorType": "HandlerError", "errorMessage": "boom"})

    delivery = deliver_sqs_batch(source(pump, "WorkQueue"), pump.sqs, fake_lambda.url, "us-east-1", 1)

    assert delivery.deleted == 0 and len(delivery.failed) == 2
    assert visible_and_hidden(moto, url) == 2


def test_an_http_error_from_the_runtime_fails_the_whole_batch(moto, fake_lambda, pump, queues):
    url = queues["WorkQueue"]["QueueUrl"]
    send(moto, url, "a")
    fake_lambda.respond = lambda binary, event: (500, {"message": "runtime down"})

    delivery = deliver_sqs_batch(source(pump, "WorkQueue"), pump.sqs, fake_lambda.url, "us-east-1", 1)

    assert delivery.deleted == 0 and len(delivery.failed) == 1


def test_a_failure_naming_an_unknown_message_fails_the_whole_batch(moto, fake_lambda, pump, queues):
    send(moto, queues["WorkQueue"]["QueueUrl"], "a", "b")
    fake_lambda.respond = lambda binary, event: (200, {"batchItemFailures": [{"itemIdentifier": ""}]})

    delivery = deliver_sqs_batch(source(pump, "WorkQueue"), pump.sqs, fake_lambda.url, "us-east-1", 1)

    assert delivery.deleted == 0 and len(delivery.failed) == 2


def test_item_failures_are_ignored_without_report_batch_item_failures(moto, fake_lambda, pump, queues):
    url = queues["PlainQueue"]["QueueUrl"]
    [only] = send(moto, url, "a")
    fake_lambda.respond = lambda binary, event: (200, {"batchItemFailures": [{"itemIdentifier": only}]})

    delivery = deliver_sqs_batch(source(pump, "PlainQueue"), pump.sqs, fake_lambda.url, "us-east-1", 1)

    assert delivery.deleted == 1 and delivery.failed == []


def test_batches_hold_at_most_the_templates_batch_size(moto, fake_lambda, pump, queues):
    send(moto, queues["PlainQueue"]["QueueUrl"], *[f"m{n}" for n in range(5)])

    delivery = deliver_sqs_batch(source(pump, "PlainQueue"), pump.sqs, fake_lambda.url, "us-east-1", 1)

    assert 1 <= delivery.received <= 3


def test_a_poison_message_reaches_the_dead_letter_queue_after_max_receive_count(moto, fake_lambda, pump, queues):
    url, dead_letter_url = queues["WorkQueue"]["QueueUrl"], queues["WorkDeadLetterQueue"]["QueueUrl"]
    good, poison = send(moto, url, "good", "poison")
    fake_lambda.respond = lambda binary, event: (
        200,
        {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "poison"]},
    )
    pump.start()
    try:
        dead = eventually(
            lambda: aws_client("sqs", moto).receive_message(QueueUrl=dead_letter_url).get("Messages"), timeout=20
        )
    finally:
        pump.stop()

    assert [m["MessageId"] for m in dead] == [poison]
    deliveries_of_poison = [
        r for e in fake_lambda.events_for("work-worker") for r in e["Records"] if r["messageId"] == poison
    ]
    assert [r["attributes"]["ApproximateReceiveCount"] for r in deliveries_of_poison] == ["1", "2"]
    assert visible_and_hidden(moto, url) == 0


def test_the_cli_invokes_scheduled_functions_with_a_scheduled_event_and_stops_on_sigterm(
    moto, dynamodb, fake_lambda, queues
):
    process = subprocess.Popen(
        [
            sys.executable, str(LOCAL_DIR / "pump.py"), "--endpoint", moto, "--lambda-base", fake_lambda.url,
            "--dynamodb-endpoint", dynamodb, "--template", str(TEMPLATE), "--schedule-period", "0.2",
            "--poll-wait", "1",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        events = eventually(lambda: len(fake_lambda.events_for("ticker")) >= 2 and fake_lambda.events_for("ticker"))
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=15)

    assert process.returncode == 0, output
    assert events[0]["detail-type"] == "Scheduled Event"
    assert events[0]["source"] == "aws.events"
    assert events[0]["resources"][0].startswith("arn:aws:events:us-east-1:123456789012:rule/")
    assert fake_lambda.events_for("disabled-ticker") == []
    assert "2 DynamoDB stream source(s) (ToursTable->rollups, ToursTable->changes)" in output
    assert "stopped" in output


def test_logs_name_ids_and_counts_but_never_bodies(moto, fake_lambda, pump, queues, capsys):
    send(moto, queues["WorkQueue"]["QueueUrl"], '{"email": "dana.demo@example.com"}')

    deliver_sqs_batch(source(pump, "WorkQueue"), pump.sqs, fake_lambda.url, "us-east-1", 1)

    logged = capsys.readouterr().err
    assert "1 received, 1 deleted" in logged
    assert "dana.demo" not in logged


# --- DynamoDB streams ----------------------------------------------------------------------------------------------


def put(dynamodb, provisioned, *keys: tuple[str, str], **attributes) -> None:
    client = aws_client("dynamodb", dynamodb)
    for pk, sk in keys:
        item = {"pk": {"S": pk}, "sk": {"S": sk}, **attributes}
        client.put_item(TableName=provisioned.tables["ToursTable"]["Ref"], Item=item)


def records_for(fake_lambda, binary: str) -> list[dict]:
    return [record for event in fake_lambda.events_for(binary) for record in event["Records"]]


def keys_of(records: list[dict]) -> list[tuple[str, str]]:
    return [(r["dynamodb"]["Keys"]["pk"]["S"], r["dynamodb"]["Keys"]["sk"]["S"]) for r in records]


def stream_source(pump: Pump, binary: str) -> StreamSource:
    return next(s for s in pump.stream_sources if s.binary == binary)


def test_the_template_gives_the_stream_sources(pump, provisioned, queues):
    rollups = stream_source(pump, "rollups")
    changes = stream_source(pump, "changes")

    assert rollups.table_name == "tour-booking-local-ToursTable"
    # What `!GetAtt ToursTable.StreamArn` gives locally.
    assert rollups.stream_arn == provisioned.tables["ToursTable"]["StreamArn"]
    assert (rollups.starting_position, rollups.batch_size, rollups.batching_window) == ("TRIM_HORIZON", 3, 1.0)
    assert (rollups.bisect_on_error, rollups.max_retry_attempts, rollups.reports_item_failures) == (True, 2, False)
    assert rollups.on_failure_queue_url == queues["RollupsDeadLetterQueue"]["QueueUrl"]
    assert rollups.function_arn == "arn:aws:lambda:us-east-1:123456789012:function:tour-booking-local-RollupsFunction"
    assert len(rollups.filters) == 1
    assert (changes.batch_size, changes.bisect_on_error, changes.reports_item_failures) == (10, False, True)
    assert (changes.filters, changes.on_failure_queue_url, changes.max_retry_attempts) == ((), None, 1)
    assert [s.binary for s in pump.stream_sources] == ["rollups", "changes"]  # Enabled: false is not played


def test_stream_records_arrive_in_lambdas_shape_in_order_and_in_batches_of_batch_size(
    dynamodb, fake_lambda, provisioned, running
):
    tours = [(f"TOUR#{n}", "TOUR") for n in range(6)]
    put(dynamodb, provisioned, *tours, status={"S": "Scheduled"}, photo={"B": b"\x01\x02"})
    put(dynamodb, provisioned, ("TOUR#0", "TOUR"), status={"S": "Confirmed"})
    aws_client("dynamodb", dynamodb).delete_item(
        TableName=provisioned.tables["ToursTable"]["Ref"], Key={"pk": {"S": "TOUR#1"}, "sk": {"S": "TOUR"}}
    )
    pump = running()

    records = eventually(lambda: len(records_for(fake_lambda, "rollups")) >= 8 and records_for(fake_lambda, "rollups"))

    # Written before the pump started (TRIM_HORIZON reads them all at once): 8 records in batches of at most 3.
    assert [len(event["Records"]) for event in fake_lambda.events_for("rollups")] == [3, 3, 2]
    assert keys_of(records) == tours + [("TOUR#0", "TOUR"), ("TOUR#1", "TOUR")]
    assert [r["eventName"] for r in records] == ["INSERT"] * 6 + ["MODIFY", "REMOVE"]
    sequence_numbers = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
    assert sequence_numbers == sorted(sequence_numbers) and len(set(sequence_numbers)) == 8
    stream_arn = provisioned.tables["ToursTable"]["StreamArn"]
    for record in records:
        assert record["eventSource"] == "aws:dynamodb"
        assert record["eventSourceARN"] == stream_arn
        assert record["awsRegion"] == "us-east-1"
        assert {"eventID", "eventVersion"} <= record.keys()
        change = record["dynamodb"]
        assert isinstance(change["ApproximateCreationDateTime"], (int, float))
        assert abs(change["ApproximateCreationDateTime"] - time.time()) < 120
        assert change["StreamViewType"] == "NEW_AND_OLD_IMAGES"
        assert isinstance(change["SizeBytes"], int)
    insert, modify, remove = records[0]["dynamodb"], records[6]["dynamodb"], records[7]["dynamodb"]
    assert "OldImage" not in insert and insert["NewImage"]["photo"] == {"B": "AQI="}  # binary as base64
    assert modify["OldImage"]["status"] == {"S": "Scheduled"} and modify["NewImage"]["status"] == {"S": "Confirmed"}
    assert "NewImage" not in remove and remove["OldImage"]["pk"] == {"S": "TOUR#1"}
    assert len(records_for(fake_lambda, "changes")) == 8  # a second mapping of the same stream gets every record too
    assert pump.stream_sources


def test_the_batching_window_gathers_records_that_come_shortly_after_the_first(
    dynamodb, fake_lambda, provisioned, running
):
    running()
    put(dynamodb, provisioned, ("TOUR#1", "TOUR"))
    time.sleep(0.3)  # well within rollups' MaximumBatchingWindowInSeconds: 1
    put(dynamodb, provisioned, ("TOUR#2", "TOUR"))

    [first, *_] = eventually(lambda: fake_lambda.events_for("rollups"))

    assert keys_of(first["Records"]) == [("TOUR#1", "TOUR"), ("TOUR#2", "TOUR")]


def test_records_no_filter_matches_are_never_delivered(dynamodb, fake_lambda, provisioned, running):
    running()
    put(
        dynamodb, provisioned,
        ("TOUR#1", "TOUR"), ("TOUR#1", "DRAFT"), ("PROPERTY#1", "TOUR"), ("TOUR#1", "RATING"),
        ("TOUR#1", "MSG#0001"), ("TOURS", "TOUR"), ("TOUR#2", "STAFF_RATING"),
    )

    eventually(lambda: len(records_for(fake_lambda, "changes")) >= 7)
    eventually(lambda: ("TOUR#2", "STAFF_RATING") in keys_of(records_for(fake_lambda, "rollups")))

    assert keys_of(records_for(fake_lambda, "rollups")) == [
        ("TOUR#1", "TOUR"), ("TOUR#1", "RATING"), ("TOUR#1", "MSG#0001"), ("TOUR#2", "STAFF_RATING"),
    ]


def test_a_failing_batch_is_bisected_the_good_records_delivered_and_the_poison_one_sent_to_on_failure(
    moto, dynamodb, fake_lambda, provisioned, queues, running, capsys
):
    def respond(binary, event):
        if binary == "rollups" and ("TOUR#poison", "TOUR") in keys_of(event["Records"]):
            return 200, {"errorType": "HandlerError", "errorMessage": "boom"}
        return 200, None

    fake_lambda.respond = respond
    put(dynamodb, provisioned, ("TOUR#1", "TOUR"), ("TOUR#poison", "TOUR"), ("TOUR#2", "TOUR"))
    running()
    dead_letter_url = queues["RollupsDeadLetterQueue"]["QueueUrl"]
    [message] = eventually(
        lambda: aws_client("sqs", moto).receive_message(QueueUrl=dead_letter_url).get("Messages"), timeout=20
    )
    put(dynamodb, provisioned, ("TOUR#3", "TOUR"))  # the shard goes on after the skipped record
    eventually(lambda: ("TOUR#3", "TOUR") in keys_of(records_for(fake_lambda, "rollups")))

    batches = [keys_of(event["Records"]) for event in fake_lambda.events_for("rollups")]
    assert batches == [
        [("TOUR#1", "TOUR"), ("TOUR#poison", "TOUR"), ("TOUR#2", "TOUR")],  # fails: split in halves
        [("TOUR#1", "TOUR")],  # delivered
        [("TOUR#poison", "TOUR"), ("TOUR#2", "TOUR")],  # fails: split again (splits spend no retries)
        [("TOUR#poison", "TOUR")],  # fails, then 2 retries (MaximumRetryAttempts: 2)
        [("TOUR#poison", "TOUR")],
        [("TOUR#poison", "TOUR")],
        [("TOUR#2", "TOUR")],  # delivered after the poison record was skipped: order kept
        [("TOUR#3", "TOUR")],
    ]
    poison_sequence = records_for(fake_lambda, "rollups")[1]["dynamodb"]["SequenceNumber"]
    failure = json.loads(message["Body"])
    assert failure["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert failure["requestContext"]["approximateInvokeCount"] == 5
    assert failure["requestContext"]["functionArn"].endswith(":function:tour-booking-local-RollupsFunction")
    assert failure["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert failure["version"] == "1.0" and failure["timestamp"].endswith("Z")
    info = failure["DDBStreamBatchInfo"]
    assert info["startSequenceNumber"] == info["endSequenceNumber"] == poison_sequence
    assert info["batchSize"] == 1
    assert info["streamArn"] == provisioned.tables["ToursTable"]["StreamArn"]
    assert info["shardId"].startswith("shardId-")
    assert datetime.strptime(info["approximateArrivalOfFirstRecord"], "%Y-%m-%dT%H:%M:%SZ")
    assert "poison" not in message["Body"]  # where the record is, never what it holds
    assert aws_client("sqs", moto).receive_message(QueueUrl=dead_letter_url, WaitTimeSeconds=1).get("Messages") is None
    logged = capsys.readouterr().err
    assert "retries exhausted, 1 record(s)" in logged and "sent to RollupsDeadLetterQueue" in logged


def test_reported_item_failures_retry_from_the_lowest_reported_sequence_number(
    dynamodb, fake_lambda, provisioned, running
):
    answers = []

    def respond(binary, event):
        if binary != "changes":
            return 200, None
        answers.append(keys_of(event["Records"]))
        if len(answers) == 1:  # the first delivery fails the 3rd and 2nd records
            failed = [event["Records"][2], event["Records"][1]]
            return 200, {"batchItemFailures": [{"itemIdentifier": r["dynamodb"]["SequenceNumber"]} for r in failed]}
        return 200, {"batchItemFailures": []}

    fake_lambda.respond = respond
    put(dynamodb, provisioned, ("TOUR#1", "TOUR"), ("TOUR#2", "TOUR"), ("TOUR#3", "TOUR"), ("TOUR#4", "TOUR"))
    running()

    eventually(lambda: len(answers) >= 2)
    time.sleep(0.6)  # a wrongly retried batch would come within the backoff

    assert answers == [
        [("TOUR#1", "TOUR"), ("TOUR#2", "TOUR"), ("TOUR#3", "TOUR"), ("TOUR#4", "TOUR")],
        [("TOUR#2", "TOUR"), ("TOUR#3", "TOUR"), ("TOUR#4", "TOUR")],
    ]


def test_stream_logs_give_shards_sequences_and_counts_but_never_keys_or_images(
    dynamodb, fake_lambda, provisioned, running, capsys
):
    put(dynamodb, provisioned, ("TOUR#dana.demo@example.com", "TOUR"), ("PROPERTY#dana.demo", "TOUR"),
        email={"S": "erin.example@example.com"})
    running()
    eventually(lambda: records_for(fake_lambda, "rollups") and len(records_for(fake_lambda, "changes")) == 2)
    time.sleep(0.3)

    logged = capsys.readouterr().err
    assert "dynamodb ToursTable -> rollups: 1 record(s), shard shardId-" in logged
    assert "1 of 2 record(s)" in logged and "filtered out" in logged
    assert "dana.demo" not in logged and "erin.example" not in logged and "TOUR#" not in logged


def test_a_dynamodb_event_without_dynamodb_endpoint_fails_at_start(moto, fake_lambda, queues):
    result = subprocess.run(
        [
            sys.executable, str(LOCAL_DIR / "pump.py"), "--endpoint", moto, "--lambda-base", fake_lambda.url,
            "--template", str(TEMPLATE),
        ],
        capture_output=True, text=True, timeout=60,
    )

    assert result.returncode == 1
    assert "RollupsFunction's DynamoDB event TableChanges" in result.stderr
    assert "needs --dynamodb-endpoint" in result.stderr


def test_a_filter_pattern_that_is_not_json_fails_at_start(moto, dynamodb, fake_lambda, provisioned, tmp_path):
    broken = tmp_path / "template.yaml"
    broken.write_text(TEMPLATE.read_text().replace('"prefix": "TOUR#"}]', '"prefix": "TOUR#"]'))

    with pytest.raises(TemplateError, match="RollupsFunction's DynamoDB event TableChanges: FilterCriteria pattern 1 "
                                            "is not valid JSON"):
        Pump(moto, fake_lambda.url, broken, dynamodb_endpoint=dynamodb)


def test_filters_match_as_lambdas_content_filtering():
    [rollups] = filter_patterns({"Filters": [{"Pattern": ROLLUPS_PATTERN}]}, "test")

    def keys(pk, sk) -> dict:
        return {"dynamodb": {"Keys": {"pk": {"S": pk}, "sk": {"S": sk}}}}

    assert record_passes((rollups,), keys("TOUR#1", "TOUR"))
    assert record_passes((rollups,), keys("TOUR#1", "MSG#2024"))
    assert not record_passes((rollups,), keys("TOUR#1", "TOURS"))  # a literal is the whole value
    assert not record_passes((rollups,), keys("PROPERTY#1", "TOUR"))
    assert not record_passes((rollups,), {"dynamodb": {"Keys": {"pk": {"S": "TOUR#1"}}}})  # a missing field
    assert not record_passes((rollups,), {"dynamodb": {"Keys": {"pk": {"N": "1"}, "sk": {"S": "TOUR"}}}})
    assert record_passes((), keys("anything", "at all"))  # no filters: everything

    removals, unrated = filter_patterns(
        {"Filters": [
            {"Pattern": '{"eventName": ["REMOVE"]}'},
            {"Pattern": json.dumps(
                {"dynamodb": {"NewImage": {"rating": [{"exists": False}]}, "SizeBytes": [{"anything-but": [0, 1]}]}}
            )},
        ]},
        "test",
    )
    assert record_passes((removals, unrated), {"eventName": "REMOVE", "dynamodb": {"SizeBytes": 0}})  # ORed
    assert record_passes((removals, unrated), {"eventName": "INSERT", "dynamodb": {"SizeBytes": 12}})
    assert not record_passes(
        (removals, unrated), {"eventName": "INSERT", "dynamodb": {"SizeBytes": 12, "NewImage": {"rating": {"N": "5"}}}}
    )
    assert not record_passes((removals, unrated), {"eventName": "INSERT", "dynamodb": {"SizeBytes": 1}})
    literals, not_x = filter_patterns(
        {"Filters": [{"Pattern": '{"n": [1, true, null]}'}, {"Pattern": '{"s": [{"anything-but": {"prefix": "x"}}]}'}]},
        "test",
    )
    assert all(record_passes((literals,), {"n": value}) for value in (1, 1.0, True, None, [2, 1]))
    assert not any(record_passes((literals,), {"n": value}) for value in ("1", 2, False, {}))  # JSON types differ
    assert record_passes((not_x,), {"s": "ab"})
    assert not record_passes((not_x,), {"s": "xy"}) and not record_passes((not_x,), {})
    with pytest.raises(TemplateError, match=r'"numeric".*not played locally'):
        filter_patterns({"Filters": [{"Pattern": '{"n": [{"numeric": [">", 1]}]}'}]}, "test")
    with pytest.raises(TemplateError, match="must be a non-empty array"):
        filter_patterns({"Filters": [{"Pattern": '{"eventName": "REMOVE"}'}]}, "test")


# A stream whose shards split is what DynamoDB Local never shows: shards and records played in memory instead.


class FakeStreams:
    """DescribeStream, GetShardIterator and GetRecords of the dynamodbstreams client, over in-memory shards."""

    def __init__(self):
        self.shards: dict[str, dict] = {}  # id -> {"parent": id | None, "records": [...], "closed": bool}
        self.reads: list[str] = []

    def add_shard(self, shard_id: str, parent: str | None = None, sequences=(), closed: bool = False) -> None:
        self.shards[shard_id] = {"parent": parent, "records": [], "closed": closed}
        for sequence in sequences:
            self.append(shard_id, sequence)

    def append(self, shard_id: str, sequence: int) -> None:
        self.shards[shard_id]["records"].append({
            "eventID": f"e{sequence}", "eventName": "INSERT", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
            "awsRegion": "ddblocal",
            "dynamodb": {
                "ApproximateCreationDateTime": datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
                "Keys": {"pk": {"S": f"TOUR#{sequence}"}, "sk": {"S": "TOUR"}},
                "SequenceNumber": f"{sequence:021d}", "SizeBytes": 20, "StreamViewType": "KEYS_ONLY",
            },
        })

    def describe_stream(self, StreamArn, **_):  # noqa: N803 - boto3's parameter names
        shards = [
            {"ShardId": shard_id, **({"ParentShardId": shard["parent"]} if shard["parent"] else {})}
            for shard_id, shard in self.shards.items()
        ]
        return {"StreamDescription": {"StreamArn": StreamArn, "Shards": shards}}

    def get_shard_iterator(self, StreamArn, ShardId, ShardIteratorType, SequenceNumber=None):  # noqa: N803
        start = len(self.shards[ShardId]["records"]) if ShardIteratorType == "LATEST" else 0
        return {"ShardIterator": f"{ShardId}|{start}"}

    def get_records(self, ShardIterator, Limit):  # noqa: N803
        shard_id, start = ShardIterator.split("|")
        shard, start = self.shards[shard_id], int(start)
        records = shard["records"][start:start + Limit]
        self.reads.append(shard_id)
        end = start + len(records)
        done = shard["closed"] and end == len(shard["records"])
        return {"Records": records, **({} if done else {"NextShardIterator": f"{shard_id}|{end}"})}


def fake_stream_source(starting_position: str) -> StreamSource:
    return StreamSource(
        function_id="RollupsFunction", binary="rollups", function_arn="arn:aws:lambda:::function:f",
        event_name="TableChanges", table_id="ToursTable", table_name="t", stream_arn="arn:stream",
        starting_position=starting_position, batch_size=10, batching_window=0, bisect_on_error=False,
        max_retry_attempts=0, reports_item_failures=False, filters=(),
    )


def delivered_sequences(fake_lambda) -> list[int]:
    return [int(r["dynamodb"]["SequenceNumber"]) for r in records_for(fake_lambda, "rollups")]


def test_a_child_shard_is_read_only_after_its_parent_is_done_and_new_shards_are_found(fake_lambda):
    streams = FakeStreams()
    streams.add_shard("child", parent="parent", sequences=[3, 4])  # listed first: order comes from lineage
    streams.add_shard("parent", sequences=[1, 2], closed=True)
    reader = StreamReader(fake_stream_source("TRIM_HORIZON"), streams, None, fake_lambda.url, "us-east-1",
                          threading.Event(), shard_refresh=3600)

    for _ in range(3):
        reader.poll()

    assert delivered_sequences(fake_lambda) == [1, 2, 3, 4]
    assert streams.reads.index("child") > max(i for i, shard in enumerate(streams.reads) if shard == "parent")
    assert "parent" in reader.finished and "parent" not in reader.shards
    streams.add_shard("later", sequences=[5])
    reader.refresh_shards()
    reader.poll()
    assert delivered_sequences(fake_lambda) == [1, 2, 3, 4, 5]
    assert [len(event["Records"]) for event in fake_lambda.events_for("rollups")] == [2, 2, 1]
    record = records_for(fake_lambda, "rollups")[0]
    assert record["dynamodb"]["ApproximateCreationDateTime"] == 1767323045
    assert record["awsRegion"] == "us-east-1" and record["eventSourceARN"] == "arn:stream"


def test_latest_skips_what_was_there_but_reads_a_shard_found_later_from_its_start(fake_lambda):
    streams = FakeStreams()
    streams.add_shard("open", sequences=[1, 2])
    reader = StreamReader(fake_stream_source("LATEST"), streams, None, fake_lambda.url, "us-east-1",
                          threading.Event(), shard_refresh=3600)

    reader.poll()
    streams.append("open", 3)
    reader.poll()
    streams.add_shard("new", sequences=[4])
    reader.refresh_shards()
    reader.poll()

    assert delivered_sequences(fake_lambda) == [3, 4]
