"""infra/local/sms_sandbox.py: the local End User Messaging SMS answers boto3's real `pinpoint-sms-voice-v2` client
as the service would (results, errors with their reasons), keeps what it accepted, and delivers delivery events and
prospects' replies as the Lambda SNS events the real service's destinations would produce."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import LOCAL_DIR, eventually, free_port, serving

import sms_sandbox

PROSPECT = "+15125550100"
OTHER = "+15125550199"
OUR_NUMBER = "+17375550123"


class Receiver:
    """A Lambda's invoke URL: records every event POSTed to it; `on_event` may look around when one arrives."""

    def __init__(self):
        self.events: list[dict] = []
        self.lock = threading.Lock()
        self.on_event = lambda event: None
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                event = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.on_event(event)
                with receiver.lock:
                    receiver.events.append(event)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    def messages(self) -> list[dict]:
        """The SNS messages of the events so far, parsed."""
        with self.lock:
            return [json.loads(e["Records"][0]["Sns"]["Message"]) for e in self.events]


@pytest.fixture
def receivers():
    events, inbound = Receiver(), Receiver()
    with (
        serving(events.server, poll_interval=0.02) as events_url,
        serving(inbound.server, poll_interval=0.02) as inbound_url,
    ):
        events.url, inbound.url = events_url, inbound_url
        yield events, inbound


@pytest.fixture
def sandbox(receivers):
    events, inbound = receivers
    server, url = sms_sandbox.start(events_url=events.url, inbound_url=inbound.url, delay=0.05)
    try:
        yield url
    finally:
        server.shutdown()


SESSION = boto3.session.Session()  # one session: it reads the service model once, not for every client


