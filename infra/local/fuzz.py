"""Fuzzes the API as described in `openapi.yaml` with schemathesis, through the local API Gateway stand-in
(`gateway.py`), so every case reaches the real function the way API Gateway would.

It starts a local stack of its own on free ports (or uses a running one with `--stack-env .local/stack.env`), puts
one gateway in front of the HTTP API's routes and one in front of the webhook's function URL, and runs schemathesis
with a fixed seed over every operation: generated valid and invalid requests, plus requests with unlisted methods.
A case fails on any 5xx, an undeclared status, a response whose body, content type or headers do not match the
description, a request the description rejects that the API accepts, or a 405 without `Allow`.

    python infra/local/fuzz.py --examples 30 --seed 20261130      # what `make test` runs (under 3 minutes)
    python infra/local/fuzz.py --examples 800                        # `make fuzz`: 10,000 cases and more

Prints the cases run and the failures found, and exits 1 when there is a failure (the report's path says which).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gateway  # noqa: E402
from tourlocal.ports import free_port  # noqa: E402
import stack  # noqa: E402
from provision import read_env_file  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
OPENAPI = REPO_ROOT / "openapi.yaml"
CONFIG = Path(__file__).resolve().parent / "schemathesis.toml"
VENV_BIN = REPO_ROOT / ".venv" / "bin"
DEFAULT_SEED = 20261130
# The checks that hold the API to its description. Left out: `positive_data_acceptance` (a well-formed request for a
# property or tour that does not exist is rightly refused) and the stateful checks, which need links between
# operations that the description does not declare.
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
    "negative_data_rejection",
    "missing_required_header",
    "unsupported_method",
    "allow_header_conformance",
    "ignored_auth",
)
# The function URL's paths: its root and the brief's path, answered alike.
WEBHOOK_PATHS = ("/", "/api/resman/webhooks/tour-update")
WEBHOOK_BINARY = "tour-webhook"


@dataclass
class Outcome:
    cases: int
    failures: int
    report: Path


@contextmanager
def own_stack(work: Path):
    """A local stack of its own, on free ports, stopped afterwards."""
    paths = stack.Paths(work / "local")
    ports = stack.Ports(dynamodb=free_port(), moto=free_port(), resman=free_port(), lambda_=free_port(), iam=free_port(),
                        sms=free_port())
    saved = {name: os.environ.get(name) for name in ports.named()}
    os.environ.update({name: str(port) for name, port in ports.named().items()})
    try:
        if stack.up(paths) != 0:
            raise SystemExit("fuzz: the local stack did not start")
        yield read_env_file(paths.stack_env)
    finally:
        stack.down(paths)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_schemathesis(base_url: str, report: Path, examples: int, seed: int, include: list[str],
                     headers: dict[str, str]) -> Outcome:
    argv = [
        str(VENV_BIN / "schemathesis"), "--config-file", str(CONFIG), "run", str(OPENAPI),
        "--url", base_url,
        "--max-examples", str(examples),
        "--seed", str(seed),
        "--generation-deterministic",
        "--checks", ",".join(CHECKS),
        "--continue-on-failure",
        "--workers", "2",
        "--request-timeout", "30",
        "--phases", "examples,coverage,fuzzing",
        "--report", "ndjson",
        "--report-ndjson-path", str(report),
        "--suppress-health-check", "all",
        "--no-color",
    ]
    for arg in include:
        argv += arg.split(" ", 1)
    for name, value in headers.items():
        argv += ["--header", f"{name}: {value}"]
    # Run from the report's folder: schemathesis keeps its caches (.schemathesis/) in the working directory.
    completed = subprocess.run(argv, capture_output=True, text=True, cwd=report.parent)
    cases, failures = count(report)
    if completed.returncode not in (0, 1) or cases == 0:
        sys.stderr.write(completed.stdout[-4000:] + completed.stderr[-4000:])
        raise SystemExit(f"fuzz: schemathesis did not run (exit {completed.returncode})")
    if failures:
        sys.stdout.write(completed.stdout[-12000:])
    return Outcome(cases, failures, report)


def count(report: Path) -> tuple[int, int]:
    """(cases run, failed checks) from schemathesis's NDJSON events."""
    cases = failures = 0
    if not report.exists():
        return 0, 0
    for line in report.read_text().splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        for name, body in event.items():
            if name == "ScenarioFinished" and isinstance(body, dict):
                recorder = body.get("recorder") or {}
                cases += len(recorder.get("cases") or {})
                for check_group in (recorder.get("checks") or {}).values():
                    failures += sum(1 for check in check_group if str(check.get("status")).lower() == "failure")
    return cases, failures


def fuzz(env: dict[str, str], examples: int, seed: int, out: Path) -> list[Outcome]:
    lambda_base = env["LAMBDA_INVOKE_URL"]
    outcomes = []
    with ExitStack() as servers:
        api_port, url_port = free_port(), free_port()
        servers.callback(gateway.serve(lambda_base, api_port).shutdown)
        servers.callback(gateway.serve(lambda_base, url_port, function_url=WEBHOOK_BINARY).shutdown)
        outcomes.append(run_schemathesis(
            f"http://127.0.0.1:{api_port}", out / "api.ndjson", examples, seed,
            ["--exclude-path " + path for path in WEBHOOK_PATHS], {"x-api-key": env["API_KEY"]},
        ))
        outcomes.append(run_schemathesis(
            f"http://127.0.0.1:{url_port}", out / "webhook.ndjson", examples, seed,
            ["--include-path " + path for path in WEBHOOK_PATHS], {},
        ))
    return outcomes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=30, help="cases per operation and phase (default 30)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--stack-env", help="use the running stack this stack.env describes")
    parser.add_argument("--out", help="where the reports go (default: a temporary directory)")
    args = parser.parse_args(argv)
    out = Path(args.out or tempfile.mkdtemp(prefix="fuzz-"))
    out.mkdir(parents=True, exist_ok=True)
    with ExitStack() as context:
        env = (read_env_file(args.stack_env) if args.stack_env
               else context.enter_context(own_stack(Path(tempfile.mkdtemp(prefix="fuzz-stack-")))))
        outcomes = fuzz(env, args.examples, args.seed, out)
    cases = sum(o.cases for o in outcomes)
    failures = sum(o.failures for o in outcomes)
    print(f"fuzz: {cases} cases run (seed {args.seed}), {failures} failures; reports in {out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
