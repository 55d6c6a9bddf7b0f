"""infra/local/lambda_sandbox.py: a function runs with its own credentials, gets its template timeout as its
deadline, and is cut off at that deadline as Lambda cuts it off. A fake Runtime API (cargo lambda watch's part) and a
fake function (a Python script speaking the Runtime API) stand in for the real ones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from conftest import REPO_ROOT, eventually, serving

SANDBOX = REPO_ROOT / "infra" / "local" / "lambda_sandbox.py"

FUNCTION = textwrap.dedent(
    """\
    #!{python}
    # A function: each event says how long to work; what it saw goes to seen.jsonl beside it.
    import json, os, pathlib, time, urllib.request
    api = os.environ["AWS_LAMBDA_RUNTIME_API"].removeprefix("http://")
    seen = pathlib.Path(__file__).with_name("seen.jsonl")
    while True:
        with urllib.request.urlopen(f"http://{{api}}/2018-06-01/runtime/invocation/next") as answer:
            if answer.status == 204:
                time.sleep(0.05)
                continue
            request_id = answer.headers["Lambda-Runtime-Aws-Request-Id"]
            deadline = int(answer.headers["Lambda-Runtime-Deadline-Ms"])
            event = json.loads(answer.read())
        with seen.open("a") as out:
            out.write(json.dumps({{"id": request_id, "deadline_ms": deadline, "at_ms": int(time.time() * 1000),
                                  "key": os.environ.get("AWS_ACCESS_KEY_ID"), "pid": os.getpid(),
                                  "own": os.environ.get("OWN_VAR"), "other": os.environ.get("OTHER_VAR")}}) + "\\n")
        time.sleep(event["work_seconds"])
        done = urllib.request.Request(f"http://{{api}}/2018-06-01/runtime/invocation/{{request_id}}/response",
                                      data=json.dumps({{"done": request_id}}).encode(), method="POST")
        urllib.request.urlopen(done).read()
    """
)


class RuntimeApi:
    """cargo lambda watch's Runtime API for one function: hands out the queued events, records the answers."""

    def __init__(self, events: list[tuple[str, dict]]):
        self.events = list(events)
        self.answers: dict[str, tuple[str, dict, dict]] = {}
        self.lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802
                with api.lock:
                    queued = api.events.pop(0) if api.events else None
                if queued is None:
                    self._send(204, {}, b"")
                    return
                request_id, event = queued
                self._send(200, {"Lambda-Runtime-Aws-Request-Id": request_id, "Lambda-Runtime-Deadline-Ms": "600000"},
                           json.dumps(event).encode())

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                request_id, _, outcome = self.path.split("/invocation/")[1].partition("/")
                with api.lock:
                    api.answers[request_id] = (outcome, body, dict(self.headers))
                self._send(202, {}, b"")

            def _send(self, status, headers, body):
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)


def run_function(tmp_path: Path, api: RuntimeApi, timeout_seconds: int):
    binary = tmp_path / "fn"
    binary.write_text(FUNCTION.format(python=sys.executable))
    binary.chmod(0o755)
    settings = tmp_path / "functions.json"
    settings.write_text(json.dumps({
        "fn": {"access_key_id": "LOCALFn", "timeout_seconds": timeout_seconds, "variables": ["OWN_VAR"]},
        "other-fn": {"access_key_id": "LOCALOtherFn", "timeout_seconds": 3, "variables": ["OTHER_VAR", "OWN_VAR"]},
    }))
    env = {**os.environ, "LOCAL_FUNCTION_SETTINGS": str(settings), "AWS_ACCESS_KEY_ID": "testing",
           "OWN_VAR": "mine", "OTHER_VAR": "theirs"}
    return binary, env


def test_an_invocation_past_its_timeout_is_cut_off_reported_as_lambda_reports_it_and_the_next_starts_fresh(tmp_path):
    api = RuntimeApi([("slow", {"work_seconds": 5}), ("quick", {"work_seconds": 0})])
    with serving(api.server) as base_url:
        binary, env = run_function(tmp_path, api, timeout_seconds=1)
        env["AWS_LAMBDA_RUNTIME_API"] = f"{base_url.removeprefix('http://')}"
        process = subprocess.Popen([sys.executable, str(SANDBOX), str(binary)], env=env)
        try:
            eventually(lambda: "quick" in api.answers, timeout=20)
        finally:
            process.terminate()
            process.wait(timeout=10)

    outcome, body, headers = api.answers["slow"]
    assert outcome == "error"
    assert body["errorType"] == "Sandbox.Timedout"
    assert body["errorMessage"].endswith("slow Task timed out after 1.00 seconds")
    assert headers["Lambda-Runtime-Function-Error-Type"] == "Sandbox.Timedout"
    assert api.answers["quick"][:2] == ("response", {"done": "quick"})

    seen = [json.loads(line) for line in (tmp_path / "seen.jsonl").read_text().splitlines()]
    assert [s["id"] for s in seen] == ["slow", "quick"]
    assert all(s["key"] == "LOCALFn" for s in seen), "the function signs with its own key"
    assert all((s["own"], s["other"]) == ("mine", None) for s in seen), "it sees its own variables, not another's"
    # The deadline is the template's timeout from when the invocation was handed out, not the emulator's 600000.
    assert all(0 < s["deadline_ms"] - s["at_ms"] <= 1000 for s in seen)
    assert seen[0]["pid"] != seen[1]["pid"], "the timed-out process was stopped; the next invocation starts a new one"
    time.sleep(0.2)
    assert api.answers["slow"][0] == "error", "the cut-off invocation's late answer never arrives"


def test_a_binary_that_is_no_function_of_the_template_runs_as_it_is(tmp_path):
    # The settings name a function, but not this binary (an operators' tool such as load-properties).
    settings = tmp_path / "functions.json"
    settings.write_text(json.dumps({"fn": {"access_key_id": "LOCALFn", "timeout_seconds": 1}}))
    env = {"LOCAL_FUNCTION_SETTINGS": str(settings), "AWS_ACCESS_KEY_ID": "testing",
           "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:9"}
    script = tmp_path / "tool"
    script.write_text(f"#!{sys.executable}\nimport os; print(os.environ['AWS_ACCESS_KEY_ID'])\n")
    script.chmod(0o755)
    out = subprocess.run([sys.executable, str(SANDBOX), str(script)], env={**os.environ, **env},
                         capture_output=True, text=True, timeout=10)
    assert out.stdout.strip() == "testing"