def client(url: str):
    """boto3's real client, trying each call once, so an error answer is seen as it is, never retried away."""
    return SESSION.client(
        "pinpoint-sms-voice-v2", endpoint_url=url, region_name="us-east-1", aws_access_key_id="test",
        aws_secret_access_key="test", config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


def control(url: str, method: str, path: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def texts(url: str, to: str | None = None) -> list[dict]:
    return control(url, "GET", "/_sandbox/texts" + (f"?to={to}" if to else ""))["texts"]


def send(sms, to=PROSPECT, body="Your tour is confirmed for Dec 1 at 10:00.", **extra) -> str:
    extra.setdefault("MessageType", "TRANSACTIONAL")
    return sms.send_text_message(DestinationPhoneNumber=to, OriginationIdentity=OUR_NUMBER, MessageBody=body,
                                 **extra)["MessageId"]


def error_of(call) -> dict:
    with pytest.raises(ClientError) as raised:
        call()
    return raised.value.response


def test_send_text_message_keeps_the_text_and_delivers_it(receivers):
    events, _ = receivers
    server, url = sms_sandbox.start(events_url=events.url, delay=0.5)
    try:
        message_id = send(client(url), body="Hi Ana", ConfigurationSetName="tours", Context={"tour": "t-1"})
        [text] = texts(url)
        assert text["message_id"] == message_id and text["state"] == "pending"
        assert (text["to"], text["from"], text["body"]) == (PROSPECT, OUR_NUMBER, "Hi Ana")
        assert (text["message_type"], text["configuration_set"], text["context"]) == ("TRANSACTIONAL", "tours",
                                                                                       {"tour": "t-1"})
        assert (text["encoding"], text["segments"]) == ("GSM", 1)
        assert eventually(lambda: texts(url)[0]["state"] == "delivered", timeout=3)
        assert texts(url, to=OTHER) == [] and [t["message_id"] for t in texts(url, to=PROSPECT)] == [message_id]
        assert control(url, "DELETE", "/_sandbox/texts") == {"cleared": 1} and texts(url) == []
    finally:
        server.shutdown()


@pytest.mark.parametrize(
    "body, encoding, parts",
    [("a" * 160, "GSM", 1), ("a" * 161, "GSM", 2), ("a" * 306, "GSM", 2), ("a" * 307, "GSM", 3),
     ("€" * 80, "GSM", 1), ("€" * 81, "GSM", 2),  # an extension character takes two septets
     ("é" * 70, "GSM", 1), ("ó" * 70, "Unicode", 1), ("ó" * 71, "Unicode", 2), ("ó" * 134, "Unicode", 2),
     ("ó" * 135, "Unicode", 3), ("🙂" * 35, "Unicode", 1), ("🙂" * 36, "Unicode", 2)],
)
def test_message_parts_follow_gsm7_and_ucs2_rules(sandbox, body, encoding, parts):
    send(client(sandbox), body=body)
    [text] = texts(sandbox)
    assert (text["encoding"], text["segments"]) == (encoding, parts)


def test_invalid_destination_is_a_validation_exception_and_nothing_is_kept(sandbox):
    sms = client(sandbox)
    for number in ("555-0100", "+0123456789", "+1" + "2" * 19):
        answer = error_of(lambda: send(sms, to=number))
        assert answer["Error"]["Code"] == "ValidationException"
        assert answer["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert answer["Reason"] == "FIELD_VALIDATION_FAILED"
        assert answer["Fields"][0]["Name"] == "DestinationPhoneNumber"
        assert number not in answer["Error"]["Message"]
    answer = error_of(lambda: send(sms, MessageType="URGENT"))
    assert (answer["Error"]["Code"], answer["Fields"][0]["Name"]) == ("ValidationException", "MessageType")
    answer = error_of(lambda: send(sms, body="x" * 1601))
    assert (answer["Error"]["Code"], answer["Fields"][0]["Name"]) == ("ValidationException", "MessageBody")
    assert texts(sandbox) == []


def test_an_opted_out_number_is_refused_with_a_conflict(sandbox):
    sms = client(sandbox)
    sms.put_opted_out_number(OptOutListName="Default", OptedOutNumber=PROSPECT)
    answer = error_of(lambda: send(sms))
    assert answer["Error"]["Code"] == "ConflictException"
    assert answer["Reason"] == "DESTINATION_PHONE_NUMBER_OPTED_OUT"
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error_of(lambda: send(sms, DryRun=True))["Reason"] == "DESTINATION_PHONE_NUMBER_OPTED_OUT"
    send(sms, to=OTHER)
    sms.delete_opted_out_number(OptOutListName="Default", OptedOutNumber=PROSPECT)
    send(sms)
    assert [t["to"] for t in texts(sandbox)] == [OTHER, PROSPECT]


def test_opt_out_list_operations_answer_the_models_members(sandbox):
    sms = client(sandbox)
    put = sms.put_opted_out_number(OptOutListName="Default", OptedOutNumber=PROSPECT)
    assert put["OptOutListName"] == "Default" and put["OptOutListArn"].endswith(":opt-out-list/Default")
    assert put["OptedOutNumber"] == PROSPECT and put["EndUserOptedOut"] is False
    sms.put_opted_out_number(OptOutListName=put["OptOutListArn"], OptedOutNumber=OTHER)
    listed = sms.describe_opted_out_numbers(OptOutListName="Default")["OptedOutNumbers"]
    assert [n["OptedOutNumber"] for n in listed] == [PROSPECT, OTHER]
    assert listed[0]["OptedOutTimestamp"] == put["OptedOutTimestamp"]
    only = sms.describe_opted_out_numbers(OptOutListName="Default", OptedOutNumbers=[OTHER])["OptedOutNumbers"]
    assert [n["OptedOutNumber"] for n in only] == [OTHER]
    by_end_user = sms.describe_opted_out_numbers(
        OptOutListName="Default", Filters=[{"Name": "end-user-opted-out", "Values": ["true"]}])
    assert by_end_user["OptedOutNumbers"] == []
    first = sms.describe_opted_out_numbers(OptOutListName="Default", MaxResults=1)
    second = sms.describe_opted_out_numbers(OptOutListName="Default", MaxResults=1, NextToken=first["NextToken"])
    assert [first["OptedOutNumbers"][0]["OptedOutNumber"], second["OptedOutNumbers"][0]["OptedOutNumber"]] == [
        PROSPECT, OTHER] and "NextToken" not in second
    deleted = sms.delete_opted_out_number(OptOutListName="Default", OptedOutNumber=PROSPECT)
    assert deleted["OptedOutNumber"] == PROSPECT
    answer = error_of(lambda: sms.delete_opted_out_number(OptOutListName="Default", OptedOutNumber=PROSPECT))
    assert (answer["Error"]["Code"], answer["ResourceType"]) == ("ResourceNotFoundException", "opted-out-number")
    answer = error_of(lambda: sms.describe_opted_out_numbers(OptOutListName="Elsewhere"))
    assert (answer["Error"]["Code"], answer["ResourceType"]) == ("ResourceNotFoundException", "opt-out-list")
    assert [n["number"] for n in control(sandbox, "GET", "/_sandbox/opted-out")["opted_out"]] == [OTHER]


def test_delivery_event_reaches_the_lambda_as_an_sns_event(sandbox, receivers):
    events, _ = receivers
    message_id = send(client(sandbox), body="ó" * 71, ConfigurationSetName="tours", Context={"tour": "t-1"})
    eventually(lambda: events.events, timeout=3)
    [record] = events.events[0]["Records"]
    assert record["EventSource"] == "aws:sns" and record["EventVersion"] == "1.0"
    sns = record["Sns"]
    assert sns["Type"] == "Notification" and sns["TopicArn"].startswith("arn:aws:sns:us-east-1:")
    assert sns["MessageId"] and sns["Timestamp"].endswith("Z")
    for key in ("SignatureVersion", "Signature", "SigningCertUrl", "UnsubscribeUrl", "MessageAttributes"):
        assert key in sns  # aws_lambda_events' SnsMessage requires them
    event = json.loads(sns["Message"])
    assert event["eventType"] == "TEXT_DELIVERED" and event["messageStatus"] == "DELIVERED"
    assert event["isFinal"] is True and event["messageStatusDescription"]
    assert (event["messageId"], event["destinationPhoneNumber"], event["originationPhoneNumber"]) == (
        message_id, PROSPECT, OUR_NUMBER)
    assert (event["context"], event["configurationSetName"], event["messageType"]) == (
        {"tour": "t-1"}, "tours", "TRANSACTIONAL")
    assert (event["totalMessageParts"], event["messageEncoding"]) == (2, "Unicode")
    assert event["eventTimestamp"] >= event["messageRequestTimestamp"]
    assert texts(sandbox)[0]["event_delivery"] == 200


def test_dry_run_is_validated_but_neither_kept_nor_delivered(sandbox, receivers):
    events, _ = receivers
    sms = client(sandbox)
    assert send(sms, DryRun=True)
    assert error_of(lambda: send(sms, to="+0512", DryRun=True))["Error"]["Code"] == "ValidationException"
    send(sms, to=OTHER)
    eventually(lambda: events.messages(), timeout=3)
    assert [m["destinationPhoneNumber"] for m in events.messages()] == [OTHER]
    assert [t["to"] for t in texts(sandbox)] == [OTHER]


def test_failed_delivery_fault_fails_only_those_numbers(sandbox, receivers):
    events, _ = receivers
    sms = client(sandbox)
    control(sandbox, "POST", "/_sandbox/faults", {"fail_delivery_to": [PROSPECT]})
    failing, fine = send(sms), send(sms, to=OTHER)
    eventually(lambda: len(events.messages()) == 2, timeout=3)
    by_id = {m["messageId"]: m for m in events.messages()}
    assert (by_id[failing]["eventType"], by_id[failing]["messageStatus"]) == (
        "TEXT_CARRIER_UNREACHABLE", "CARRIER_UNREACHABLE")
    assert by_id[failing]["isFinal"] is True
    assert by_id[fine]["eventType"] == "TEXT_DELIVERED"
    assert {t["message_id"]: t["state"] for t in texts(sandbox)} == {failing: "failed", fine: "delivered"}
    control(sandbox, "POST", "/_sandbox/faults", {"failure": "TEXT_UNREACHABLE"})
    unreachable = send(sms)
    eventually(lambda: len(events.messages()) == 3, timeout=3)
    assert {m["messageId"]: m["messageStatus"] for m in events.messages()}[unreachable] == "UNREACHABLE"
    control(sandbox, "DELETE", "/_sandbox/faults")
    again = send(sms)
    eventually(lambda: len(events.messages()) == 4, timeout=3)
    assert {m["messageId"]: m["eventType"] for m in events.messages()}[again] == "TEXT_DELIVERED"


def test_throttle_fault_answers_a_throttling_exception(sandbox):
    sms = client(sandbox)
    control(sandbox, "POST", "/_sandbox/faults", {"throttle": True})
    answer = error_of(lambda: send(sms))
    assert answer["Error"]["Code"] == "ThrottlingException"
    assert answer["ResponseMetadata"]["RetryAttempts"] == 0
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert texts(sandbox) == []
    control(sandbox, "DELETE", "/_sandbox/faults")
    send(sms)
    assert len(texts(sandbox)) == 1


def test_a_reply_reaches_the_lambda_as_the_two_way_payload(sandbox, receivers):
    _, inbound = receivers
    sms = client(sandbox)
    send(sms, to=OTHER)
    message_id = send(sms)
    answer = control(sandbox, "POST", "/_sandbox/replies", {"from": PROSPECT, "to": OUR_NUMBER, "body": "C"})
    assert answer["deliveries"] == [200]
    [record] = inbound.events[0]["Records"]
    assert record["EventSource"] == "aws:sns" and record["Sns"]["Type"] == "Notification"
    message = json.loads(record["Sns"]["Message"])
    assert message == {
        "originationNumber": PROSPECT, "destinationNumber": OUR_NUMBER, "messageKeyword": "KEYWORD_123456789012",
        "messageBody": "C", "inboundMessageId": answer["inboundMessageId"], "previousPublishedMessageId": message_id,
    }


def test_a_stop_reply_opts_the_number_out_before_it_is_delivered(sandbox, receivers):
    _, inbound = receivers
    seen = []
    inbound.on_event = lambda event: seen.append(control(sandbox, "GET", "/_sandbox/opted-out")["opted_out"])
    sms = client(sandbox)
    send(sms)
    control(sandbox, "POST", "/_sandbox/replies", {"from": PROSPECT, "to": OUR_NUMBER, "body": "  stop "})
    assert [e["number"] for e in seen[0]] == [PROSPECT] and seen[0][0]["end_user_opted_out"] is True
    assert inbound.messages()[0]["messageKeyword"] == "STOP"
    [entry] = sms.describe_opted_out_numbers(OptOutListName="Default")["OptedOutNumbers"]
    assert (entry["OptedOutNumber"], entry["EndUserOptedOut"]) == (PROSPECT, True)
    assert error_of(lambda: send(sms))["Reason"] == "DESTINATION_PHONE_NUMBER_OPTED_OUT"
    control(sandbox, "POST", "/_sandbox/replies", {"from": PROSPECT, "to": OUR_NUMBER, "body": "Unstop"})
    assert seen[1] == []
    send(sms)
    control(sandbox, "POST", "/_sandbox/replies", {"from": PROSPECT, "to": OUR_NUMBER, "body": "Please stop by at 3"})
    assert seen[2] == [] and len(texts(sandbox)) == 2


@pytest.mark.parametrize("keyword", sorted(sms_sandbox.OPT_OUT_KEYWORDS))
def test_every_opt_out_keyword_opts_out(sandbox, keyword):
    control(sandbox, "POST", "/_sandbox/replies", {"from": PROSPECT, "to": OUR_NUMBER, "body": keyword.lower()})
    assert error_of(lambda: send(client(sandbox)))["Error"]["Code"] == "ConflictException"


def test_twice_delivers_the_same_inbound_message_twice(sandbox, receivers):
    _, inbound = receivers
    answer = control(sandbox, "POST", "/_sandbox/replies",
                     {"from": PROSPECT, "to": OUR_NUMBER, "body": "C", "twice": True})
    assert answer["deliveries"] == [200, 200]
    first, second = inbound.messages()
    assert first == second and first["inboundMessageId"] == answer["inboundMessageId"]
    assert "previousPublishedMessageId" not in first  # nothing was sent to that number


def test_other_operations_are_refused_as_not_emulated(sandbox):
    answer = error_of(lambda: client(sandbox).describe_pools())
    assert answer["Error"]["Code"] == "ValidationException"
    assert answer["Error"]["Message"] == "operation DescribePools is not emulated"
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_nothing_personal_is_logged(receivers, capsys):
    events, inbound = receivers
    server, url = sms_sandbox.start(events_url=events.url, inbound_url=inbound.url, delay=0.01, verbose=True)
    try:
        sms = client(url)
        send(sms, body="Secret tour details")
        error_of(lambda: send(sms, to="512-555-0100"))
        control(url, "POST", "/_sandbox/replies", {"from": PROSPECT, "to": OUR_NUMBER, "body": "Private reply"})
        texts(url, to=PROSPECT)
        eventually(lambda: texts(url)[0]["event_delivery"] == 200, timeout=3)
    finally:
        server.shutdown()
    out = capsys.readouterr().out
    assert "SendTextMessage -> ok" in out and "SendTextMessage -> ValidationException" in out
    assert "delivery event TEXT_DELIVERED -> 200" in out and "inbound reply -> deliveries [200]" in out
    for personal in (PROSPECT[1:], "555-0100", OUR_NUMBER[1:], "Secret", "Private"):
        assert personal not in out


def test_command_line_prints_its_url_when_ready():
    port = free_port()
    process = subprocess.Popen([sys.executable, str(LOCAL_DIR / "sms_sandbox.py"), "--port", str(port)],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == f"sms sandbox listening on http://127.0.0.1:{port}"
        send(client(f"http://127.0.0.1:{port}"))
        assert len(texts(f"http://127.0.0.1:{port}")) == 1
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_with_self_managed_opt_outs_a_keyword_reaches_the_receiver_and_opts_nothing_out(receivers):
    events, inbound = receivers
    server, url = sms_sandbox.start(events_url=events.url, inbound_url=inbound.url, delay=0.05,
                                    self_managed_opt_outs=True)
    try:
        for keyword in ("STOP", "cancel"):
            control(url, "POST", "/_sandbox/replies", {"from": PROSPECT, "to": OUR_NUMBER, "body": keyword})
        assert control(url, "GET", "/_sandbox/opted-out")["opted_out"] == []
        assert [m["messageBody"] for m in inbound.messages()] == ["STOP", "cancel"]
        send(client(url))  # the final text the owner sends goes through
        assert len(texts(url)) == 1
    finally:
        server.shutdown()
        server.server_close()
