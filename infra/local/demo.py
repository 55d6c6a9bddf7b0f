#!/usr/bin/env python3
"""`make demo`: shows, step by step and in a leasing manager's words, what the local system can do so far.

It runs against the stack that `make up` started (settings from .local/stack.env). Each step is a function in
`STEPS`; a new feature adds its step to the list. Output never shows keys, secrets or signatures.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

from provision import read_env_file

REPO_ROOT = Path(__file__).resolve().parents[2]
STACK_ENV = Path(os.environ.get("LOCAL_STACK_DIR", REPO_ROOT / ".local")) / "stack.env"

DEMO_PROPERTY_ID = "5f1c2a9e-3b7d-4c41-9a0e-7d2b6c8e1f01"
DEMO_AGENT_ID = "a1e0c3b2-0001-4c6a-9d1e-000000000001"
DEMO_PROSPECT = {"first_name": "Dana", "last_name": "Demo", "email": "dana.demo@example.com"}
WEBHOOK_WAIT_SECONDS = 90  # the first notice may wait for the webhook function to start

ZONE_WORDS = {
    "America/New_York": "Eastern time",
    "America/Chicago": "Central time",
    "America/Denver": "Mountain time",
    "America/Phoenix": "Arizona time (no daylight saving)",
    "America/Los_Angeles": "Pacific time",
    "America/Anchorage": "Alaska time",
    "Pacific/Honolulu": "Hawaii time",
}


class DemoError(Exception):
    """A step could not show what it meant to; the message says what to check."""


@dataclass
class Context:
    """Settings of the running stack, and what earlier steps learned for later ones."""

    env: dict[str, str]
    learned: dict[str, object] = field(default_factory=dict)

    def url(self, key: str) -> str:
        if key not in self.env:
            raise DemoError(f"{key} is missing from {STACK_ENV}; restart with make down && make up")
        return self.env[key].rstrip("/")


# --- HTTP ----------------------------------------------------------------------------------------------------------


def request_json(method: str, url: str, *, json_body=None, form=None, timeout: float = 30.0):
    headers = {"Accept": "application/json"}
    data = None
    if json_body is not None:
        data = json.dumps(json_body).encode()
        headers["Content-Type"] = "application/json"
    elif form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as error:
        raise DemoError(f"{method} {url} answered HTTP {error.code}") from error
    except (urllib.error.URLError, TimeoutError, ConnectionError) as error:
        raise DemoError(f"nothing answers at {url} ({error}); is the local stack up? (make up)") from error
    try:
        return json.loads(body) if body.strip() else None
    except ValueError as error:
        raise DemoError(f"{method} {url} did not answer JSON") from error


def resman_call(ctx: Context, method: str, payload_key: str) -> list[dict]:
    """One call to the sandbox's ResMan API, as our ResMan adapter makes it; returns the payload list."""
    answer = request_json(
        "POST",
        f"{ctx.url('RESMAN_BASE_URL')}/{method}",
        form={
            "IntegrationPartnerID": ctx.env.get("SANDBOX_INTEGRATION_PARTNER_ID", "domiq-sandbox"),
            "ApiKey": ctx.env.get("SANDBOX_API_KEY", "sandbox-api-key"),
            "AccountID": ctx.env.get("SANDBOX_ACCOUNT_ID", "400"),
            "PropertyID": DEMO_PROPERTY_ID,
        },
    )
    if not isinstance(answer, dict) or answer.get("Status") != "Success":
        reason = answer.get("ErrorDescription") if isinstance(answer, dict) else "no answer"
        raise DemoError(f"ResMan refused {method}: {reason}")
    return answer.get(payload_key) or []


# --- Wording -------------------------------------------------------------------------------------------------------


def zone_in_words(zone: str) -> str:
    return ZONE_WORDS.get(zone, f"{zone} time")


def when_in_words(moment: datetime) -> str:
    hour = moment.strftime("%I").lstrip("0")
    return f"{moment.strftime('%A, %B')} {moment.day} at {hour}:{moment.strftime('%M %p')}"


def say(text: str = "") -> None:
    print(text, flush=True)


# --- Steps ---------------------------------------------------------------------------------------------------------


def step_system_running(ctx: Context) -> None:
    sandbox = ctx.url("RESMAN_SANDBOX_URL")
    request_json("GET", f"{sandbox}/_sandbox/health")
    say("Your local tour-booking system is running on this computer:")
    say(f"  - a practice copy of ResMan (with a demo property and staff): {sandbox}")
    say(f"  - the tour-booking services that the chatbot and ResMan talk to: {ctx.url('LAMBDA_BASE_URL')}/")
    say(f"  - its own record-keeping (tours, bookings in progress): {ctx.url('AWS_ENDPOINT_URL')}")
    say("Nothing here touches the real ResMan or real residents' data.")


