#!/usr/bin/env python3
"""Starts, stops and reports the local stack: `python infra/local/stack.py up|down|status` (make up/down/status).

`up` starts, each in its own process group with its log in .local/logs/<name>.log:
  dynamodb   DynamoDB Local (infra/local/dynamodb_local.py: AWS's emulator, with DynamoDB's transactions) on
             DYNAMODB_PORT (default 8000). It has no host option: it listens on every interface, not only 127.0.0.1.
  moto       moto_server on MOTO_PORT (default 5050): SQS, SES, Secrets Manager
  resman     the ResMan sandbox on RESMAN_PORT (default 8091), sending its signed webhooks to tour-webhook
  sms        the stand-in for AWS End User Messaging SMS (infra/local/sms_sandbox.py) on SMS_PORT (default 8093),
             a pool with self-managed opt-outs (SMS_POOL, "pool-local"): each text's delivery receipt and each
             prospect's reply (played by POST /_sandbox/replies) go to tour-text-events as SNS events would
  iam        the IAM gate (infra/iam-gate) on IAM_PORT (default 5040), in front of DynamoDB Local, moto and the SMS
             stand-in: each
             function's AWS calls are held to its policy in template.yaml (.local/policies.json); the functions and
             tools reach AWS through it (AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_DYNAMODB point at it)
  lambda     `cargo lambda watch` on LAMBDA_PORT (default 9000): every function of the workspace, up to
             LAMBDA_CONCURRENCY (default 4) instances of each at once, each under infra/local/lambda_sandbox.py
             (its own access key, its template Timeout enforced)
  pump       infra/local/pump.py: the SQS, DynamoDB stream and schedule triggers of template.yaml (the streams
             read straight from DynamoDB Local)
after building the workspace's binaries, provisioning DynamoDB Local and moto from template.yaml
(infra/local/provision.py) and loading the demo properties (infra/properties/demo.json; DEMO_DATA=0 skips it). The
functions run with the environment that provisioning resolved from the template (.local/function.env).
It then writes .local/stack.env (KEY=VALUE, sourceable: `set -a; . .local/stack.env; set +a`) and
.local/pids.json. The API key and webhook secret are generated once and kept in .local/secrets.env, so they stay
the same across restarts.

stack.env: the functions' environment (TABLE_NAME, SYNC_QUEUE_URL, SYNC_DLQ_URL, QUEUE_URL_<LogicalId>, the secret
ARNs, AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_DYNAMODB (both the IAM gate), AWS_REGION, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, ...) plus RESMAN_BASE_URL and RESMAN_SANDBOX_URL (the sandbox), LAMBDA_BASE_URL
(http://127.0.0.1:$LAMBDA_PORT/lambda-url), LAMBDA_INVOKE_URL (http://127.0.0.1:$LAMBDA_PORT, for the raw invoke
API), API_KEY, WEBHOOK_SECRET, SANDBOX_INTEGRATION_PARTNER_ID, SANDBOX_API_KEY, SANDBOX_ACCOUNT_ID, DYNAMODB_PORT,
MOTO_PORT, RESMAN_PORT, LAMBDA_PORT. The AWS SDKs (Rust, boto3) read both endpoint variables from the environment.

`down` stops exactly the processes that `up` recorded (SIGINT to each process group, SIGKILL after a timeout).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import dynamodb_local
from provision import DEFAULT_TEMPLATE, provision, read_env_file, write_env_file
from cfn_template import load_template
from tourlocal.ports import port_open

REPO_ROOT = Path(__file__).resolve().parents[2]
# Tests point this elsewhere so that they never touch a developer's running stack.
LOCAL_DIR = Path(os.environ.get("LOCAL_STACK_DIR", REPO_ROOT / ".local"))
VENV_BIN = Path(os.environ.get("TOUR_BOOKING_VENV", REPO_ROOT / ".venv")) / "bin"
DEMO_PROPERTIES = REPO_ROOT / "infra" / "properties" / "demo.json"

REGION = "us-east-1"
STAGE = "local"
# What the sandbox accepts (its seed); the functions read them from the ResMan credentials secret, where
# `account_id` is a JSON number (ResMan's AccountID is an integer; the functions refuse a string).
SANDBOX_CREDENTIALS = {"integration_partner_id": "domiq-sandbox", "api_key": "sandbox-api-key", "account_id": 400}
WEBHOOK_FUNCTION_BINARY = "tour-webhook"
TEXT_EVENTS_FUNCTION_BINARY = "tour-text-events"
# The stack's phone pool (the template's SmsOrigination): any id does for the stand-in.
SMS_POOL = "pool-local"
SELF_SERVICE_FUNCTION_BINARY = "tour-self-service"
METRICS_FUNCTION_BINARY = "tour-metrics"
DASHBOARD_FUNCTION_BINARY = "tour-dashboard"

STOP_TIMEOUT_SECONDS = 10.0
WARM_UP_TIMEOUT_SECONDS = 600.0  # cargo lambda watch may compile a function on its first request


class StackError(Exception):
    """`up` cannot continue; the message says why and what to do."""


@dataclass(frozen=True)
class Paths:
    local: Path

    @property
    def pids(self) -> Path:
        return self.local / "pids.json"

    @property
    def stack_env(self) -> Path:
        return self.local / "stack.env"

    @property
    def secrets_env(self) -> Path:
        return self.local / "secrets.env"

    @property
    def function_env(self) -> Path:
        return self.local / "function.env"

    @property
    def logs(self) -> Path:
        return self.local / "logs"

    @property
    def policies(self) -> Path:
        return self.local / "policies.json"

    @property
    def function_settings(self) -> Path:
        return self.local / "functions.json"


@dataclass(frozen=True)
class Ports:
    dynamodb: int
    moto: int
    resman: int
    lambda_: int
    iam: int
    sms: int

    @classmethod
    def from_env(cls, environ=os.environ) -> "Ports":
        return cls(
            dynamodb=_port(environ, "DYNAMODB_PORT", 8000),
            moto=_port(environ, "MOTO_PORT", 5050),
            resman=_port(environ, "RESMAN_PORT", 8091),
            lambda_=_port(environ, "LAMBDA_PORT", 9000),
            iam=_port(environ, "IAM_PORT", 5040),
            sms=_port(environ, "SMS_PORT", 8093),
        )

    def named(self) -> dict[str, int]:
        return {
            "DYNAMODB_PORT": self.dynamodb, "MOTO_PORT": self.moto, "RESMAN_PORT": self.resman,
            "LAMBDA_PORT": self.lambda_, "IAM_PORT": self.iam, "SMS_PORT": self.sms,
        }


def _port(environ, name: str, default: int) -> int:
    value = environ.get(name, str(default))
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise StackError(f"{name}={value!r} is not a port number")
    return int(value)


def say(message: str) -> None:
    print(message, flush=True)


# --- Processes: start, check, stop ---------------------------------------------------------------------------------


def read_pids(paths: Paths) -> list[dict]:
    try:
        return json.loads(paths.pids.read_text())["processes"]
    except FileNotFoundError:
        return []
    except (ValueError, KeyError, TypeError):
        say(f"warning: {paths.pids} is unreadable; ignoring it")
        return []


def write_pids(paths: Paths, processes: list[dict]) -> None:
    paths.local.mkdir(parents=True, exist_ok=True)
    paths.pids.write_text(json.dumps({"processes": processes}, indent=2) + "\n")


def is_running(entry: dict) -> bool:
    """True while anything of the process group that `up` started is alive.

    Each process leads its own group (pgid = pid), and the group outlives its leader when a child is left behind
    (cargo lambda watch's function processes). A pid reused by an unrelated program is told apart by its command
    line, where /proc can show it.
    """
    pgid = entry["pid"]
    if not _group_alive_or_foreign(pgid):
        return False
    try:
        cmdline = Path(f"/proc/{pgid}/cmdline").read_bytes()
    except FileNotFoundError:
        return True  # the leader is gone but its group lives on
    # Empty while the leader is still exec'ing (just after start) or is a zombie: nothing to tell it apart by.
    return not cmdline or entry["marker"] in cmdline.replace(b"\0", b" ").decode(errors="replace")


def running(paths: Paths) -> list[dict]:
    return [entry for entry in read_pids(paths) if is_running(entry)]


def start_process(paths: Paths, name: str, argv: list[str], env: dict[str, str], marker: str | None = None) -> dict:
    """Starts `argv` in a new session. `marker`, a word of its command line (default: the program's name), is what
    later tells this process apart from an unrelated one that got the same pid."""
    paths.logs.mkdir(parents=True, exist_ok=True)
    log_path = paths.logs / f"{name}.log"
    with open(log_path, "wb") as log_file:  # a fresh log per start: readiness checks read it
        process = subprocess.Popen(
            argv,
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: `down` can stop it and all it forks
        )
    return {"name": name, "pid": process.pid, "marker": marker or Path(argv[0]).name, "log": str(log_path)}


def stop_group(entry: dict, timeout: float = STOP_TIMEOUT_SECONDS) -> str:
    """SIGINT to the group (what Ctrl-C would send), then SIGKILL if it is still there after `timeout`."""
    pgid = entry["pid"]
    try:
        os.killpg(pgid, signal.SIGINT)
    except ProcessLookupError:
        return "already gone"
    if _wait_for_group_exit(pgid, timeout):
        return "stopped"
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return "stopped"
    _wait_for_group_exit(pgid, 2.0)  # SIGKILL is not instant either
    return f"killed (did not stop within {timeout:g} s)"


def _wait_for_group_exit(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _group_alive(pgid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def _group_alive(pgid: int) -> bool:
    _reap_if_our_child(pgid)
    try:
        os.killpg(pgid, 0)
        return True
    except ProcessLookupError:
        return False


def _reap_if_our_child(pid: int) -> None:
    """Collects the leader if this very process started it and it has exited, so that its zombie does not look
    alive (when `up` fails, or in tests that start and stop in one process)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass  # not our child: init collects it


def _group_alive_or_foreign(pgid: int) -> bool:
    try:
        return _group_alive(pgid)
    except PermissionError:
        return False  # another user's processes: not what we started


def stop_all(paths: Paths, processes: list[dict]) -> list[str]:
    """Stops the recorded processes, last started first; returns one line per process."""
    report = []
    for entry in reversed(processes):
        outcome = stop_group(entry) if is_running(entry) else "was not running"
        report.append(f"{entry['name']} (pid {entry['pid']}): {outcome}")
    paths.pids.unlink(missing_ok=True)
    return report


# --- Readiness -----------------------------------------------------------------------------------------------------


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As servers bind: connections of a stopped server lingering in TIME_WAIT do not make the port taken.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def check_ports_free(ports: Ports) -> None:
    taken = [f"{name}={port}" for name, port in ports.named().items() if not port_is_free(port)]
    if taken:
        raise StackError(
            f"port(s) already in use: {', '.join(taken)}. Stop what uses them, or choose others, "
            "e.g. `make up DYNAMODB_PORT=8001`."
        )


def wait_until(ready, what: str, entry: dict, timeout: float) -> None:
    """Polls `ready()` until true; fails early when the process died, pointing at its log."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if not is_running(entry):
            raise StackError(f"{what} exited during start-up; see {entry['log']}:\n{log_tail(entry['log'])}")
        time.sleep(0.2)
    raise StackError(f"{what} was not ready after {timeout:g} s; see {entry['log']}:\n{log_tail(entry['log'])}")


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The HTTP status of a GET, or None when nothing answered."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except (urllib.error.URLError, TimeoutError, ConnectionError):
        return None


def log_tail(path: str, lines: int = 15) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --- Pieces of `up` ------------------------------------------------------------------------------------------------


def require_tool(path: Path, hint: str) -> str:
    if not path.exists():
        raise StackError(f"{path} is missing; {hint}")
    return str(path)


def require_dynamodb_local() -> None:
    """Fails before the build, not minutes later, when DynamoDB Local or a Java to run it is missing."""
    try:
        dynamodb_local.jar_dir()
        dynamodb_local.find_java()
    except dynamodb_local.NotInstalled as error:
        raise StackError(str(error)) from None


# The local stack's secrets: the chatbot's API key, a manager key for each demo company (the Maple Grove company is the
# ResMan credentials' own account, "default"; Riverside Living is account 401), the webhook and link secrets.
LOCAL_SECRETS = ("API_KEY", "MANAGER_API_KEY", "RIVERSIDE_MANAGER_API_KEY", "WEBHOOK_SECRET", "LINK_SECRET")
RIVERSIDE_ACCOUNT = 401


def load_or_create_secrets(paths: Paths) -> dict[str, str]:
    """The local keys and secrets: random once, then reused, so clients configured with them keep working across
    `make down`/`make up` (one added since is made and kept beside the others)."""
    stored = read_env_file(paths.secrets_env) if paths.secrets_env.exists() else {}
    missing = [name for name in LOCAL_SECRETS if not stored.get(name)]
    if not missing:
        return stored
    kept = {**stored, **{name: secrets.token_urlsafe(32) for name in missing}}
    write_env_file(paths.secrets_env, kept)
    paths.secrets_env.chmod(0o600)
    return kept


def api_keys_secret(local_secrets: dict[str, str]) -> str:
    """The API keys' secret: the chatbot's key as a plain key (every company), and each company's manager key as a
    record holding only its digest."""
    def manager(name: str, accounts: list, key: str) -> dict:
        return {"name": name, "role": "manager", "accounts": accounts,
                "key_sha256": hashlib.sha256(key.encode()).hexdigest()}
    return json.dumps([
        local_secrets["API_KEY"],
        manager("Maple Grove manager", ["default"], local_secrets["MANAGER_API_KEY"]),
        manager("Riverside Living manager", [RIVERSIDE_ACCOUNT], local_secrets["RIVERSIDE_MANAGER_API_KEY"]),
    ])


def cargo_target_dir() -> Path:
    metadata = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=REPO_ROOT, check=True, capture_output=True, text=True,
    )
    return Path(json.loads(metadata.stdout)["target_directory"])


def build_binaries() -> None:
    """Builds the sandbox and every function binary up front: cargo lambda watch would otherwise compile each
    function on its first request, tens of seconds that a webhook sender would not wait for.
    (`--workspace --bins` includes resman-sandbox's binary.)"""
    say("Building the workspace's binaries (cargo build --workspace --bins) ...")
    result = subprocess.run(["cargo", "build", "--workspace", "--bins"], cwd=REPO_ROOT)
    if result.returncode != 0:
        raise StackError("cargo build failed (output above)")


def load_demo_data(function_env: dict[str, str], target_dir: Path) -> None:
    """Stores the demo properties (infra/properties/demo.json: office hours, agents, tour types) in the table, with
    the workspace's `load-properties` command, so that the functions know the property the sandbox is seeded with.

    On by default; `make up DEMO_DATA=0` skips it (an empty table, e.g. to try `load-properties` by hand)."""
    loader = target_dir / "debug" / "load-properties"
    if not (loader.exists() and DEMO_PROPERTIES.exists()):
        say(f"Demo data: nothing loaded (needs {loader.relative_to(target_dir.parent)} and "
            f"{DEMO_PROPERTIES.relative_to(REPO_ROOT)})")
        return
    result = subprocess.run(
        [str(loader), str(DEMO_PROPERTIES)],
        cwd=REPO_ROOT, env={**os.environ, **function_env}, capture_output=True, text=True, timeout=120,
    )
    if result.returncode != 0:
        raise StackError(f"loading the demo properties failed: {result.stderr.strip() or result.stdout.strip()}")
    for line in result.stdout.splitlines():
        say(f"Demo data: {line}")


def lambda_concurrency() -> int:
    """How many instances of each function cargo lambda watch may run at once (LAMBDA_CONCURRENCY, default 4)."""
    value = os.environ.get("LAMBDA_CONCURRENCY", "4")
    if not value.isdigit() or int(value) < 1:
        raise StackError(f"LAMBDA_CONCURRENCY={value!r} is not a positive whole number")
    return int(value)


def demo_data_requested() -> bool:
    return os.environ.get("DEMO_DATA", "1") != "0"


def warm_up(lambda_base_url: str, binaries: list[str]) -> None:
    """Sends one request to each HTTP-facing function so that a first real request (say, the sandbox's webhook)
    does not wait for cargo lambda watch to start it. An unsigned GET changes nothing: the function rejects it."""
    for binary in binaries:
        say(f"Starting {binary} under cargo lambda watch ...")
        status = http_status(f"{lambda_base_url}/{binary}/", timeout=WARM_UP_TIMEOUT_SECONDS)
        say(f"  {binary} answered {status}" if status else f"  {binary} did not answer; see .local/logs/lambda.log")


def http_function_binaries() -> list[str]:
    binaries = []
    for function in load_template(DEFAULT_TEMPLATE).functions():
        has_url = "FunctionUrlConfig" in function.properties
        if function.binary and (has_url or function.events_of_type("HttpApi", "Api")):
            binaries.append(function.binary)
    return binaries


def sandbox_credentials_env() -> dict[str, str]:
    """What the sandbox accepts, set explicitly so that it and the credentials secret cannot disagree."""
    return {
        "SANDBOX_INTEGRATION_PARTNER_ID": SANDBOX_CREDENTIALS["integration_partner_id"],
        "SANDBOX_API_KEY": SANDBOX_CREDENTIALS["api_key"],
        "SANDBOX_ACCOUNT_ID": str(SANDBOX_CREDENTIALS["account_id"]),
    }


def host_runner_variable() -> str:
    """Cargo's runner setting for the host target, e.g. CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUNNER."""
    version = subprocess.run(["rustc", "-vV"], check=True, capture_output=True, text=True).stdout
    host = next(line.split(":", 1)[1].strip() for line in version.splitlines() if line.startswith("host:"))
    return f"CARGO_TARGET_{host.upper().replace('-', '_')}_RUNNER"


def lambda_sandbox_env(python: str, paths: Paths) -> dict[str, str]:
    """Every function that cargo lambda watch starts runs under infra/local/lambda_sandbox.py (cargo's runner): with
    its own credentials, which the IAM gate holds to the function's policy in template.yaml, and cut off at its
    template Timeout, as Lambda cuts it off."""
    sandbox = Path(__file__).with_name("lambda_sandbox.py").resolve()
    return {host_runner_variable(): f"{python} {sandbox}", "LOCAL_FUNCTION_SETTINGS": str(paths.function_settings)}


def base_env() -> dict[str, str]:
    """Our environment with the venv's tools first on PATH (cargo lambda looks for zig there)."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def up(paths: Paths) -> int:
    live = running(paths)
    if live:
        say(f"the local stack is already running (see {paths.stack_env}); run make down first")
        return 0
    paths.pids.unlink(missing_ok=True)  # stale: nothing it names is alive

    ports = Ports.from_env()
    check_ports_free(ports)
    moto_server = require_tool(VENV_BIN / "moto_server", "run `make venv`")
    python = require_tool(VENV_BIN / "python", "run `make venv`")
    cargo_lambda = require_tool(VENV_BIN / "cargo-lambda", "run `make venv`")
    require_dynamodb_local()
    if shutil.which("cargo") is None:
        raise StackError("cargo is not on PATH")
    build_binaries()
    target_dir = cargo_target_dir()
    sandbox = require_tool(target_dir / "debug" / "resman-sandbox", "the resman-sandbox binary was not built")
    iam_gate = require_tool(target_dir / "debug" / "iam-gate", "the iam-gate binary was not built")
    local_secrets = load_or_create_secrets(paths)

    aws_url = f"http://127.0.0.1:{ports.moto}"
    dynamodb_url = dynamodb_local.url(ports.dynamodb)
    # What the functions and tools reach AWS through: the IAM gate, in front of DynamoDB Local and moto.
    gate_url = f"http://127.0.0.1:{ports.iam}"
    sandbox_url = f"http://127.0.0.1:{ports.resman}"
    sms_url = f"http://127.0.0.1:{ports.sms}"
    lambda_invoke_url = f"http://127.0.0.1:{ports.lambda_}"
    lambda_base_url = f"{lambda_invoke_url}/lambda-url"
    started: list[dict] = []

    def launch(name: str, argv: list[str], env: dict[str, str], marker: str | None = None) -> dict:
        entry = start_process(paths, name, argv, env, marker)
        started.append(entry)
        write_pids(paths, started)  # after each start: a failed `up` can still be cleaned by `make down`
        return entry

    try:
        # The JVM takes seconds to start: moto and the sandbox start meanwhile.
        dynamodb = launch(
            "dynamodb",
            [python, str(Path(dynamodb_local.__file__).resolve()), "--port", str(ports.dynamodb)],
            base_env(),
            marker="dynamodb_local.py",
        )
        moto = launch("moto", [moto_server, "-H", "127.0.0.1", "-p", str(ports.moto)], base_env())
        wait_until(lambda: port_open(ports.moto), "moto_server", moto, timeout=30)
        say(f"moto (SQS, SES, Secrets Manager): {aws_url}")

        resman = launch(
            "resman",
            [
                sandbox, "--host", "127.0.0.1", "--port", str(ports.resman),
                "--webhook-url", f"{lambda_base_url}/{WEBHOOK_FUNCTION_BINARY}/",
            ],
            # Secrets through the environment, not flags: a command line is visible to every user in `ps`.
            {**base_env(), "SANDBOX_WEBHOOK_SECRET": local_secrets["WEBHOOK_SECRET"], **sandbox_credentials_env()},
        )
        wait_until(lambda: http_status(f"{sandbox_url}/_sandbox/health") == 200, "the ResMan sandbox", resman, 60)
        say(f"ResMan sandbox: {sandbox_url}")
        text_events = f"{lambda_invoke_url}/2015-03-31/functions/{TEXT_EVENTS_FUNCTION_BINARY}/invocations"
        sms = launch(
            "sms",
            [
                python, str(Path(__file__).with_name("sms_sandbox.py")), "--port", str(ports.sms),
                "--deliver-events-to", text_events, "--deliver-inbound-to", text_events, "--self-managed-opt-outs",
            ],
            base_env(),
            marker="sms_sandbox.py",
        )
        wait_until(lambda: "listening on" in log_tail(sms["log"], 20), "the SMS stand-in", sms, 30)
        say(f"SMS stand-in (End User Messaging SMS): {sms_url}")
        ready = f"ready {dynamodb_url}"
        wait_until(lambda: ready in log_tail(dynamodb["log"], 50), "DynamoDB Local", dynamodb, timeout=90)
        say(f"DynamoDB Local: {dynamodb_url}")

        provisioned = provision(
            endpoint=aws_url,
            dynamodb_endpoint=dynamodb_url,
            template_path=DEFAULT_TEMPLATE,
            params={"Stage": STAGE, "ResManBaseUrl": sandbox_url, "SmsOrigination": SMS_POOL},
            secrets={
                "ResManCredentialsSecretArn": json.dumps(SANDBOX_CREDENTIALS),
                "ApiKeysSecretArn": api_keys_secret(local_secrets),
                "WebhookSecretArn": local_secrets["WEBHOOK_SECRET"],
                "LinkSecretArn": local_secrets["LINK_SECRET"],
            },
            region=REGION,
        )
        paths.policies.write_text(json.dumps(provisioned.gate_policies, indent=2) + "\n")
        paths.function_settings.write_text(json.dumps(provisioned.function_settings, indent=2) + "\n")
        gate = launch(
            "iam",
            [
                iam_gate, "--port", str(ports.iam), "--policies", str(paths.policies),
                "--dynamodb", dynamodb_url, "--others", aws_url, "--sms", sms_url,
            ],
            base_env(),
        )
        wait_until(lambda: "listening on" in log_tail(gate["log"], 50), "the IAM gate", gate, timeout=30)
        say(f"IAM gate (each function's AWS calls against its policy in template.yaml): {gate_url}")
        function_env = provisioned.env()
        function_env["AWS_ENDPOINT_URL"] = gate_url
        function_env["AWS_ENDPOINT_URL_DYNAMODB"] = gate_url
        # The self-service links in emails point at the local page function, not at an API Gateway stage.
        function_env["SELF_SERVICE_URL"] = f"{lambda_base_url}/{SELF_SERVICE_FUNCTION_BINARY}/tour"
        # The dashboard page calls the local metrics function (the same origin: cargo lambda watch's port).
        function_env["METRICS_API_BASE"] = f"{lambda_base_url}/{METRICS_FUNCTION_BINARY}"
        write_env_file(paths.function_env, function_env)
        say(f"Provisioned from template.yaml: table {function_env.get('TABLE_NAME')}, "
            f"{len(provisioned.queues)} queues, {len(provisioned.secrets)} secrets")

        stack_env = {
            **function_env,
            "RESMAN_BASE_URL": sandbox_url,
            "RESMAN_SANDBOX_URL": sandbox_url,
            "SMS_SANDBOX_URL": sms_url,
            "LAMBDA_BASE_URL": lambda_base_url,
            "LAMBDA_INVOKE_URL": lambda_invoke_url,
            **sandbox_credentials_env(),
            **{name: str(port) for name, port in ports.named().items()},
            **local_secrets,
        }
        if demo_data_requested():
            load_demo_data(function_env, target_dir)

        lambda_env = {**base_env(), **function_env, **lambda_sandbox_env(python, paths)}
        lambda_entry = launch(
            "lambda",
            [
                cargo_lambda, "lambda", "watch", "-A", "127.0.0.1", "-P", str(ports.lambda_),
                "--env-file", str(paths.function_env),
                # Several instances of a function at once, as Lambda would scale out: concurrent requests then
                # reach DynamoDB concurrently instead of queueing behind one process.
                "--concurrency", str(lambda_concurrency()),
            ],
            lambda_env,
        )
        wait_until(lambda: http_status(lambda_invoke_url) is not None, "cargo lambda watch", lambda_entry, 120)
        say(f"Functions (cargo lambda watch): {lambda_base_url}/<function>/")

        pump = launch(
            "pump",
            [
                sys.executable, str(Path(__file__).with_name("pump.py")),
                "--endpoint", aws_url, "--lambda-base", lambda_invoke_url, "--region", REGION,
                # Streams straight from DynamoDB Local, not through the IAM gate: the pump plays Lambda's own service.
                "--dynamodb-endpoint", dynamodb_url,
            ],
            base_env(),
            marker="pump.py",
        )
        wait_until(lambda: "delivering" in log_tail(pump["log"], 50), "the event pump", pump, 30)

        write_env_file(paths.stack_env, dict(sorted(stack_env.items())))
        paths.stack_env.chmod(0o600)
        warm_up(lambda_base_url, http_function_binaries())
    except BaseException:
        say("Start-up failed; stopping what was started:")
        for line in stop_all(paths, started):
            say(f"  {line}")
        raise

    say("")
    say(f"The local stack is up. Settings (including the API key): {paths.stack_env}")
    say(f"Logs: {paths.logs}/  Stop it with: make down")
    return 0


def down(paths: Paths) -> int:
    processes = read_pids(paths)
    if not processes or not any(is_running(entry) for entry in processes):
        paths.pids.unlink(missing_ok=True)
        say("the local stack is not running")
        return 0
    for line in stop_all(paths, processes):
        say(f"stopped {line}")
    return 0


def status(paths: Paths) -> int:
    processes = read_pids(paths)
    if not processes:
        say("the local stack is not running")
        return 0
    for entry in processes:
        state = "running" if is_running(entry) else "NOT running"
        say(f"{entry['name']:<7} pid {entry['pid']:<8} {state:<12} log {entry['log']}")
    if paths.stack_env.exists():
        env = read_env_file(paths.stack_env)
        for key in ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL", "RESMAN_SANDBOX_URL", "LAMBDA_BASE_URL"):
            if key in env:
                say(f"{key}={env[key]}")
    return 0


def main(argv: list[str]) -> int:
    commands = {"up": up, "down": down, "status": status}
    if len(argv) != 1 or argv[0] not in commands:
        print("usage: stack.py up|down|status", file=sys.stderr)
        return 2
    try:
        return commands[argv[0]](Paths(LOCAL_DIR))
    except StackError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
