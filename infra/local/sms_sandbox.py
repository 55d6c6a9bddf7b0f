"""A local stand-in for AWS End User Messaging SMS (API `pinpoint-sms-voice-v2`), which moto does not emulate.

The real SDKs (boto3, `aws-sdk-pinpointsmsvoicev2`) talk to it through an endpoint URL, as they talk to moto: it
speaks the service's wire protocol (AWS JSON 1.0: `POST /`, `X-Amz-Target: PinpointSMSVoiceV2.<Operation>`,
`Content-Type: application/x-amz-json-1.0`) and answers errors in the service's shapes (`__type`, `Message` - the
model's member, which the SDKs read - and `message`, with the model's `Reason`, `Fields`, `ResourceType` and
`ResourceId` members, HTTP 400; the model gives its errors no other status). Request signatures are not checked.

Emulated operations:
- `SendTextMessage`: validates the request as the model constrains it (E.164 destination, body 1-1,600 characters,
  `MessageType`, at most 5 `Context` entries, ...) -> `ValidationException` with `Reason` and `Fields`; refuses a
  number on the opt-out list -> `ConflictException`, `Reason: DESTINATION_PHONE_NUMBER_OPTED_OUT`; answers
  `{"MessageId"}`. `DryRun` validates the same way but neither keeps nor delivers the text. Every accepted text is
  kept with its message parts as the carriers count them (GSM-7: 160 septets in one part, 153 a part beyond;
  otherwise UCS-2: 70 UTF-16 units in one, 67 a part beyond).
- `PutOptedOutNumber`, `DeleteOptedOutNumber`, `DescribeOptedOutNumbers` on the account's one opt-out list,
  `Default` (by name or ARN; another list -> `ResourceNotFoundException`).
- Any other operation -> `ValidationException` "operation X is not emulated".

Behaviour after a call:
- A delivery event, `delay` seconds (default 0.2) after each accepted text, POSTed to `events_url` as a Lambda
  receives it from an SNS event destination (`{"Records": [{"EventSource": "aws:sns", "Sns": {"Message": "<event
  JSON>", ...}}]}`); the event has the documented fields (`eventType` `TEXT_DELIVERED`, `messageStatus`
  `DELIVERED`, or a failure type when a fault says so; `isFinal` true). Only the final event is sent, never the
  intermediate ones (`TEXT_QUEUED`, `TEXT_PENDING`, ...), and only once: no SNS or Lambda retries.
- Inbound (two-way) messages, played by the control surface, POSTed to `inbound_url` as a Lambda SNS event whose
  `Message` is the documented two-way payload. A reply that is an opt-out keyword (STOP, STOPALL, UNSUBSCRIBE,
  CANCEL, END, QUIT, OPTOUT, OPT-OUT, REVOKE; trimmed, any case) puts the number on the opt-out list before the
  event is delivered, as the service's built-in opt-out does; START or UNSTOP takes it off. The service's automatic
  keyword answers (the STOP confirmation, HELP) are not sent. With `--self-managed-opt-outs` (a pool whose opt-outs
  its owner handles, as ours does), keywords change nothing here and only reach the receiver.

Not emulated: configuration sets, event destinations and pools as resources (any `ConfigurationSetName` and
`OriginationIdentity` are accepted and echoed into events), other opt-out lists, the 30-day limit on deleting an
opted-out number, spend limits, MPS quotas (throttling only by fault), prices (events say 0), voice and MMS.

Control surface (plain JSON over HTTP on the same port):
- `GET /_sandbox/texts[?to=+1512...]`: `{"texts": [...]}`, every accepted text, oldest first, with `state`
  `pending | delivered | failed`. `DELETE /_sandbox/texts` forgets them.
- `POST /_sandbox/replies` `{"from": "+1512...", "to": "+1737...", "body": "C", "twice": false}`: plays a
  prospect's reply (`twice`: delivered twice with the same `inboundMessageId`, as the real service may) and answers
  `{"inboundMessageId": ..., "deliveries": [<receiver's HTTP status>, ...]}` once it has been delivered.
- `POST /_sandbox/faults` `{"fail_delivery_to": ["+1512..."], "failure": "TEXT_CARRIER_UNREACHABLE", "throttle":
  true}` (each optional): texts to those numbers are accepted but their event says they failed; `throttle` makes
  `SendTextMessage` answer `ThrottlingException`. `GET` shows the faults, `DELETE` clears them.
- `GET /_sandbox/opted-out`: `{"opted_out": [{"number", "since", "end_user_opted_out"}]}`.

Run: `python3 infra/local/sms_sandbox.py --port N [--deliver-events-to URL] [--deliver-inbound-to URL]`. Tests:
`start(port=0, events_url=None, inbound_url=None) -> (server, url)`, then `server.shutdown()`. Standard library only.
It logs operation names and counts, never message bodies or phone numbers (prospects' personal data).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

ACCOUNT, REGION = "123456789012", "us-east-1"
OPT_OUT_LIST = "Default"
OPT_OUT_LIST_ARN = f"arn:aws:sms-voice:{REGION}:{ACCOUNT}:opt-out-list/{OPT_OUT_LIST}"
EVENTS_TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:sms-voice-events"
INBOUND_TOPIC_ARN = f"arn:aws:sns:{REGION}:{ACCOUNT}:sms-voice-inbound"
DEFAULT_ORIGINATION = "+12065550100"  # what the service picks when OriginationIdentity is left out
TARGET_PREFIX = "PinpointSMSVoiceV2."
PHONE_PATTERN = r"\+?[1-9][0-9]{1,18}"
OPT_OUT_KEYWORDS = {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "OPT-OUT", "REVOKE"}
OPT_IN_KEYWORDS = {"START", "UNSTOP"}
# Failure event types a fault may choose: (messageStatus, messageStatusDescription).
FAILURES = {
    "TEXT_CARRIER_UNREACHABLE": ("CARRIER_UNREACHABLE", "Carrier is temporarily unreachable"),
    "TEXT_UNREACHABLE": ("UNREACHABLE", "Phone is turned off or not connected to the network"),
    "TEXT_BLOCKED": ("BLOCKED", "Message was blocked by the recipient's device or carrier"),
    "TEXT_INVALID": ("INVALID", "Destination phone number is not valid"),
    "TEXT_CARRIER_BLOCKED": ("CARRIER_BLOCKED", "Carrier blocked the message"),
    "TEXT_TTL_EXPIRED": ("TTL_EXPIRED", "Message could not be handed off before its time to live expired"),
    "TEXT_SPAM": ("SPAM", "Carrier identified the message as spam"),
    "TEXT_UNKNOWN": ("UNKNOWN", "Message could not be delivered for an unknown reason"),
}
GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿"
    "abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = set("\f^{}\\[~]|€")  # two septets each (escape + character)


def message_parts(body: str) -> tuple[str, int]:
    """The encoding carriers use for `body` (`GSM` or `Unicode`, as events name them) and its number of parts."""
    if all(c in GSM7 or c in GSM7_EXTENSION for c in body):
        units, single, each = sum(2 if c in GSM7_EXTENSION else 1 for c in body), 160, 153
        encoding = "GSM"
    else:
        units, single, each = len(body.encode("utf-16-le")) // 2, 70, 67
        encoding = "Unicode"
    return encoding, 1 if units <= single else math.ceil(units / each)


class ApiError(Exception):
    """An error answer in the service's shape: `__type`, the message, and the model's other members."""

    def __init__(self, kind: str, message: str, status: int = 400, **members):
        super().__init__(message)
        self.status = status
        self.body = {"__type": kind, "message": message, "Message": message, **members}


def invalid(name: str, constraint: str, reason: str = "FIELD_VALIDATION_FAILED") -> ApiError:
    # The real message quotes the value; this one does not, so no phone number or body reaches a log through it.
    message = f"1 validation error detected: Value at '{name[0].lower() + name[1:]}' failed to satisfy constraint: "
    return ApiError("ValidationException", message + constraint, Reason=reason,
                    Fields=[{"Name": name, "Message": constraint}])


def field(request: dict, name: str, *, required=False, pattern=None, max_len=None, enum=None):
    value = request.get(name)
    if value is None:
        if required:
            raise invalid(name, "Member must not be null", "MISSING_PARAMETER")
        return None
    if not isinstance(value, str) or not value:
        raise invalid(name, "Member must be a non-empty string")
    if max_len is not None and len(value) > max_len:
        raise invalid(name, f"Member must have length less than or equal to {max_len}")
    if pattern is not None and not re.fullmatch(pattern, value):
        raise invalid(name, f"Member must satisfy regular expression pattern: {pattern}")
    if enum is not None and value not in enum:
        raise invalid(name, f"Member must satisfy enum value set: [{', '.join(enum)}]")
    return value


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sns_event(topic_arn: str, message: dict) -> dict:
    """What a Lambda subscribed to `topic_arn` receives when `message` is published to it."""
    return {"Records": [{
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": f"{topic_arn}:{uuid.uuid4()}",
        "Sns": {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "TopicArn": topic_arn,
            "Subject": None,
            "Message": json.dumps(message),
            "Timestamp": now_iso(),
            "SignatureVersion": "1",
            "Signature": "EXAMPLE",
            "SigningCertUrl": f"https://sns.{REGION}.amazonaws.com/SimpleNotificationService-local.pem",
            "UnsubscribeUrl": f"https://sns.{REGION}.amazonaws.com/?Action=Unsubscribe",
            "MessageAttributes": {},
        },
    }]}


def post_json(url: str, payload: dict) -> int | str:
    """POSTs `payload`: the receiver's HTTP status, or what went wrong."""
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            answer.read()
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError as error:
        return f"{type(error).__name__}: {error}"


