"""stack.py: refuses twins, stops exactly what it started, and (with a stand-in for the ResMan sandbox) brings the
whole local stack up and down. Every test works in its own directory, never in the developer's .local/."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import stack
from conftest import LOCAL_DIR, eventually, free_port, venv_tool
from provision import aws_client, read_env_file


def start_group(paths: stack.Paths, name: str, script: str) -> dict:
    """A process group like the ones `up` starts: a shell leader plus a child that outlives it."""
    return stack.start_process(paths, name, ["bash", "-c", script], dict(os.environ), marker=script)


@pytest.fixture
def paths(tmp_path) -> stack.Paths:
    return stack.Paths(tmp_path / "local")


@pytest.fixture
def cleanup(paths):
    yield
    stack.stop_all(paths, stack.read_pids(paths))


def test_up_refuses_to_start_a_twin_and_exits_zero(paths, cleanup):
    entry = start_group(paths, "moto", "sleep 300")
    stack.write_pids(paths, [entry])

    # An empty venv: should the twin check ever miss, `up` stops at "moto_server is missing" instead of building
    # the workspace and starting servers that this test would leave behind.
    completed = subprocess.run(
        [sys.executable, str(LOCAL_DIR / "stack.py"), "up"],
        env={**os.environ, "LOCAL_STACK_DIR": str(paths.local), "TOUR_BOOKING_VENV": str(paths.local / "no-venv")},
        capture_output=True, text=True, timeout=30,
    )

    assert completed.returncode == 0
    assert "the local stack is already running (see " in completed.stdout
    assert "run make down first" in completed.stdout
    assert stack.read_pids(paths) == [entry]


def test_a_record_whose_processes_are_gone_is_not_running(paths):
    entry = start_group(paths, "moto", "exit 0")
    eventually(lambda: not stack.is_running(entry))

    assert stack.running(paths) == []


def test_a_reused_pid_running_another_program_is_not_ours(paths, cleanup):
    entry = start_group(paths, "moto", "sleep 300")
    # bash execs `sleep` in its place: wait until that is done, so the command line read is the final one (while
    # the exec is under way /proc shows an empty one, which is_running must take as "still ours").
    eventually(lambda: Path(f"/proc/{entry['pid']}/cmdline").read_bytes().startswith(b"sleep"))

    assert stack.is_running(entry)
    assert not stack.is_running({**entry, "marker": "moto_server"})


def test_down_stops_the_whole_group_and_forgets_it(paths, capsys):
    # The leader ignores nothing, but its background child would survive a signal to the leader alone.
    entry = start_group(paths, "lambda", "sleep 300 & sleep 300; wait")
    stack.write_pids(paths, [entry])

    assert stack.down(paths) == 0

    assert not stack._group_alive(entry["pid"])
    assert not paths.pids.exists()
    assert "stopped lambda (pid" in capsys.readouterr().out


def test_down_kills_a_group_that_ignores_sigint(paths, tmp_path):
    ready = tmp_path / "trap-set"
    entry = start_group(paths, "stubborn", f"trap '' INT; touch {ready}; sleep 300 & wait")
    eventually(ready.exists)

    report = stack.stop_group(entry, timeout=0.5)

    assert report.startswith("killed")
    assert not stack._group_alive(entry["pid"])


def test_down_and_status_say_when_nothing_runs(paths, capsys):
    assert stack.down(paths) == 0
    assert stack.status(paths) == 0

    assert capsys.readouterr().out.count("the local stack is not running") == 2


def test_a_taken_port_is_named(paths):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        ports = stack.Ports(dynamodb=taken, moto=free_port(), resman=free_port(), lambda_=free_port(), iam=free_port(),
                            sms=free_port())

        with pytest.raises(stack.StackError, match=f"DYNAMODB_PORT={taken}"):
            stack.check_ports_free(ports)


def test_ports_come_from_the_environment_with_defaults():
    assert stack.Ports.from_env({}) == stack.Ports(dynamodb=8000, moto=5050, resman=8091, lambda_=9000, iam=5040,
                                                   sms=8093)
    assert stack.Ports.from_env({"LAMBDA_PORT": "9100"}).lambda_ == 9100
    with pytest.raises(stack.StackError, match="MOTO_PORT"):
        stack.Ports.from_env({"MOTO_PORT": "http"})


def test_the_api_key_and_webhook_secret_are_generated_once_and_reused(paths):
    first = stack.load_or_create_secrets(paths)
    second = stack.load_or_create_secrets(paths)

    assert first == second
    assert len(first["API_KEY"]) >= 32 and first["API_KEY"] != first["WEBHOOK_SECRET"]
    assert paths.secrets_env.stat().st_mode & 0o077 == 0


FAKE_SANDBOX = textwrap.dedent(
    """\
    #!{python}
    # Stands in for target/debug/resman-sandbox: answers /_sandbox/health and records its arguments.
    import argparse, json, os, pathlib
    from http.server import BaseHTTPRequestHandler, HTTPServer
    parser = argparse.ArgumentParser()
    for flag in ("--host", "--port", "--webhook-url"):
        parser.add_argument(flag)
    args = parser.parse_args()
    seen = {{**vars(args), "secret": os.environ.get("SANDBOX_WEBHOOK_SECRET"), "key": os.environ.get("SANDBOX_API_KEY")}}
    pathlib.Path(__file__).with_name("args.json").write_text(json.dumps(seen))
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/_sandbox/health" else 404)
            self.end_headers()
    HTTPServer((args.host, int(args.port)), Handler).serve_forever()
    """
)


FAKE_GATE = textwrap.dedent(
    """\
    #!{python}
    # Stands in for target/debug/iam-gate: records its arguments and says it listens (it forwards nothing).
    import json, pathlib, socket, sys, time
    pathlib.Path(__file__).with_name("gate.json").write_text(json.dumps(sys.argv[1:]))
    server = socket.socket()
    server.bind(("127.0.0.1", int(sys.argv[sys.argv.index("--port") + 1])))
    server.listen()
    print("listening on", server.getsockname(), flush=True)
    time.sleep(3600)
    """
)


FAKE_LOADER = textwrap.dedent(
    """\
    #!{python}
    # Stands in for target/debug/load-properties: records what it was asked to load, and where.
    import json, os, pathlib, sys
    seen = {{
        "files": sys.argv[1:], "table": os.environ.get("TABLE_NAME"), "aws": os.environ.get("AWS_ENDPOINT_URL"),
        "dynamodb": os.environ.get("AWS_ENDPOINT_URL_DYNAMODB"),
    }}
    pathlib.Path(__file__).with_name("loaded.json").write_text(json.dumps(seen))
    print("loaded Maple Grove Apartments")
    """
)


@pytest.fixture
def fake_build(tmp_path, monkeypatch):
    """`up` without compiling: a stand-in sandbox binary, and no function warm-up (nothing is built to start)."""
    target = tmp_path / "target"
    sandbox = target / "debug" / "resman-sandbox"
    sandbox.parent.mkdir(parents=True)
    sandbox.write_text(FAKE_SANDBOX.format(python=sys.executable))
    sandbox.chmod(0o755)
    gate = target / "debug" / "iam-gate"
    gate.write_text(FAKE_GATE.format(python=sys.executable))
    gate.chmod(0o755)
    loader = target / "debug" / "load-properties"
    loader.write_text(FAKE_LOADER.format(python=sys.executable))
    loader.chmod(0o755)
    monkeypatch.setattr(stack, "build_binaries", lambda: None)
    monkeypatch.setattr(stack, "cargo_target_dir", lambda: target)
    monkeypatch.setattr(stack, "warm_up", lambda base_url, binaries: None)
    return sandbox


def dynamodb_local_jvms(port: int) -> list[str]:
    """The pids of DynamoDB Local JVMs on `port`, by command line: what `ps` would show were one left behind."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            words = cmdline.read_bytes().split(b"\0")
        except OSError:
            continue  # gone meanwhile
        if b"DynamoDBLocal.jar" in words and str(port).encode() in words:
            found.append(cmdline.parent.name)
    return found


