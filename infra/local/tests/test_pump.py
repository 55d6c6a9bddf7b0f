"""pump.py does what Lambda's SQS event source mapping and EventBridge schedules would, against real moto queues
and a fake of cargo lambda watch's invoke API."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import LOCAL_DIR, eventually
from provision import aws_client, provision
from pump import Pump, deliver_sqs_batch

TEMPLATE = Path(__file__).with_name("pump-template.yaml")


@pytest.fixture
def queues(moto):
    return provision(moto, TEMPLATE).queues


@pytest.fixture
def pump(moto, fake_lambda, queues):
    return Pump(moto, fake_lambda.url, TEMPLATE, schedule_period=0.2, poll_wait=1)


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


def test_the_cli_invokes_scheduled_functions_with_a_scheduled_event_and_stops_on_sigterm(moto, fake_lambda, queues):
    process = subprocess.Popen(
        [
            sys.executable, str(LOCAL_DIR / "pump.py"), "--endpoint", moto, "--lambda-base", fake_lambda.url,
            "--template", str(TEMPLATE), "--schedule-period", "0.2", "--poll-wait", "1",
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
    assert "stopped" in output


def test_logs_name_ids_and_counts_but_never_bodies(moto, fake_lambda, pump, queues, capsys):
    send(moto, queues["WorkQueue"]["QueueUrl"], '{"email": "dana.demo@example.com"}')

    deliver_sqs_batch(source(pump, "WorkQueue"), pump.sqs, fake_lambda.url, "us-east-1", 1)

    logged = capsys.readouterr().err
    assert "1 received, 1 deleted" in logged
    assert "dana.demo" not in logged
