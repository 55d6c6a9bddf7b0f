#!/usr/bin/env python3
"""Runs one function binary as Lambda runs it, under `cargo lambda watch`: `lambda_sandbox.py BINARY [ARGS...]`.

The local stack makes this cargo's runner for the host target (CARGO_TARGET_<TRIPLE>_RUNNER), so every
`cargo run --bin <function>` that cargo lambda watch starts comes through here. For the function named by the
binary's file name, from the settings file in LOCAL_FUNCTION_SETTINGS (infra/local/policies.py writes it):

- Credentials: the function signs its AWS calls with its own access key id, as a Lambda function signs with its
  role's, so the local IAM gate (infra/iam-gate) can hold each call to that function's policy in template.yaml.
- Timeout: the function's Runtime API goes through a small proxy here. Each invocation's deadline
  (`Lambda-Runtime-Deadline-Ms`) is the function's `Timeout` from the template, not the emulator's default. An
  invocation still running at its deadline is cut off as Lambda cuts it off: the process is killed (nothing more it
  would have done happens), the invocation fails with `Sandbox.Timedout` and "Task timed out after N.00 seconds",
  and the next invocation starts a fresh process (a cold start). A process that dies mid-invocation fails it with
  `Runtime.ExitError`, as Lambda reports it.
- Environment: cargo lambda watch gives every function one merged environment; the variables that only other
  functions have in the template are taken away, so a function that reads another's variable fails here as it
  would in AWS.

A binary with no settings (a workspace binary that is not a function of the template) runs unchanged.
"""

from __future__ import annotations

import ctypes
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