def log(line: str) -> None:
    print(f"sms sandbox: {line}", flush=True)


class Sandbox:
    """The service's state (texts, the opt-out list, faults) and what it does."""

    def __init__(self, events_url=None, inbound_url=None, delay=0.2, verbose=False, self_managed_opt_outs=False):
        self.events_url, self.inbound_url, self.delay, self.verbose = events_url, inbound_url, delay, verbose
        # A pool with self-managed opt-outs: keywords reach the receiver and change nothing here.
        self.self_managed_opt_outs = self_managed_opt_outs
        self.lock = threading.Lock()
        self.texts: list[dict] = []
        self.opted_out: dict[str, dict] = {}  # number -> {"at": epoch seconds, "end_user": bool}
        self.faults: dict = {}
        self.timers: set[threading.Timer] = set()

    # --- the API --------------------------------------------------------------------------------------------

    def call(self, operation: str, request: dict) -> dict:
        handler = {
            "SendTextMessage": self.send_text_message,
            "PutOptedOutNumber": self.put_opted_out_number,
            "DeleteOptedOutNumber": self.delete_opted_out_number,
            "DescribeOptedOutNumbers": self.describe_opted_out_numbers,
        }.get(operation)
        if handler is None:
            raise ApiError("ValidationException", f"operation {operation} is not emulated", Reason="UNKNOWN_OPERATION")
        return handler(request)

    def send_text_message(self, request: dict) -> dict:
        if self.faults.get("throttle"):
            raise ApiError("ThrottlingException", "Rate exceeded")
        to = field(request, "DestinationPhoneNumber", required=True, pattern=PHONE_PATTERN, max_len=20)
        origin = field(request, "OriginationIdentity", pattern=r"[A-Za-z0-9_:/\+-]+", max_len=256)
        body = field(request, "MessageBody", required=True, max_len=1600)
        message_type = field(request, "MessageType", enum=("TRANSACTIONAL", "PROMOTIONAL"))
        configuration_set = field(request, "ConfigurationSetName", pattern=r"[A-Za-z0-9_:/-]+", max_len=256)
        context = request.get("Context")
        if context is not None and not (isinstance(context, dict) and len(context) <= 5 and all(
                isinstance(k, str) and isinstance(v, str) and 0 < len(k) <= 100 and 0 < len(v) <= 800
                for k, v in context.items())):
            raise invalid("Context", "Member must be a map of at most 5 non-empty strings")
        if not body.strip():
            raise invalid("MessageBody", "Member must not be blank")
        with self.lock:
            if to in self.opted_out:
                raise ApiError("ConflictException", "The destination phone number is opted out.",
                               Reason="DESTINATION_PHONE_NUMBER_OPTED_OUT", ResourceType="opted-out-number",
                               ResourceId=to)
            message_id = str(uuid.uuid4())
            if request.get("DryRun"):
                return {"MessageId": message_id}
            encoding, parts = message_parts(body)
            text = {
                "message_id": message_id, "to": to, "from": origin or DEFAULT_ORIGINATION, "body": body,
                "message_type": message_type or "TRANSACTIONAL", "configuration_set": configuration_set,
                "context": context, "sent_at": now_iso(), "sent_at_ms": int(time.time() * 1000),
                "encoding": encoding, "segments": parts, "state": "pending", "event_type": None,
                "event_delivery": None,
            }
            self.texts.append(text)
            timer = threading.Timer(self.delay, self._deliver, args=(text,))
            timer.daemon = True
            self.timers.add(timer)
            timer.start()
        return {"MessageId": message_id}

    def _opt_out_list(self, request: dict) -> None:
        name = field(request, "OptOutListName", required=True, pattern=r"[A-Za-z0-9_:/-]+", max_len=256)
        if name not in (OPT_OUT_LIST, OPT_OUT_LIST_ARN):
            raise ApiError("ResourceNotFoundException", "The opt-out list does not exist.",
                           ResourceType="opt-out-list", ResourceId=name)

    def _entry(self, number: str, wrapped: bool) -> dict:
        entry = self.opted_out[number]
        item = {"OptedOutNumber": number, "OptedOutTimestamp": entry["at"], "EndUserOptedOut": entry["end_user"]}
        return {"OptOutListArn": OPT_OUT_LIST_ARN, "OptOutListName": OPT_OUT_LIST, **item} if wrapped else item

    def put_opted_out_number(self, request: dict) -> dict:
        self._opt_out_list(request)
        number = field(request, "OptedOutNumber", required=True, pattern=PHONE_PATTERN, max_len=20)
        with self.lock:
            self.opted_out.setdefault(number, {"at": time.time(), "end_user": False})
            return self._entry(number, wrapped=True)

    def delete_opted_out_number(self, request: dict) -> dict:
        self._opt_out_list(request)
        number = field(request, "OptedOutNumber", required=True, pattern=PHONE_PATTERN, max_len=20)
        with self.lock:
            if number not in self.opted_out:
                raise ApiError("ResourceNotFoundException", "The opted-out number does not exist.",
                               ResourceType="opted-out-number", ResourceId=number)
            answer = self._entry(number, wrapped=True)
            del self.opted_out[number]
            return answer

    def describe_opted_out_numbers(self, request: dict) -> dict:
        self._opt_out_list(request)
        wanted = request.get("OptedOutNumbers")
        for number in wanted or []:
            if not isinstance(number, str) or not re.fullmatch(PHONE_PATTERN, number):
                raise invalid("OptedOutNumbers", f"Member must satisfy regular expression pattern: {PHONE_PATTERN}")
        end_user_values = None
        for item in request.get("Filters") or []:
            if item.get("Name") != "end-user-opted-out":
                raise invalid("Filters", "Member must satisfy enum value set: [end-user-opted-out]",
                              "INVALID_FILTER_VALUES")
            end_user_values = {str(v).lower() for v in item.get("Values") or []}
        start = request.get("NextToken") or "0"
        if not start.isdigit():
            raise invalid("NextToken", "Member must be a token this API returned", "INVALID_NEXT_TOKEN")
        size = request.get("MaxResults") or 100
        with self.lock:
            numbers = sorted(self.opted_out, key=lambda n: (self.opted_out[n]["at"], n))
            numbers = [n for n in numbers if (wanted is None or n in wanted) and (
                end_user_values is None or str(self.opted_out[n]["end_user"]).lower() in end_user_values)]
            page = numbers[int(start):int(start) + size]
            answer = {"OptOutListArn": OPT_OUT_LIST_ARN, "OptOutListName": OPT_OUT_LIST,
                      "OptedOutNumbers": [self._entry(n, wrapped=False) for n in page]}
        if int(start) + size < len(numbers):
            answer["NextToken"] = str(int(start) + size)
        return answer

    # --- what happens afterwards ----------------------------------------------------------------------------

    def _deliver(self, text: dict) -> None:
        with self.lock:
            self.timers.discard(threading.current_thread())  # type: ignore[arg-type]
            failure = self.faults.get("failure", "TEXT_CARRIER_UNREACHABLE")
            failed = text["to"] in self.faults.get("fail_delivery_to", ())
        if failed:
            event_type, (status, description) = failure, FAILURES[failure]
        else:
            event_type, status, description = "TEXT_DELIVERED", "DELIVERED", "Message has been accepted by phone"
        event = {
            "eventType": event_type, "eventVersion": "1.0", "eventTimestamp": int(time.time() * 1000),
            "isFinal": True, "originationPhoneNumber": text["from"], "destinationPhoneNumber": text["to"],
            "isInternationalSend": False, "messageId": text["message_id"],
            "messageRequestTimestamp": text["sent_at_ms"], "messageEncoding": text["encoding"],
            "messageType": text["message_type"], "messageStatus": status, "messageStatusDescription": description,
            "totalMessageParts": text["segments"], "totalMessagePrice": 0.0, "totalCarrierFee": 0.0,
        }
        if text["context"]:
            event["context"] = text["context"]
        if text["configuration_set"]:
            event["configurationSetName"] = text["configuration_set"]
        with self.lock:
            text["state"], text["event_type"] = ("failed" if failed else "delivered"), event_type
        if self.events_url:
            outcome = post_json(self.events_url, sns_event(EVENTS_TOPIC_ARN, event))
            if self.verbose:
                log(f"delivery event {event_type} -> {outcome}")
            with self.lock:
                text["event_delivery"] = outcome

    def reply(self, origin: str, destination: str, body: str, twice: bool = False) -> dict:
        """A prospect's text to one of our numbers: the opt-out list follows its keyword, then it is delivered."""
        keyword = body.strip().upper()
        with self.lock:
            if self.self_managed_opt_outs:
                pass
            elif keyword in OPT_OUT_KEYWORDS:
                self.opted_out.setdefault(origin, {"at": time.time(), "end_user": True})
            elif keyword in OPT_IN_KEYWORDS:
                self.opted_out.pop(origin, None)
            earlier = [t for t in self.texts if t["to"] == origin and t["from"] == destination] or \
                [t for t in self.texts if t["to"] == origin]
        message = {
            "originationNumber": origin, "destinationNumber": destination,
            "messageKeyword": keyword if keyword in OPT_OUT_KEYWORDS | OPT_IN_KEYWORDS | {"HELP"}
            else f"KEYWORD_{ACCOUNT}",
            "messageBody": body, "inboundMessageId": str(uuid.uuid4()),
        }
        if earlier:
            message["previousPublishedMessageId"] = earlier[-1]["message_id"]
        deliveries = []
        if self.inbound_url:
            for _ in range(2 if twice else 1):
                deliveries.append(post_json(self.inbound_url, sns_event(INBOUND_TOPIC_ARN, message)))
        return {"inboundMessageId": message["inboundMessageId"], "deliveries": deliveries}

    def close(self) -> None:
        with self.lock:
            for timer in self.timers:
                timer.cancel()
            self.timers.clear()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as separate writes: no 40 ms wait for an ACK
    server: "SandboxServer"

    def _answer(self, status: int, body, content_type="application/json") -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        self.end_headers()
        self.wfile.write(payload)

    def _body(self):
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        return json.loads(raw or b"{}")

    def do_POST(self):  # noqa: N802 - http.server's naming
        if self.path.startswith("/_sandbox/"):
            return self._control("POST")
        sandbox, target = self.server.sandbox, self.headers.get("X-Amz-Target", "")
        operation = target[len(TARGET_PREFIX):] if target.startswith(TARGET_PREFIX) else target or "(none)"
        try:
            try:
                request = self._body()
            except ValueError:
                raise ApiError("SerializationException", "The request body is not valid JSON") from None
            if not isinstance(request, dict):
                raise ApiError("SerializationException", "The request body is not a JSON object")
            status, body = 200, sandbox.call(operation, request)
        except ApiError as error:
            status, body = error.status, error.body
        self._answer(status, body, "application/x-amz-json-1.0")
        if sandbox.verbose:
            outcome = "ok" if status == 200 else body["__type"]
            log(f"{operation} -> {outcome} (texts kept: {len(sandbox.texts)}, opted out: {len(sandbox.opted_out)})")

    def do_GET(self):  # noqa: N802
        self._control("GET")

    def do_DELETE(self):  # noqa: N802
        self._control("DELETE")

    def _control(self, method: str) -> None:
        sandbox = self.server.sandbox
        path, _, query = self.path.partition("?")
        params = {unquote(k): unquote(v) for k, _, v in (p.partition("=") for p in query.split("&") if p)}
        try:
            body = self._body() if method == "POST" else {}
        except ValueError:
            return self._answer(400, {"error": "the body is not valid JSON"})
        route = (method, path.rstrip("/"))
        if route == ("GET", "/_sandbox/texts"):
            with sandbox.lock:
                texts = [dict(t) for t in sandbox.texts if "to" not in params or t["to"] == params["to"]]
            return self._answer(200, {"texts": texts})
        if route == ("DELETE", "/_sandbox/texts"):
            with sandbox.lock:
                cleared, sandbox.texts = len(sandbox.texts), []
            return self._answer(200, {"cleared": cleared})
        if route == ("GET", "/_sandbox/opted-out"):
            with sandbox.lock:
                listed = [{"number": n, "since": e["at"], "end_user_opted_out": e["end_user"]}
                          for n, e in sandbox.opted_out.items()]
            return self._answer(200, {"opted_out": listed})
        if route == ("POST", "/_sandbox/replies"):
            origin, destination, text = body.get("from"), body.get("to"), body.get("body")
            if not all(isinstance(v, str) and re.fullmatch(PHONE_PATTERN, v) for v in (origin, destination)):
                return self._answer(400, {"error": "`from` and `to` must be E.164 phone numbers"})
            if not isinstance(text, str) or not text:
                return self._answer(400, {"error": "`body` must be a non-empty string"})
            answer = sandbox.reply(origin, destination, text, twice=bool(body.get("twice")))
            if sandbox.verbose:
                log(f"inbound reply -> deliveries {answer['deliveries']}")
            return self._answer(200, answer)
        if route == ("POST", "/_sandbox/faults"):
            failure = body.get("failure", sandbox.faults.get("failure", "TEXT_CARRIER_UNREACHABLE"))
            if failure not in FAILURES:
                return self._answer(400, {"error": f"`failure` must be one of {sorted(FAILURES)}"})
            if not all(isinstance(n, str) for n in body.get("fail_delivery_to", ())):
                return self._answer(400, {"error": "`fail_delivery_to` must be a list of phone numbers"})
            with sandbox.lock:
                numbers = set(sandbox.faults.get("fail_delivery_to", ())) | set(body.get("fail_delivery_to", ()))
                sandbox.faults.update(fail_delivery_to=sorted(numbers), failure=failure)
                if "throttle" in body:
                    sandbox.faults["throttle"] = bool(body["throttle"])
            return self._answer(200, sandbox.faults)
        if route == ("GET", "/_sandbox/faults"):
            return self._answer(200, sandbox.faults)
        if route == ("DELETE", "/_sandbox/faults"):
            with sandbox.lock:
                sandbox.faults = {}
            return self._answer(200, {})
        self._answer(404, {"error": f"no {method} {path}"})

    def log_message(self, format, *args):  # noqa: A002 - paths can carry phone numbers: the handlers log instead
        pass


class SandboxServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, sandbox: Sandbox):
        super().__init__(address, Handler)
        self.sandbox = sandbox

    def shutdown(self) -> None:
        """Stops serving, forgets pending deliveries and closes the socket."""
        super().shutdown()
        self.sandbox.close()
        self.server_close()


def start(
    port=0, events_url=None, inbound_url=None, delay=0.2, verbose=False, self_managed_opt_outs=False
) -> tuple[SandboxServer, str]:
    """Serves on 127.0.0.1:`port` (0: a free one) on a background thread: the server and its base URL."""
    sandbox = Sandbox(events_url, inbound_url, delay, verbose, self_managed_opt_outs)
    server = SandboxServer(("127.0.0.1", port), sandbox)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--deliver-events-to", metavar="URL", help="where delivery events go (a Lambda's invoke URL)")
    parser.add_argument("--deliver-inbound-to", metavar="URL", help="where inbound messages go")
    parser.add_argument("--delivery-delay", type=float, default=0.2, metavar="SECONDS")
    parser.add_argument(
        "--self-managed-opt-outs", action="store_true",
        help="as a pool with self-managed opt-outs: STOP and the like only reach the receiver",
    )
    args = parser.parse_args(argv)
    server, url = start(
        args.port, args.deliver_events_to, args.deliver_inbound_to, args.delivery_delay, True,
        args.self_managed_opt_outs,
    )
    print(f"sms sandbox listening on {url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()


if __name__ == "__main__":
    sys.exit(main())