def step_property_in_resman(ctx: Context) -> None:
    properties = resman_call(ctx, "Account/GetProperties", "Properties")
    demo = next((p for p in properties if p.get("PropertyID") == DEMO_PROPERTY_ID), None)
    if demo is None:
        raise DemoError("the demo property is not in the ResMan sandbox")
    employees = resman_call(ctx, "Leasing/GetEmployees", "Employees")
    agents = [f"{e.get('FirstName')} {e.get('LastName')}" for e in employees if e.get("IsLeasing")]
    zone = demo.get("TimeZone") or "America/Chicago"
    ctx.learned.update(property_name=demo.get("Name"), time_zone=zone)
    ctx.learned["agent_names"] = {e.get("ID"): f"{e.get('FirstName')} {e.get('LastName')}" for e in employees}
    say("ResMan knows this property:")
    say(f"  {demo.get('Name')}, {demo.get('StreetAddress')}, {demo.get('City')}, {demo.get('State')} "
        f"{demo.get('Zip')}")
    say(f"  Tour times are shown in {zone_in_words(zone)}.")
    say(f"  Leasing agents who can give tours: {', '.join(agents) if agents else 'none listed'}.")


def step_staff_change_reaches_us(ctx: Context) -> None:
    sandbox = ctx.url("RESMAN_SANDBOX_URL")
    zone = ZoneInfo(str(ctx.learned.get("time_zone", "America/Chicago")))
    tomorrow = datetime.now(zone).date() + timedelta(days=1)
    start = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 15, 0, tzinfo=zone)
    agent = ctx.learned.get("agent_names", {}).get(DEMO_AGENT_ID, "a leasing agent")
    prospect = f"{DEMO_PROSPECT['first_name']} {DEMO_PROSPECT['last_name']}"

    created = request_json(
        "POST",
        f"{sandbox}/_sandbox/appointments",
        json_body={
            "property_id": DEMO_PROPERTY_ID,
            "agent_id": DEMO_AGENT_ID,
            "scheduled_at": start.isoformat(),
            "duration_minutes": 30,
            "prospect": DEMO_PROSPECT,
        },
    )
    appointment_id = _appointment_id(created)
    say(f"In ResMan, {agent} puts a 30-minute tour with {prospect} on the calendar for "
        f"{when_in_words(start)} ({zone_in_words(str(zone))}),")
    started_waiting = time.monotonic()
    request_json("POST", f"{sandbox}/_sandbox/appointments/{appointment_id}/staff-change",
                 json_body={"status": "Confirmed"})
    say("and then marks the tour as Confirmed.")

    delivery = wait_for_webhook(sandbox, appointment_id)
    seconds = time.monotonic() - started_waiting
    if delivery.get("status_code") == 200:
        say(f"ResMan sent a signed notice of the change to our system, which checked the signature and accepted it "
            f"(after {seconds:.1f} s).")
    else:
        outcome = delivery.get("error") or f"answered {delivery.get('status_code')}"
        raise DemoError(f"our system did not accept ResMan's notice ({outcome}); see .local/logs/lambda.log")


def _appointment_id(created) -> str:
    if isinstance(created, dict):
        for candidate in (created, created.get("appointment") or {}):
            if isinstance(candidate, dict) and candidate.get("appointment_id"):
                return str(candidate["appointment_id"])
    raise DemoError("the ResMan sandbox did not say which appointment it created")


def _deliveries(answer) -> list[dict]:
    if isinstance(answer, list):
        return answer
    if isinstance(answer, dict):
        for key in ("webhooks", "deliveries", "items"):
            if isinstance(answer.get(key), list):
                return answer[key]
    return []


def _delivery_appointment(delivery: dict) -> str | None:
    if delivery.get("appointment_id"):
        return str(delivery["appointment_id"])
    try:
        notice = json.loads(delivery.get("body") or "{}")
    except ValueError:
        return None
    found = notice.get("appointment_id") if isinstance(notice, dict) else None
    return str(found) if found else None


def wait_for_webhook(sandbox: str, appointment_id: str) -> dict:
    """The sandbox's record of the notice it sent for this appointment, once the receiver has answered."""
    deadline = time.monotonic() + WEBHOOK_WAIT_SECONDS
    while time.monotonic() < deadline:
        for delivery in _deliveries(request_json("GET", f"{sandbox}/_sandbox/webhooks")):
            if _delivery_appointment(delivery) == appointment_id and not delivery.get("pending"):
                return delivery
        time.sleep(0.5)
    raise DemoError(f"ResMan's notice was not answered within {WEBHOOK_WAIT_SECONDS} s; "
                    "see .local/logs/resman.log and .local/logs/lambda.log")


@dataclass(frozen=True)
class Step:
    title: str
    run: Callable[[Context], None]


# Later features add their steps here, in the order a leasing manager would want to see them.
STEPS = [
    Step("The system is running", step_system_running),
    Step("The demo property, as ResMan knows it", step_property_in_resman),
    Step("A leasing agent changes a tour in ResMan, and our system hears about it", step_staff_change_reaches_us),
]


def main() -> int:
    if not STACK_ENV.exists():
        say("The local system is not running: start it with make up (or make demo).")
        return 1
    ctx = Context(env=read_env_file(STACK_ENV))
    for number, step in enumerate(STEPS, start=1):
        say()
        say(f"Step {number}. {step.title}")
        try:
            step.run(ctx)
        except DemoError as error:
            say(f"  This step did not work: {error}")
            return 1
    say()
    say("That is everything the system can do so far.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
