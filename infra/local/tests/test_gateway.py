"""The local API Gateway stand-in (gateway.py) routes and encodes as API Gateway's HTTP API does, in front of a fake
Lambda invoke API that records the events it gets and answers what the test says."""

from __future__ import annotations

import base64
import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import fuzz
import gateway
from conftest import free_port


class FakeLambda:
    """`POST /2015-03-31/functions/<binary>/invocations`: keeps (binary, event), answers `self.answer`."""

    def __init__(self):
        self.events: list[tuple[str, dict]] = []
        self.answer: bytes = json.dumps({"statusCode": 200, "headers": {"content-type": "text/plain"},
                                         "body": "ok"}).encode()
        self.function_error = False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                binary = self.path.split("/functions/")[1].split("/")[0]
                outer.events.append((binary, json.loads(self.rfile.read(int(self.headers["content-length"])))))
                self.send_response(200)
                if outer.function_error:
                    self.send_header("X-Amz-Function-Error", "Unhandled")
                self.send_header("content-length", str(len(outer.answer)))
                self.end_headers()
                self.wfile.write(outer.answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


@pytest.fixture
def fake():
    lam = FakeLambda()
    yield lam
    lam.server.shutdown()


@pytest.fixture
def api(fake):
    port = free_port()
    server = gateway.serve(fake.url, port)
    yield f"http://127.0.0.1:{port}"
    server.shutdown()


def send(url: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None):
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.headers, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def test_a_route_of_the_template_reaches_its_function_with_its_path_parameter_and_query(api, fake):
    status, _, body = send(f"{api}/api/resman/tours/tour_abc?x=1&x=2")
    assert (status, body) == (200, b"ok")
    binary, event = fake.events[-1]
    assert binary == "get-tour"
    assert event["version"] == "2.0" and event["routeKey"] == "GET /api/resman/tours/{appointment_id}"
    assert event["pathParameters"] == {"appointment_id": "tour_abc"}
    assert event["queryStringParameters"] == {"x": "1,2"} and event["rawQueryString"] == "x=1&x=2"
    assert event["requestContext"]["http"]["method"] == "GET"


def test_the_most_specific_route_wins_and_other_methods_reach_the_paths_any_route(api, fake):
    send(f"{api}/api/resman/tours/book", "POST", b"{}", {"content-type": "application/json"})
    assert fake.events[-1][0] == "book-tour"
    send(f"{api}/api/resman/tours/book", "GET")
    assert fake.events[-1][0] == "book-tour", "the literal path's ANY route, not GET /{appointment_id}"
    assert fake.events[-1][1]["routeKey"] == "ANY /api/resman/tours/book"
    send(f"{api}/api/resman/tours/tour_1", "PUT", b"{}", {"content-type": "application/json"})
    assert fake.events[-1][0] == "update-tour"
    send(f"{api}/api/resman/tours/tour_1", "TRACE")
    assert fake.events[-1][1]["routeKey"] == "ANY /api/resman/tours/{appointment_id}"


def test_a_path_no_route_takes_is_api_gateways_404_and_never_reaches_a_function(api, fake):
    status, _, body = send(f"{api}/nowhere")
    assert (status, json.loads(body)) == (404, {"message": "Not Found"})
    assert fake.events == []


def test_a_body_that_is_not_utf8_text_reaches_the_function_base64_encoded(api, fake):
    raw = b"\xff\xfe{not utf-8"
    send(f"{api}/api/resman/tours/book", "POST", raw, {"content-type": "application/json"})
    event = fake.events[-1][1]
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == raw
    send(f"{api}/api/resman/tours/book", "POST", b'{"a": "\xc3\xa9"}', {"content-type": "application/json"})
    event = fake.events[-1][1]
    assert event["isBase64Encoded"] is False and event["body"] == '{"a": "\u00e9"}'


def test_the_functions_answer_becomes_the_response_and_a_failure_is_api_gateways_500(api, fake):
    fake.answer = json.dumps({"statusCode": 405, "headers": {"allow": "GET, PUT"},
                              "body": base64.b64encode(b"\x00bin").decode(), "isBase64Encoded": True}).encode()
    status, headers, body = send(f"{api}/api/resman/tours/tour_1", "DELETE")
    assert (status, headers["allow"], body) == (405, "GET, PUT", b"\x00bin")
    fake.function_error = True
    status, _, body = send(f"{api}/api/resman/tours/tour_1")
    assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})


def test_a_function_url_takes_every_path_and_method(fake):
    port = free_port()
    server = gateway.serve(fake.url, port, function_url="tour-webhook")
    try:
        send(f"http://127.0.0.1:{port}/any/path", "PATCH")
        binary, event = fake.events[-1]
        assert binary == "tour-webhook" and event["routeKey"] == "$default"
    finally:
        server.shutdown()


def test_the_fuzz_counts_cases_and_failed_checks_from_schemathesis_events(tmp_path):
    report = tmp_path / "run.ndjson"
    finished = {"ScenarioFinished": {"recorder": {
        "cases": {"a": {}, "b": {}},
        "checks": {"a": [{"name": "not_a_server_error", "status": "success"}],
                   "b": [{"name": "not_a_server_error", "status": "failure"},
                         {"name": "status_code_conformance", "status": "FAILURE"}]},
    }}}
    report.write_text(json.dumps({"Initialize": {}}) + "\n" + json.dumps(finished) + "\nnot json\n")
    assert fuzz.count(report) == (2, 2)
    assert fuzz.count(tmp_path / "missing.ndjson") == (0, 0)
