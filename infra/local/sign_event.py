#!/usr/bin/env python3
"""Re-signs a sample webhook event from events/ so that tour-webhook accepts it now.

The function rejects a signature older than 5 minutes and an `event_id` it has already applied, so a stored
sample goes stale. This prints the event with a fresh `timestamp`, a new `event_id` and an `X-ResMan-Signature`
computed as ResMan (the sandbox) does: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`.

    python infra/local/sign_event.py events/tour-webhook-confirmed.json > /tmp/event.json
    curl -s -X POST "$LAMBDA_INVOKE_URL/2015-03-31/functions/tour-webhook/invocations" -d @/tmp/event.json

The secret is WEBHOOK_SECRET from .local/stack.env (what `make up` gave the function), else `--secret`.
Give `--keep-event-id` to replay the same notice (the function should answer "duplicate").
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from provision import read_env_file

STACK_ENV = Path(__file__).resolve().parents[2] / ".local" / "stack.env"


def signature(secret: str, timestamp: int, body: str) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def resign(event: dict, secret: str, now: int, keep_event_id: bool) -> dict:
    notice = json.loads(event["body"])
    if not keep_event_id:
        notice["event_id"] = str(uuid.uuid4())
    notice["timestamp"] = datetime.fromtimestamp(now, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = json.dumps(notice, separators=(",", ":"))
    headers = {**event.get("headers", {}), "x-resman-signature": signature(secret, now, body)}
    request_context = {**event.get("requestContext", {}), "timeEpoch": now * 1000}
    return {**event, "body": body, "headers": headers, "requestContext": request_context}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Re-signs a sample tour-webhook event with a fresh timestamp.")
    parser.add_argument("event", type=Path)
    parser.add_argument("--secret", help="webhook secret (default: WEBHOOK_SECRET of .local/stack.env)")
    parser.add_argument("--keep-event-id", action="store_true", help="replay the same event_id")
    args = parser.parse_args(argv)
    secret = args.secret or (read_env_file(STACK_ENV).get("WEBHOOK_SECRET") if STACK_ENV.exists() else None)
    if not secret:
        parser.error("no --secret given and no local stack running (make up) to take WEBHOOK_SECRET from")
    event = json.loads(args.event.read_text())
    json.dump(resign(event, secret, int(time.time()), args.keep_event_id), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
