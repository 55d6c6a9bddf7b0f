"""Shared fixtures: a real moto server and a real DynamoDB Local on free ports, and a fake of cargo lambda watch's
invoke API.

A missing tool fails the test with its name; it never skips (a skipped check is a check nobody runs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Iterator

import pytest

LOCAL_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = LOCAL_DIR.parents[1]
sys.path.insert(0, str(LOCAL_DIR))

import dynamodb_local  # noqa: E402 - importable once LOCAL_DIR is on the path
import tourlocal.ports  # noqa: E402
from provision import aws_client  # noqa: E402
from tourlocal.ports import free_port  # noqa: E402,F401 - the tests import it from here

VENV_BIN = Path(os.environ.get("TOUR_BOOKING_VENV", REPO_ROOT / ".venv")) / "bin"


def venv_tool(name: str) -> Path:
    path = VENV_BIN / name
    if not path.exists():
        pytest.fail(f"{name} is not installed in {VENV_BIN}: run `make venv` (or set TOUR_BOOKING_VENV)")
    return path


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 20.0) -> None:
    if tourlocal.ports.wait_for_port(port, timeout, alive=lambda: process.poll() is None):
        return
    if process.poll() is not None:
        pytest.fail(f"moto_server exited with {process.returncode} during start-up")
    pytest.fail(f"moto_server did not listen on {port} within {timeout} s")


@pytest.fixture(scope="session")
def moto_server():
    port = free_port()
    process = subprocess.Popen(
        [str(venv_tool("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def moto(moto_server):
    """The session's moto server, emptied before each test."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")).read()
    return moto_server


@pytest.fixture(scope="session")
def dynamodb_local_server(tmp_path_factory):
    """One DynamoDB Local for the session, started as the stack starts it (infra/local/dynamodb_local.py)."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("dynamodb-local") / "java.log"
    with open(log_path, "wb") as log:
        try:
            process = dynamodb_local.start(port, output=log)
        except (dynamodb_local.NotInstalled, dynamodb_local.StartFailed) as error:
            pytest.fail(f"{error}\n{log_path.read_text(errors='replace')}")
    try:
        yield dynamodb_local.url(port)
    finally:
        dynamodb_local.stop(process)


@pytest.fixture
def dynamodb(dynamodb_local_server):
    """The session's DynamoDB Local, without tables before each test (it has no reset call: tables are deleted)."""
    client = aws_client("dynamodb", dynamodb_local_server)
    for page in client.get_paginator("list_tables").paginate():
        for name in page["TableNames"]:
            client.delete_table(TableName=name)
    return dynamodb_local_server


@dataclass
class FakeLambda:
    """Answers `POST /2015-03-31/functions/<binary>/invocations` like cargo lambda watch, recording each event.

    `respond(binary, event)` returns (status, body) and decides each answer; by default every invocation succeeds
    with an empty body.
    """

    url: str = ""
    invocations: list[tuple[str, dict]] = field(default_factory=list)
    respond: Callable[[str, dict], tuple[int, object]] = lambda binary, event: (200, None)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def events_for(self, binary: str) -> list[dict]:
        with self.lock:
            return [event for name, event in self.invocations if name == binary]


@pytest.fixture
def fake_lambda():
    fake = FakeLambda()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 - http.server's naming
            parts = self.path.strip("/").split("/")
            if len(parts) != 4 or parts[:2] != ["2015-03-31", "functions"] or parts[3] != "invocations":
                self.send_error(404)
                return
            event = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with fake.lock:
                fake.invocations.append((parts[2], event))
            status, body = fake.respond(parts[2], event)
            payload = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format, *args):  # noqa: A002 - keep test output quiet
            pass

    with serving(ThreadingHTTPServer(("127.0.0.1", 0), Handler)) as url:
        fake.url = url
        yield fake


@contextmanager
def serving(server: ThreadingHTTPServer, poll_interval: float = 0.5) -> Iterator[str]:
    """Runs `server` on a thread while the block runs, then stops and closes it: its base URL. A shorter
    `poll_interval` stops it sooner (a test that starts many servers ends in milliseconds, not half a second each)."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": poll_interval}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def eventually(check: Callable[[], object], timeout: float = 15.0, interval: float = 0.1):
    """Polls `check` until it returns something truthy; fails with the last value otherwise."""
    deadline = time.monotonic() + timeout
    value = check()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = check()
    assert value, f"condition not met within {timeout} s"
    return value