@pytest.fixture
def ports(monkeypatch) -> stack.Ports:
    chosen = stack.Ports(dynamodb=free_port(), moto=free_port(), resman=free_port(), lambda_=free_port(), iam=free_port(),
                         sms=free_port())
    for name, port in chosen.named().items():
        monkeypatch.setenv(name, str(port))
    return chosen


def test_up_starts_and_provisions_everything_and_down_stops_it(paths, fake_build, ports, cleanup, capsys):
    venv_tool("moto_server"), venv_tool("cargo-lambda")

    assert stack.up(paths) == 0

    processes = stack.read_pids(paths)
    assert [p["name"] for p in processes] == ["dynamodb", "moto", "resman", "sms", "iam", "lambda", "pump"]
    assert all(stack.is_running(p) for p in processes)
    env = read_env_file(paths.stack_env)
    # Functions and tools reach AWS through the IAM gate, which sits in front of moto and DynamoDB Local.
    assert env["AWS_ENDPOINT_URL"] == env["AWS_ENDPOINT_URL_DYNAMODB"] == f"http://127.0.0.1:{ports.iam}"
    gate_args = json.loads(fake_build.with_name("gate.json").read_text())
    assert gate_args[gate_args.index("--dynamodb") + 1] == f"http://127.0.0.1:{ports.dynamodb}"
    assert gate_args[gate_args.index("--others") + 1] == f"http://127.0.0.1:{ports.moto}"
    assert gate_args[gate_args.index("--sms") + 1] == env["SMS_SANDBOX_URL"] == f"http://127.0.0.1:{ports.sms}"
    policies = json.loads(paths.policies.read_text())
    assert policies["principals"]["LOCALGetTour"]["function"] == "get-tour"
    settings = json.loads(paths.function_settings.read_text())
    assert settings["tour-sync-worker"]["timeout_seconds"] == 30
    assert env["DYNAMODB_PORT"] == str(ports.dynamodb)
    dynamodb_url = f"http://127.0.0.1:{ports.dynamodb}"
    assert aws_client("dynamodb", dynamodb_url).list_tables()["TableNames"] == [env["TABLE_NAME"]]
    assert env["RESMAN_BASE_URL"] == env["RESMAN_SANDBOX_URL"] == f"http://127.0.0.1:{ports.resman}"
    assert env["LAMBDA_BASE_URL"] == f"http://127.0.0.1:{ports.lambda_}/lambda-url"
    assert env["TABLE_NAME"] == "tour-booking-local-ToursTable"
    assert {"API_KEY", "WEBHOOK_SECRET", "SYNC_QUEUE_URL", "SYNC_DLQ_URL", "AWS_REGION"} <= env.keys()
    sandbox_args = json.loads(fake_build.with_name("args.json").read_text())
    assert sandbox_args["webhook_url"] == f"http://127.0.0.1:{ports.lambda_}/lambda-url/tour-webhook/"
    assert sandbox_args["secret"] == env["WEBHOOK_SECRET"]
    assert sandbox_args["key"] == env["SANDBOX_API_KEY"] == "sandbox-api-key"
    loaded = json.loads(fake_build.with_name("loaded.json").read_text())
    assert loaded == {
        "files": [str(stack.DEMO_PROPERTIES)], "table": env["TABLE_NAME"], "aws": env["AWS_ENDPOINT_URL"],
        "dynamodb": env["AWS_ENDPOINT_URL_DYNAMODB"],
    }
    function_env = read_env_file(paths.function_env)
    assert function_env["RESMAN_BASE_URL"] == env["RESMAN_SANDBOX_URL"]
    assert function_env["AWS_ENDPOINT_URL_DYNAMODB"] == env["AWS_ENDPOINT_URL_DYNAMODB"]
    assert "API_KEY" not in function_env  # functions read keys from Secrets Manager, not from their environment
    # Texts go from the stack's pool under its configuration set, and the sender may send them (its policy).
    assert function_env["SMS_ORIGINATION"] == stack.SMS_POOL
    assert function_env["SMS_CONFIGURATION_SET"] == "tour-booking-local-tour-texts"
    sender = policies["principals"]["LOCALNotificationSender"]
    granted = json.dumps(sender)
    assert "sms-voice:SendTextMessage" in granted and f"pool/{stack.SMS_POOL}" in granted
    assert env["API_KEY"] not in capsys.readouterr().out

    assert stack.down(paths) == 0

    assert not paths.pids.exists()
    assert not any(stack._group_alive(p["pid"]) for p in processes)
    assert dynamodb_local_jvms(ports.dynamodb) == []
    eventually(lambda: all(stack.port_is_free(port) for port in ports.named().values()))


def test_a_failed_start_stops_what_it_had_started(paths, fake_build, ports):
    fake_build.write_text("#!/bin/sh\necho 'sandbox: cannot read seed' >&2\nexit 3\n")

    with pytest.raises(stack.StackError, match="the ResMan sandbox exited during start-up"):
        stack.up(paths)

    assert not paths.pids.exists()
    assert dynamodb_local_jvms(ports.dynamodb) == []
    eventually(lambda: stack.port_is_free(ports.moto) and stack.port_is_free(ports.dynamodb))