RUNTIME_PREFIX = "/2018-06-01/runtime/invocation/"
RESTART_PAUSE_SECONDS = 0.5
RESTART_PAUSE_MAX_SECONDS = 5.0
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Linux: this process gets SIGTERM when its parent dies, so nothing outlives `make down` (cargo lambda watch
    starts each function in a process group of its own, which stopping the stack's groups does not reach)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass


def log(message: str) -> None:
    print(f"[lambda-sandbox {os.getpid()}] {message}", file=sys.stderr, flush=True)


def settings_for(binary: str) -> dict | None:
    """The binary's settings, with `foreign_variables`: the variables other functions have in the template and it
    has not."""
    path = os.environ.get("LOCAL_FUNCTION_SETTINGS")
    if not path:
        return None
    try:
        every = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        log(f"cannot read {path}: {error}; running {binary} without its settings")
        return None
    own = every.get(binary)
    if own is None:
        return None
    others = {name for settings in every.values() for name in settings.get("variables", [])}
    return {**own, "foreign_variables": sorted(others - set(own.get("variables", [])))}


class Upstream:
    """cargo lambda watch's Runtime API for this function (AWS_LAMBDA_RUNTIME_API: [http://]host:port[/prefix])."""

    def __init__(self, address: str):
        self.scheme = "http://" if address.startswith("http://") else ""
        host_port, _, prefix = address.removeprefix("http://").partition("/")
        self.prefix = f"/{prefix}" if prefix else ""
        host, _, port = host_port.rpartition(":")
        self.host = host.strip("[]") or "127.0.0.1"
        if self.host in ("::", "0.0.0.0"):
            self.host = "127.0.0.1"
        self.port = int(port)
        self.lock = threading.Lock()
        self.idle: list[http.client.HTTPConnection] = []

    def request(self, method: str, path: str, body: bytes | None, headers: dict[str, str]):
        """One request on a kept-alive connection. Connections are reused, never closed after an answer: cargo
        lambda watch reads a response's body after it has answered the POST, and a connection closed at once can
        lose that body (the invocation then fails with a 500)."""
        for attempt in (1, 2):
            connection, reused = self._connection()
            try:
                connection.request(method, self.prefix + path, body=body, headers=headers)
                response = connection.getresponse()
                answer = response.status, response.getheaders(), response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                connection.close()
                if reused and attempt == 1:
                    continue  # an idle connection the server had closed: the request never arrived
                raise
            except (OSError, http.client.HTTPException):
                connection.close()
                raise
            with self.lock:
                self.idle.append(connection)
            return answer
        raise OSError("unreachable")

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        with self.lock:
            if self.idle:
                return self.idle.pop(), True
        # A long poll (next) may wait for minutes: no timeout on the connection.
        return http.client.HTTPConnection(self.host, self.port, timeout=None), False


class Sandbox:
    """One function process, restarted after a timeout or a crash, and the invocation it is working on."""

    def __init__(self, argv: list[str], env: dict[str, str], timeout_seconds: int, upstream: Upstream):
        self.argv = argv
        self.env = env
        self.timeout_seconds = timeout_seconds
        self.upstream = upstream
        self.lock = threading.Lock()
        self.process: subprocess.Popen | None = None
        self.current: str | None = None  # the request id in flight
        self.timer: threading.Timer | None = None
        self.stopping = False

    def start(self) -> None:
        with self.lock:
            self.process = subprocess.Popen(self.argv, env=self.env, preexec_fn=die_with_parent)

    def handed_out(self, request_id: str) -> int:
        """An invocation went to the process: its deadline (epoch ms), and the timer that enforces it."""
        deadline_ms = int(time.time() * 1000) + self.timeout_seconds * 1000
        with self.lock:
            self.current = request_id
            self.timer = threading.Timer(self.timeout_seconds, self.timed_out, args=(request_id,))
            self.timer.daemon = True
            self.timer.start()
        return deadline_ms

    def finished(self, request_id: str) -> bool:
        """The process answered `request_id`; False when it was already cut off (its answer is dropped)."""
        with self.lock:
            if self.current != request_id:
                return False
            self.current = None
            if self.timer:
                self.timer.cancel()
            return True

    def timed_out(self, request_id: str) -> None:
        with self.lock:
            if self.current != request_id:
                return
            self.current = None
            process = self.process
        # Lambda stops the whole execution environment: nothing the function had left to do happens.
        if process and process.poll() is None:
            process.kill()
            process.wait()
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        message = f"{stamp} {request_id} Task timed out after {self.timeout_seconds:.2f} seconds"
        log(message)
        self.fail(request_id, "Sandbox.Timedout", message)
        self.restart()

    def fail(self, request_id: str, error_type: str, message: str) -> None:
        body = json.dumps({"errorType": error_type, "errorMessage": message}).encode()
        try:
            self.upstream.request(
                "POST", f"{RUNTIME_PREFIX}{request_id}/error", body,
                {"Content-Type": "application/json", "Lambda-Runtime-Function-Error-Type": error_type},
            )
        except OSError as error:
            log(f"could not report {error_type} for {request_id}: {error}")

    def restart(self, pause: float = RESTART_PAUSE_SECONDS) -> None:
        if self.stopping:
            return
        time.sleep(pause)
        self.start()

    def upstream_alive(self) -> bool:
        try:
            socket.create_connection((self.upstream.host, self.upstream.port), timeout=2).close()
            return True
        except OSError:
            return False

    def watch(self) -> int:
        """Waits on the process; a process that exits on its own is restarted (and fails its invocation)."""
        pause = RESTART_PAUSE_SECONDS
        while True:
            with self.lock:
                process = self.process
            code = process.wait() if process else 0
            if self.stopping:
                return code
            with self.lock:
                if process is not self.process:
                    continue  # a timeout replaced it
                in_flight, self.current = self.current, None
                if self.timer:
                    self.timer.cancel()
            if in_flight:
                self.fail(in_flight, "Runtime.ExitError", f"RequestId: {in_flight} Error: Runtime exited with status {code}")
            if not self.upstream_alive():
                log("cargo lambda watch is gone; stopping")
                return code
            log(f"the function exited with status {code}; starting it again in {pause:g} s")
            self.restart(pause)
            pause = min(pause * 2, RESTART_PAUSE_MAX_SECONDS)

    def stop(self) -> None:
        self.stopping = True
        with self.lock:
            process = self.process
        if process and process.poll() is None:
            process.terminate()


def serve_runtime_api(sandbox: Sandbox) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet: the function logs for itself
            pass

        def _relay(self, method: str) -> None:
            body = self._body()
            headers = {
                k: v for k, v in self.headers.items()
                if k.lower() not in ("host", "content-length", "connection", "transfer-encoding")
            }
            path = self.path
            if method == "POST" and path.startswith(RUNTIME_PREFIX):
                request_id, _, outcome = path[len(RUNTIME_PREFIX):].partition("/")
                if outcome in ("response", "error"):
                    if not sandbox.finished(request_id):
                        self._reply(410, [], b'{"errorType":"Sandbox.Timedout","errorMessage":"already timed out"}')
                        return
            try:
                status, response_headers, response_body = sandbox.upstream.request(method, path, body, headers)
            except OSError as error:
                self._reply(502, [], json.dumps({"errorMessage": f"runtime API unreachable: {error}"}).encode())
                return
            if method == "GET" and path == f"{RUNTIME_PREFIX}next" and status == 200:
                request_id = dict((k.lower(), v) for k, v in response_headers).get("lambda-runtime-aws-request-id")
                if request_id:
                    deadline = sandbox.handed_out(request_id)
                    response_headers = [
                        (k, str(deadline) if k.lower() == "lambda-runtime-deadline-ms" else v)
                        for k, v in response_headers
                    ]
            self._reply(status, response_headers, response_body)

        def _body(self) -> bytes | None:
            """The request's body, whole: the runtime client streams its responses (chunked), http.server leaves
            decoding that to us."""
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass  # trailers
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()  # the CRLF after each chunk
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else None

        def _reply(self, status: int, headers, body: bytes) -> None:
            self.send_response(status)
            for key, value in headers:
                if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._relay("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._relay("POST")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: lambda_sandbox.py BINARY [ARGS...]", file=sys.stderr)
        return 2
    binary = Path(argv[0]).name
    settings = settings_for(binary)
    runtime_api = os.environ.get("AWS_LAMBDA_RUNTIME_API")
    if settings is None or not runtime_api:
        os.execv(argv[0], argv)
    env = {name: value for name, value in os.environ.items() if name not in settings["foreign_variables"]}
    env["AWS_ACCESS_KEY_ID"] = settings["access_key_id"]
    env["AWS_LAMBDA_FUNCTION_TIMEOUT"] = str(settings["timeout_seconds"])
    sandbox = Sandbox(argv, env, int(settings["timeout_seconds"]), Upstream(runtime_api))
    server = serve_runtime_api(sandbox)
    env["AWS_LAMBDA_RUNTIME_API"] = f"{sandbox.upstream.scheme}127.0.0.1:{server.server_address[1]}"

    def stop(signum, _frame) -> None:
        sandbox.stop()
        sys.exit(128 + signum)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    die_with_parent()
    sandbox.start()
    return sandbox.watch()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
