#!/usr/bin/env python3
"""Runs one function binary as Lambda would give it its role: `lambda_sandbox.py BINARY [ARGS...]`.

The local stack makes this cargo's runner for the host target (CARGO_TARGET_<TRIPLE>_RUNNER), so every
`cargo run --bin <function>` that cargo lambda watch starts comes through here. For the function named by the
binary's file name, in the settings file named by LOCAL_FUNCTION_SETTINGS (infra/local/policies.py writes it), the
function signs its AWS calls with its own access key id, as a Lambda function signs with its execution role's
credentials. The local IAM gate (infra/iam-gate) maps that key to the function's policy in template.yaml and refuses
any call outside it.

A binary with no settings (a workspace binary that is not a function of the template) runs unchanged. The binary
replaces this process (exec), so cargo lambda watch sees and stops the function itself.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def settings_for(binary: str, settings_file: str | None) -> dict | None:
    if not settings_file:
        return None
    try:
        return json.loads(Path(settings_file).read_text()).get(binary)
    except (OSError, ValueError) as error:
        print(f"lambda_sandbox: cannot read {settings_file}: {error}", file=sys.stderr)
        return None


def function_env(binary: str, environ: dict[str, str]) -> dict[str, str]:
    """The environment the function runs with: its own access key id in place of the stack's."""
    settings = settings_for(binary, environ.get("LOCAL_FUNCTION_SETTINGS"))
    if settings is None:
        return dict(environ)
    return {**environ, "AWS_ACCESS_KEY_ID": settings["access_key_id"]}


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: lambda_sandbox.py BINARY [ARGS...]", file=sys.stderr)
        return 2
    os.execve(argv[0], argv, function_env(Path(argv[0]).name, dict(os.environ)))
    return 127  # not reached: execve replaced this process or raised


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
