#!/usr/bin/env python3
"""`make demo`: shows, step by step and in a leasing manager's words, what the local system can do so far.

It runs against the stack that `make up` started (settings from .local/stack.env). Each step is a function in
`STEPS`; a new feature adds its step to the list. Output never shows keys, secrets or signatures.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import date, datetime, time as clock_time, timedelta, timezone
from pathlib import Path
from typing import Callable
from zoneinfo import ZoneInfo

import sent_mail
from provision import read_env_file
from tourlocal import http

REPO_ROOT = Path(__file__).resolve().parents[2]
STACK_ENV = Path(os.environ.get("LOCAL_STACK_DIR", REPO_ROOT / ".local")) / "stack.env"
DEMO_PROPERTIES = REPO_ROOT / "infra" / "properties" / "demo.json"

DEMO_PROPERTY_ID = "5f1c2a9e-3b7d-4c41-9a0e-7d2b6c8e1f01"
DEMO_AGENT_ID = "a1e0c3b2-0001-4c6a-9d1e-000000000001"
DEMO_PROSPECT = {"first_name": "Dana", "last_name": "Demo", "email": "dana.demo@example.com"}
WEBHOOK_WAIT_SECONDS = 90  # the first notice may wait for the webhook function to start
# The poller runs on every tick of the local event pump (LOCAL_SCHEDULE_PERIOD_SECONDS, 10 s by default): a tour
# booked in ResMan should leave availability within a tick or two.
MIRROR_WAIT_SECONDS = 40
WEEK_DAYS = 7
STAFF_TOUR_TIME = clock_time(11, 0)
AVAILABILITY_PATH = "/tour-availability/api/resman/tours/availability"
BOOK_PATH = "/book-tour/api/resman/tours/book"
HOLD_PATH = "/tour-hold/api/resman/tours/holds"
CONVERSATION_PATH = "/conversation-tours/api/resman/tours"
TOUR_PATH = "/get-tour/api/resman/tours"
UPDATE_PATH = "/update-tour/api/resman/tours"
CHATBOT_TOUR_TIME = clock_time(14, 0)
OUTAGE_TOUR_TIME = clock_time(16, 0)
# Maria's second tour, and the time that many prospects ask for at the same instant.
SECOND_TOUR_TIME = clock_time(10, 0)
RUSH_TOUR_TIME = clock_time(15, 0)
RUSH_PROSPECTS = 20
# A second management company: its own ResMan account, key and property.
SECOND_ACCOUNT = 401
SECOND_ACCOUNT_KEY = "riverside-living-demo-key"
SECOND_PROPERTY_ID = "7c2d4e6f-0401-4a1b-9c3d-000000000401"
SECOND_AGENT = {"id": "a1e0c3b2-0401-4c6a-9d1e-000000000401", "name": "Riley Moss"}
SECOND_SOURCE_ID = "b7d3e8f0-0401-4d2c-8a5b-000000000401"
# The prospect who thinks it over between two chat messages, and another who wants her time meanwhile.
HOLD_TOUR_TIME = clock_time(13, 0)
# The tour the chatbot and a leasing agent change at the same moment.
CROSSING_TOUR_TIME = clock_time(9, 30)
THINKER = {"name": "Nora Quinn", "email": "nora.quinn@example.com", "phone": "(512) 555-0155"}
RIVAL = {"name": "Omar Haddad", "email": "omar.haddad@example.com", "phone": "(512) 555-0156"}
# A booking accepted while ResMan is down reaches it through the retry queue; the local pump delivers queue
# messages within a second or two, and a retry waits SYNC_RETRY_BASE_SECONDS (30 s) at first.
SYNC_WAIT_SECONDS = 90
# What the chatbot shows a prospect before she agrees to texts: reminder texts are their own consent, not marketing's.
TEXT_CONSENT_WORDS = ("May we text you about this tour (a confirmation and reminders) at this number? "
                      "Msg & data rates may apply. Reply STOP to stop.")

PROSPECTS = [
    {"name": "Maria Garcia", "email": "maria.garcia@example.com", "phone": "(512) 555-0142"},
    {"name": "Tom Becker", "email": "tom.becker@example.com", "phone": "(512) 555-0187"},
    {"name": "Priya Shah", "email": "priya.shah@example.com", "phone": "(512) 555-0123"},
    {"name": "Luis Ortega", "email": "luis.ortega@example.com", "phone": "(512) 555-0166"},
    {"name": "Grace Kim", "email": "grace.kim@example.com", "phone": "(737) 555-0110"},
]

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

    def dynamodb_url(self) -> str:
        """Where the tables are: DynamoDB Local (AWS_ENDPOINT_URL_DYNAMODB), or AWS_ENDPOINT_URL, which has
        everything when the former is absent (as for the AWS SDKs)."""
        return self.url("AWS_ENDPOINT_URL_DYNAMODB" if "AWS_ENDPOINT_URL_DYNAMODB" in self.env else "AWS_ENDPOINT_URL")


# --- HTTP ----------------------------------------------------------------------------------------------------------


def request(method: str, url: str, **options):
    """(HTTP status, parsed JSON body or None); an HTTP error status is returned, not raised."""
    try:
        return http.request(method, url, **options)
    except http.Unreachable as error:
        raise DemoError(f"{error}; is the local stack up? (make up)") from error


def request_json(method: str, url: str, **options):
    """The JSON answer of a request that must succeed; a refusal becomes a DemoError saying why."""
    status, answer = request(method, url, **options)
    if status >= 400:
        raise DemoError(f"{method} {_without_query(url)} answered HTTP {status}{_reason(answer)}")
    return answer


def _reason(answer) -> str:
    """The `{"error": {"message"}}` of our API and the sandbox, when there is one."""
    error = answer.get("error") if isinstance(answer, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return f": {message}" if message else ""


def _without_query(url: str) -> str:
    return url.split("?", 1)[0]


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
    return f"{moment.strftime('%A, %B')} {moment.day} at {clock(moment)}"


def clock(moment: datetime | clock_time) -> str:
    """9:00 AM"""
    return f"{moment.strftime('%I').lstrip('0')}:{moment.strftime('%M %p')}"


def day_in_words(day: date) -> str:
    """Tue Nov 24"""
    return f"{day.strftime('%a %b')} {day.day}"


def names_in_words(names: list[str]) -> str:
    """Alex; Alex and Jordan; Alex, Jordan and Sam."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def say(text: str = "") -> None:
    print(text, flush=True)


# --- The demo property's configuration and availability -----------------------------------------------------------


def property_config() -> dict:
    """The demo property as the operators configured it (infra/properties/demo.json, which `make up` loads): what
    the demo needs to say why a day is closed, who gives tours, and how long they last."""
    try:
        configs = json.loads(DEMO_PROPERTIES.read_text())
    except (OSError, ValueError) as error:
        raise DemoError(f"{DEMO_PROPERTIES} cannot be read ({error})") from error
    configs = configs if isinstance(configs, list) else [configs]
    found = next((c for c in configs if c.get("property_id") == DEMO_PROPERTY_ID), None)
    if found is None:
        raise DemoError(f"{DEMO_PROPERTIES} has no property {DEMO_PROPERTY_ID}")
    return found


def in_person_agents(config: dict) -> list[dict]:
    return [agent for agent in config["agents"] if "in_person" in agent.get("tour_types", [])]


def availability(ctx: Context, day: date, tour_type: str | None = "in_person",
                 property_id: str = DEMO_PROPERTY_ID) -> dict:
    """Asks our API exactly as the chatbot does (`tour_type` None: every type the property offers)."""
    asked = {"property_id": property_id, "date": day.isoformat()}
    query = urllib.parse.urlencode({**asked, "tour_type": tour_type} if tour_type else asked)
    answer = request_json(
        "GET",
        f"{ctx.url('LAMBDA_BASE_URL')}{AVAILABILITY_PATH}?{query}",
        headers={"x-api-key": ctx.env.get("API_KEY", "")},
    )
    if not isinstance(answer, dict) or not isinstance(answer.get("available_slots"), list):
        raise DemoError("the availability answer is not what the chatbot expects")
    return answer


def slot_times(answer: dict, zone: ZoneInfo) -> list[datetime]:
    return [datetime.fromisoformat(slot["time"]).astimezone(zone) for slot in answer["available_slots"]]


def why_no_times(answer: dict, day: date, today: date) -> str:
    """Why the availability `answer` for `day` offers no time, in the words of the office's day it carries: the
    property's rules (hours, holidays, notice) are the API's to apply, not the demo's."""
    office = answer["office"]
    if not office["hours"]:
        return f"closed ({office['note']})" if office.get("note") else f"closed (the office is closed on {day:%A}s)"
    if day == today:
        return f"no times left today (tours need {notice_in_words(office['minimum_notice_minutes'])} notice)"
    return "fully booked"


def notice_in_words(minutes: int) -> str:
    if minutes % 60 == 0:
        return f"{plural(minutes // 60, 'hour')}'"
    return f"{minutes} minutes'"


def open_for(answer: dict, at: clock_time, minutes: int) -> bool:
    """Whether the office, as the availability `answer` says, is open for a whole tour of `minutes` from `at`."""
    end = (datetime.combine(date.min, at) + timedelta(minutes=minutes)).time()
    hours = [(clock_time.fromisoformat(open_), clock_time.fromisoformat(close)) for open_, close in
             answer["office"]["hours"]]
    return any(open_ <= at and end <= close for open_, close in hours)


# --- Steps ---------------------------------------------------------------------------------------------------------


def step_system_running(ctx: Context) -> None:
    sandbox = ctx.url("RESMAN_SANDBOX_URL")
    request_json("GET", f"{sandbox}/_sandbox/health")
    say("Your local tour-booking system is running on this computer:")
    say(f"  - a practice copy of ResMan (with a demo property and staff): {sandbox}")
    say(f"  - the tour-booking services that the chatbot and ResMan talk to: {ctx.url('LAMBDA_BASE_URL')}/")
    say(f"  - its own record-keeping (tours, bookings in progress): {ctx.dynamodb_url()}")
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


def step_week_of_availability(ctx: Context) -> None:
    config = property_config()
    zone = ZoneInfo(config["time_zone"])
    today = datetime.now(zone).date()
    in_person = config["tour_types"]["in_person"]
    say(f"The chatbot asks for in-person tour times, one day at a time, as a prospect would. Each tour takes "
        f"{in_person['duration_minutes']} minutes; times are {zone_in_words(config['time_zone'])}.")
    for offset in range(WEEK_DAYS):
        day = today + timedelta(days=offset)
        label = day_in_words(day) + (" (today)" if day == today else "")
        answer = availability(ctx, day)
        times = slot_times(answer, zone)
        if times:
            note = answer["office"].get("note")
            special = f", {note} hours" if note else ""
            say(f"  {label}: {plural(len(times), 'open time')}, {clock(times[0])}–{clock(times[-1])}{special}")
        else:
            following = answer.get("next_available_date")
            after = f" — next open day {day_in_words(date.fromisoformat(following))}" if following else ""
            say(f"  {label}: {why_no_times(answer, day, today)}{after}")
    agents = [agent["name"] for agent in in_person_agents(config)]
    say(f"Each time is offered with one guide: whoever of {names_in_words(agents)} is free then and has the "
        "fewest tours that day.")
    open_day = next((today + timedelta(days=n) for n in range(1, WEEK_DAYS)
                     if slot_times(availability(ctx, today + timedelta(days=n)), zone)), None)
    if open_day is not None:
        every = availability(ctx, open_day, tour_type=None)["available_slots"]
        kinds = {"in_person": "in person", "virtual": "by video", "self_guided": "self-guided"}
        counts = [f"{sum(1 for s in every if s.get('tour_type') == kind)} {words}" for kind, words in kinds.items()]
        if not every or any("tour_type" not in s for s in every):
            raise DemoError("the answer for every tour type does not say each time's type")
        say(f"A prospect who has not decided how to tour? The chatbot can ask without a tour type: for "
            f"{day_in_words(open_day)} it gets {names_in_words(counts)} times, each saying which kind it is.")


def next_open_weekday(ctx: Context, after: date, at: clock_time, minutes: int,
                      property_id: str = DEMO_PROPERTY_ID) -> date:
    """The first Monday-to-Friday after `after` on which the office is open for a whole tour starting at `at`, as the
    availability API says (whether or not that time is still free)."""
    day = after
    for _ in range(14):
        day += timedelta(days=1)
        if day.weekday() < 5 and open_for(availability(ctx, day, property_id=property_id), at, minutes):
            return day
    raise DemoError(f"the property is not open at {clock(at)} on any weekday of the next two weeks")


def book_in_resman(ctx: Context, agent: dict, start: datetime, minutes: int, guest: dict) -> str:
    """Books a tour the way front-desk staff would, straight in ResMan; returns what happened, in words."""
    sandbox = ctx.url("RESMAN_SANDBOX_URL")
    status, answer = request("POST", f"{sandbox}/_sandbox/appointments", json_body={
        "property_id": DEMO_PROPERTY_ID,
        "agent_id": agent["id"],
        "scheduled_at": start.isoformat(),
        "duration_minutes": minutes,
        "prospect": guest,
    })
    if status == 201:
        return "booked"
    if status == 409 and already_booked(ctx, agent["id"], start):
        return "already booked by an earlier run of this demo"
    raise DemoError(f"ResMan would not book {agent['name']} at {clock(start)} (HTTP {status}{_reason(answer)})")


def already_booked(ctx: Context, agent_id: str, start: datetime) -> bool:
    query = urllib.parse.urlencode({"property_id": DEMO_PROPERTY_ID})
    for appointment in request_json("GET", f"{ctx.url('RESMAN_SANDBOX_URL')}/_sandbox/appointments?{query}") or []:
        if (appointment.get("agent_id") == agent_id and appointment.get("status") != "Cancelled"
                and datetime.fromisoformat(appointment["scheduled_at"].replace("Z", "+00:00")) == start):
            return True
    return False


def step_staff_booking_leaves_availability(ctx: Context) -> None:
    config = property_config()
    zone = ZoneInfo(config["time_zone"])
    minutes = int(config["tour_types"]["in_person"]["duration_minutes"])
    day = next_open_weekday(ctx, datetime.now(zone).date(), STAFF_TOUR_TIME, minutes)
    start = datetime.combine(day, STAFF_TOUR_TIME, tzinfo=zone)
    agents = in_person_agents(config)

    guide = next((slot.get("staff_member") for slot in availability(ctx, day)["available_slots"]
                  if datetime.fromisoformat(slot["time"]) == start), None)
    if guide:
        say(f"{day_in_words(day)} at {clock(start)}: the chatbot offers this time, with {guide} as the guide.")
    else:
        say(f"{day_in_words(day)} at {clock(start)}: not offered any more (an earlier run of this demo booked it).")
    say(f"Front-desk staff book walk-in visitors straight in ResMan, not through the chatbot, "
        f"{minutes} minutes each at {clock(start)}:")
    outcomes = []
    for number, agent in enumerate(agents, start=1):
        guest = {"first_name": "Walk-in", "last_name": f"Visitor {number}",
                 "email": f"walk-in.visitor{number}@example.com"}
        outcomes.append(book_in_resman(ctx, agent, start, minutes, guest))
        say(f"  {agent['name']} with walk-in visitor {number}: {outcomes[-1]}")

    everyone = "all three agents are" if len(agents) == 3 else f"all {len(agents)} agents are"
    if "booked" in outcomes:
        period = os.environ.get("LOCAL_SCHEDULE_PERIOD_SECONDS", "10")
        say(f"Our system reads ResMan's changes every {period} seconds here (every minute once deployed) ...")
    started = time.monotonic()
    while True:
        times = slot_times(availability(ctx, day), zone)
        if start not in times:
            break
        if time.monotonic() - started > MIRROR_WAIT_SECONDS:
            raise DemoError(f"{clock(start)} was still offered after {MIRROR_WAIT_SECONDS} s; is the ResMan change "
                            "poller running? See .local/logs/pump.log and .local/logs/lambda.log")
        time.sleep(1)
    if "booked" in outcomes:
        seconds = time.monotonic() - started
        say(f"After {seconds:.0f} s: {clock(start)} is no longer offered: {everyone} busy in ResMan.")
    else:
        say(f"{clock(start)} is not offered: {everyone} busy in ResMan.")
    before = [t for t in times if t < start]
    later = [t for t in times if t > start]
    if before and later:
        buffer = int(config.get("buffer_after_minutes", 0))
        pause = f" plus {buffer} minutes to get back to the office" if buffer else ""
        say(f"  The chatbot now offers {clock(before[-1])}, then nothing until {clock(later[0])}: a guide needs "
            f"{minutes} minutes for a tour{pause}.")


def step_staff_change_reaches_us(ctx: Context) -> None:
    sandbox = ctx.url("RESMAN_SANDBOX_URL")
    zone = ZoneInfo(str(ctx.learned.get("time_zone", "America/Chicago")))
    tomorrow = datetime.now(zone).date() + timedelta(days=1)
    agent = ctx.learned.get("agent_names", {}).get(DEMO_AGENT_ID, "a leasing agent")
    prospect = f"{DEMO_PROSPECT['first_name']} {DEMO_PROSPECT['last_name']}"

    # 3:00 PM, or the next half hour that an earlier run of this demo has not already filled.
    for half_hours in range(6):
        start = datetime.combine(tomorrow, clock_time(15, 0), tzinfo=zone) + timedelta(minutes=30 * half_hours)
        status, created = request(
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
        if status != 409:
            break
    if status != 201:
        raise DemoError(f"ResMan would not book the tour (HTTP {status}{_reason(created)})")
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


# --- Booking ---------------------------------------------------------------------------------------------------------


def conversation_of(prospect: dict) -> str:
    return f"demo-{prospect['email'].split('@')[0]}"


def book_tour(ctx: Context, prospect: dict, day: date, at: clock_time, key: str | None,
              hold_token: str | None = None, sms_consent: dict | None = None) -> tuple[int, dict]:
    """Books as the chatbot does: POST /api/resman/tours/book with the API key and an Idempotency-Key (and the
    conversation's hold token, when it holds the time, and the prospect's agreement to texts, when she gave it)."""
    body = {
        "conversation_id": conversation_of(prospect),
        "tour_data": {
            "prospect_name": prospect["name"],
            "prospect_email": prospect["email"],
            "prospect_phone": prospect["phone"],
            "tour_type": "in_person",
            "preferred_date": day.isoformat(),
            "preferred_time": at.strftime("%H:%M"),
            "property_id": DEMO_PROPERTY_ID,
            "unit_preferences": ["2 bedrooms", "ground floor"],
            "special_requests": "Coming with a dog",
        },
    }
    if hold_token is not None:
        body["hold_token"] = hold_token
    if sms_consent is not None:
        body["sms_consent"] = sms_consent
    headers = {"x-api-key": ctx.env.get("API_KEY", "")}
    if key is not None:
        headers["Idempotency-Key"] = key
    status, answer = request("POST", f"{ctx.url('LAMBDA_BASE_URL')}{BOOK_PATH}", json_body=body, headers=headers)
    return status, answer if isinstance(answer, dict) else {}


def resman_appointments_with(ctx: Context, booking_id: str) -> list[dict]:
    """ResMan's appointments that carry our booking reference."""
    query = urllib.parse.urlencode({"property_id": DEMO_PROPERTY_ID})
    appointments = request_json("GET", f"{ctx.url('RESMAN_SANDBOX_URL')}/_sandbox/appointments?{query}") or []
    return [a for a in appointments if f"[tour-ref:{booking_id}]" in (a.get("comments") or "")]


def conversation(ctx: Context, prospect: dict) -> list[dict]:
    query = urllib.parse.urlencode({"conversation_id": conversation_of(prospect)})
    answer = request_json("GET", f"{ctx.url('LAMBDA_BASE_URL')}{CONVERSATION_PATH}?{query}",
                          headers={"x-api-key": ctx.env.get("API_KEY", "")})
    return answer.get("tours", []) if isinstance(answer, dict) else []


def booking_day(ctx: Context, at: clock_time) -> date:
    config = property_config()
    zone = ZoneInfo(config["time_zone"])
    minutes = int(config["tour_types"]["in_person"]["duration_minutes"])
    return next_open_weekday(ctx, datetime.now(zone).date(), at, minutes)


def step_chatbot_books_a_tour(ctx: Context) -> None:
    config = property_config()
    zone = ZoneInfo(config["time_zone"])
    day = booking_day(ctx, CHATBOT_TOUR_TIME)
    maria = PROSPECTS[0]
    key = f"demo-{day.isoformat()}-{maria['email']}"
    say(f"{maria['name']} asks the chatbot for an in-person tour on {day_in_words(day)} at {clock(CHATBOT_TOUR_TIME)}.")
    agreed_at = datetime.now(zone).replace(microsecond=0) - timedelta(minutes=1)
    consent = {"words": TEXT_CONSENT_WORDS, "agreed_at": agreed_at.isoformat()}
    say(f"  The chatbot asks whether it may text her about the tour; she says yes, and the booking carries her "
        f"agreement: \"{TEXT_CONSENT_WORDS}\"")
    status, answer = book_tour(ctx, maria, day, CHATBOT_TOUR_TIME, key, sms_consent=consent)
    if status not in (201, 202):
        raise DemoError(f"the booking was not accepted (HTTP {status}{_reason(answer)})")
    when = datetime.fromisoformat(answer["confirmed_datetime"]).astimezone(zone)
    details = answer.get("confirmation_details", {})
    say(f"Booked: {answer['staff_member']} will show {maria['name'].split()[0]} around on {when_in_words(when)} "
        f"({answer['duration']} minutes).")
    say(f"  What the prospect is told: {details.get('location', '')}. {details.get('instructions', '')}")
    in_resman = resman_appointments_with(ctx, answer["appointment_id"])
    if len(in_resman) != 1:
        raise DemoError(f"ResMan holds {len(in_resman)} appointments for this booking, not one")
    stored = datetime.fromisoformat(in_resman[0]["scheduled_at"].replace("Z", "+00:00"))
    say(f"  In ResMan's calendar: a tour with {answer['staff_member']} at {clock(stored.astimezone(zone))} Central "
        f"(ResMan keeps it as {stored.strftime('%H:%M')} UTC, the way ResMan stores times).")
    wishes = (in_resman[0].get("comments") or "").partition("Unit preferences: ")[2].partition(".")[0]
    if wishes:
        say(f"  What she is looking for travels with it, for the guide to read: {wishes}.")

    say("The chatbot's connection drops and it sends the very same request again:")
    again_status, again = book_tour(ctx, maria, day, CHATBOT_TOUR_TIME, key, sms_consent=consent)
    same = again_status == status and again.get("appointment_id") == answer["appointment_id"]
    count = len(resman_appointments_with(ctx, answer["appointment_id"]))
    say(f"  {'the same tour comes back' if same else 'a DIFFERENT answer came back'}, and ResMan still has "
        f"{plural(count, 'appointment')} for it: no duplicate.")
    if not same or count != 1:
        raise DemoError("a retried booking must return the first answer and leave one appointment")

    tours = conversation(ctx, maria)
    if tours:
        t = tours[-1]
        say(f"  The chatbot can read the tour back for the conversation: {t['status']}, "
            f"{'in ResMan' if t['sync_status'] == 'synced' else t['sync_status']}, with {t['staff_member']}.")
    resman_id = answer.get("resman_appointment_id")
    if resman_id:
        tour = request_json("GET", f"{ctx.url('LAMBDA_BASE_URL')}/get-tour/api/resman/tours/{resman_id}",
                            headers={"x-api-key": ctx.env.get("API_KEY", "")})
        if isinstance(tour, dict) and tour.get("history"):
            first = tour["history"][0]
            say(f"  Staff can open it by ResMan's own appointment number too: version {tour['version']}, "
                f"its history starting with \"{first['status']}, by the {first['source']}\".")
            texts = tour.get("sms_consent") or {}
            if texts.get("state") != "granted":
                raise DemoError(f"her agreement to texts was not kept: {texts}")
            since = datetime.fromisoformat(texts["since"]).astimezone(zone)
            say(f"  The tour also shows staff that she agreed to texts at {clock(since)}, and to what: "
                f"\"{texts['words']}\" Without that, no text would ever go to her number.")

    say(f"Three more prospects ask for the same time, {clock(CHATBOT_TOUR_TIME)}:")
    for prospect in PROSPECTS[1:4]:
        status, answer = book_tour(ctx, prospect, day, CHATBOT_TOUR_TIME, f"demo-{day.isoformat()}-{prospect['email']}")
        first = prospect["name"].split()[0]
        if status in (201, 202):
            say(f"  {first}: booked with {answer['staff_member']}.")
        elif status == 409:
            alternatives = answer.get("error", {}).get("alternatives", [])
            offered = ", ".join(clock(datetime.fromisoformat(a["time"]).astimezone(zone)) for a in alternatives)
            say(f"  {first}: that time is taken (every guide is busy), so the chatbot offers {offered or 'other days'}.")
        else:
            raise DemoError(f"HTTP {status}{_reason(answer)} for {first}")
    say("Nobody is ever double-booked: each guide holds the time in our system before ResMan is asked.")


def step_only_resmans_signed_notices_change_a_tour(ctx: Context) -> None:
    tours = conversation(ctx, PROSPECTS[0])
    if not tours:
        raise DemoError("the chatbot's tour from the step before is not there to protect")
    tour_id = tours[-1]["appointment_id"]
    before = tour_of(ctx, tour_id)
    resman_id = before.get("resman_appointment_id")
    if not resman_id:
        raise DemoError("the chatbot's tour is not in ResMan yet, so nobody could try to cancel it there")
    first = PROSPECTS[0]["name"].split()[0]
    say(f"Our webhook's address takes no password, so anyone could post to it. Four tries to cancel {first}'s tour "
        "without ResMan's signing secret:")
    hook = f"{ctx.url('LAMBDA_BASE_URL')}/tour-webhook/"
    now = int(time.time())
    notice = {"event_id": f"forged-{now}", "appointment_id": resman_id, "status": "Cancelled",
              "updated_fields": {"status": "Cancelled"}, "staff_member": None,
              "timestamp": datetime.now(timezone.utc).isoformat()}
    made_up = f"t={now},v1={'0' * 64}"
    tries = [
        ("with no signature at all", {}, notice),
        ("signed with a made-up secret", {"X-ResMan-Signature": made_up}, notice),
        ("with 2,000 guesses at the signature", {"X-ResMan-Signature": f"t={now}" + ",v1=" * 2000}, notice),
        ("padded to a megabyte, to make checking it slow", {"X-ResMan-Signature": made_up},
         {**notice, "padding": " " * (1 << 20)}),
    ]
    for what, headers, body in tries:
        status, answer = request("POST", hook, json_body=body, headers=headers)
        if status not in (401, 413):
            raise DemoError(f"a notice {what} was answered HTTP {status}{_reason(answer)}, not refused")
        why = "too large, refused before it is even checked" if status == 413 else "refused: not signed by ResMan"
        say(f"  a notice {what}: {why} (HTTP {status}).")
    after = tour_of(ctx, tour_id)
    if (after["status"], after["version"]) != (before["status"], before["version"]):
        raise DemoError(f"the tour changed from {before['status']} to {after['status']}")
    say(f"{first}'s tour still reads {after['status']}, unchanged. A refusal costs the webhook no more than checking "
        "a real notice, so a flood of these cannot slow it, and it can only ever use its own share of the system.")
    staff_notes_from_resman(ctx, tour_id, resman_id, after["status"])


def staff_notes_from_resman(ctx: Context, tour_id: str, resman_id: str, status: str) -> None:
    """A relay's genuine notice, in the brief's shape to the letter (no event_id), at the brief's path."""
    from sign_event import signature
    first = PROSPECTS[0]["name"].split()[0]
    note = "Asked to see a ground-floor unit with a patio"
    notice = {"appointment_id": resman_id, "status": status.replace("_", " ").title(),
              "updated_fields": {"staff_notes": note}, "staff_member": None,
              "timestamp": datetime.now(timezone.utc).isoformat()}
    body = json.dumps(notice)
    signed = {"X-ResMan-Signature": signature(ctx.env.get("WEBHOOK_SECRET", ""), int(time.time()), body)}
    hook = f"{ctx.url('LAMBDA_BASE_URL')}/tour-webhook/api/resman/webhooks/tour-update"
    answers = [request("POST", hook, json_body=notice, headers=signed)[0] for _ in range(2)]
    if answers != [200, 200]:
        raise DemoError(f"the signed notice was answered {answers}")
    listed = next((t for t in conversation(ctx, PROSPECTS[0]) if t["appointment_id"] == tour_id), {})
    if listed.get("staff_notes") != note:
        raise DemoError(f"the staff note did not reach the conversation ({listed.get('staff_notes')!r})")
    say(f"Then a real one: the leasing office notes on {first}'s tour in ResMan \"{note}\", and its relay sends the "
        "signed notice exactly as our brief describes it (sent twice, as relays retry; it counts once). The chatbot's "
        f"view of {first}'s conversation now carries the note, so its next message can say a patio unit will be "
        "ready to see.")


def resman_calls(ctx: Context) -> int:
    """How many calls ResMan has answered so far (the sandbox's request log)."""
    return len(request_json("GET", f"{ctx.url('RESMAN_SANDBOX_URL')}/_sandbox/requests") or [])


def step_second_tour_on_the_same_guest_card(ctx: Context) -> None:
    config = property_config()
    zone = ZoneInfo(config["time_zone"])
    minutes = int(config["tour_types"]["in_person"]["duration_minutes"])
    first_day = booking_day(ctx, CHATBOT_TOUR_TIME)
    day = next_open_weekday(ctx, first_day, SECOND_TOUR_TIME, minutes)
    maria = PROSPECTS[0]
    say(f"Later in the same chat, {maria['name'].split()[0]} asks for a second look on {day_in_words(day)} at "
        f"{clock(SECOND_TOUR_TIME)}.")
    before = resman_calls(ctx)
    started = time.monotonic()
    status, answer = book_tour(ctx, maria, day, SECOND_TOUR_TIME, f"demo-second-{day.isoformat()}")
    took = time.monotonic() - started
    if status not in (201, 202):
        raise DemoError(f"the second booking was not accepted (HTTP {status}{_reason(answer)})")
    calls = resman_calls(ctx) - before
    when = datetime.fromisoformat(answer["confirmed_datetime"]).astimezone(zone)
    say(f"Booked: {when_in_words(when)} with {answer['staff_member']}, answered in {took * 1000:.0f} ms.")
    tours = [t for t in conversation(ctx, maria) if t.get("resman_appointment_id")]
    query = urllib.parse.urlencode({"property_id": DEMO_PROPERTY_ID})
    appointments = request_json("GET", f"{ctx.url('RESMAN_SANDBOX_URL')}/_sandbox/appointments?{query}") or []
    ours = {t["resman_appointment_id"] for t in tours}
    guest_cards = {a.get("prospect_id") for a in appointments if a.get("appointment_id") in ours}
    if calls == 0:
        say("  (An earlier run of this demo had already booked it.)")
    else:
        asked = "once" if calls == 1 else plural(calls, "time")
        say(f"  We already knew her guest card in ResMan from her first tour, so ResMan was asked {asked} instead of "
            "three times (no search by e-mail or phone first).")
    say(f"  ResMan shows her {plural(len(ours), 'tour')} on {plural(len(guest_cards), 'guest card')}: one prospect, "
        "not a duplicate lead for the leasing team.")
    if len(guest_cards) != 1:
        raise DemoError("a prospect's tours in one conversation must share one guest card")


def step_rush_for_one_time(ctx: Context) -> None:
    config = property_config()
    zone = ZoneInfo(config["time_zone"])
    day = booking_day(ctx, RUSH_TOUR_TIME)
    guides = len(in_person_agents(config))
    say(f"{RUSH_PROSPECTS} prospects ask for {day_in_words(day)} at {clock(RUSH_TOUR_TIME)} at the very same instant "
        f"(the property has {plural(guides, 'guide')}).")
    answers: list[tuple[int, dict]] = [(0, {})] * RUSH_PROSPECTS
    start = threading.Barrier(RUSH_PROSPECTS)

    def ask(n: int) -> None:
        prospect = {"name": f"Rush Prospect{n}", "email": f"rush{n}@example.com", "phone": f"(512) 555-{2000 + n}"}
        start.wait()
        answers[n] = book_tour(ctx, prospect, day, RUSH_TOUR_TIME, None)

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(RUSH_PROSPECTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    booked = [answer for status, answer in answers if status in (201, 202)]
    offered = [answer for status, answer in answers if status == 409]
    if len(booked) + len(offered) != RUSH_PROSPECTS:
        raise DemoError("some requests got neither a tour nor other times: "
                        + ", ".join(str(status) for status, _ in answers if status not in (201, 202, 409)))
    guides_booked = sorted(b["staff_member"] for b in booked)
    if len(set(guides_booked)) != len(guides_booked):
        raise DemoError(f"a guide was given the same time twice: {guides_booked}")
    if booked:
        say(f"  {plural(len(booked), 'prospect')} got the time, one with each free guide "
            f"({names_in_words(guides_booked)}).")
    else:
        say("  Every guide already had that time from an earlier run of this demo.")
    say(f"  The other {len(offered)} were offered the nearest free times instead. No guide is double-booked: each "
        "guide's time is held in one all-or-nothing write that only one request can win.")
    in_resman = sum(len(resman_appointments_with(ctx, b["appointment_id"])) for b in booked)
    if booked and all(b["sync_status"] == "synced" for b in booked):
        if in_resman != len(booked):
            raise DemoError(f"ResMan holds {in_resman} appointments for {len(booked)} bookings")
        when = datetime.fromisoformat(booked[0]["confirmed_datetime"]).astimezone(zone)
        say(f"  ResMan got exactly those {plural(len(booked), 'tour')} at {clock(when)}, and no others.")


def hold_slot(ctx: Context, prospect: dict, day: date, at: datetime, staff_member_id: str | None) -> tuple[int, dict]:
    """Holds a time as the chatbot does between two messages: POST /api/resman/tours/holds."""
    body = {"conversation_id": conversation_of(prospect), "property_id": DEMO_PROPERTY_ID, "tour_type": "in_person",
            "date": day.isoformat(), "time": at.strftime("%H:%M"), "staff_member_id": staff_member_id}
    status, answer = request("POST", f"{ctx.url('LAMBDA_BASE_URL')}{HOLD_PATH}", json_body=body,
                             headers={"x-api-key": ctx.env.get("API_KEY", "")})
    return status, answer if isinstance(answer, dict) else {}


def step_a_time_is_held_while_the_prospect_thinks(ctx: Context) -> None:
    config = property_config()
    zone = ZoneInfo(config["time_zone"])
    day = booking_day(ctx, HOLD_TOUR_TIME)
    offered = availability(ctx, day)["available_slots"]
    # The first time offered from early afternoon on (a rerun of the demo finds its earlier tours there).
    slot = next((s for s in offered
                 if datetime.fromisoformat(s["time"]).astimezone(zone).time() >= HOLD_TOUR_TIME), None)
    if slot is None:
        raise DemoError(f"no afternoon time is free on {day_in_words(day)}; restart with make down && make demo")
    at = datetime.fromisoformat(slot["time"]).astimezone(zone)
    nora, omar = THINKER, RIVAL
    say(f"{nora['name']} is offered {day_in_words(day)} at {clock(at)} with {slot['staff_member']}, and wants to "
        "check her calendar before she says yes.")
    status, hold = hold_slot(ctx, nora, day, at, slot.get("staff_member_id"))
    if status != 201:
        raise DemoError(f"the time could not be held ({status}{_reason(hold)})")
    until = datetime.fromisoformat(hold["held_until"]).astimezone(zone)
    minutes = round((until - datetime.now(zone)).total_seconds() / 60)
    say(f"  The chatbot holds that time for her for {minutes} minutes (until {clock(until)} today): for those minutes "
        f"nobody else is offered {slot['staff_member']} at {clock(at)}, and nobody else can book it.")
    status, refused = hold_slot(ctx, omar, day, at, slot.get("staff_member_id"))
    if status != 409:
        raise DemoError(f"another prospect could hold the held time ({status})")
    others = [f"{clock(datetime.fromisoformat(a['time']).astimezone(zone))} with {a['staff_member']}"
              for a in refused.get("error", {}).get("alternatives", [])]
    say(f"  Meanwhile {omar['name']} asks for {slot['staff_member']} at {clock(at)} too: the chatbot is told it is "
        f"taken and offers {names_in_words(others) if others else 'other times'} instead.")
    still = [s for s in availability(ctx, day)["available_slots"]
             if s["time"] == slot["time"] and s.get("staff_member_id") == slot.get("staff_member_id")]
    if still:
        raise DemoError("the held time is still offered with the held guide")
    say(f"  {nora['name']} says yes in her next message. The booking carries the hold, so the time is hers.")
    status, booked = book_tour(ctx, nora, day, at.time(), f"demo-hold-{day.isoformat()}-{at:%H%M}", hold["hold_token"])
    if status not in (201, 202) or booked.get("staff_member_id") != slot.get("staff_member_id"):
        raise DemoError(f"the booking with the hold did not get the held time ({status}{_reason(booked)})")
    say(f"  Booked: {day_in_words(day)} at {clock(at)} with {booked['staff_member']}. A hold nobody confirms simply "
        "runs out, and the time is offered again at that minute.")
    holds_cannot_fill_an_hour(ctx, day + timedelta(days=14))


def holds_cannot_fill_an_hour(ctx: Context, day: date) -> None:
    """One key asks for every time of one hour under made-up conversations: after a few it is told to wait."""
    while day.weekday() >= 5:
        day += timedelta(days=1)
    zone = ZoneInfo(property_config()["time_zone"])
    at = datetime.combine(day, clock_time(16, 0), zone)
    wanted = [("in_person", agent["id"]) for agent in property_config()["agents"]
              if "in_person" in agent["tour_types"]] + [("self_guided", None)] * 2
    held, refusal = 0, None
    for n, (tour_type, agent) in enumerate(wanted):
        body = {"conversation_id": f"demo-made-up-{n}", "property_id": DEMO_PROPERTY_ID, "tour_type": tour_type,
                "date": day.isoformat(), "time": at.strftime("%H:%M"), "staff_member_id": agent}
        status, answer = request("POST", f"{ctx.url('LAMBDA_BASE_URL')}{HOLD_PATH}", json_body=body,
                                 headers={"x-api-key": ctx.env.get("API_KEY", "")})
        if status == 201:
            held += 1
        elif status == 429:
            refusal = answer.get("error", {}) if isinstance(answer, dict) else {}
            break
    if refusal is None or refusal.get("code") != "too_many_holds":
        raise DemoError(f"one key held {held} times in one hour and was never told to wait")
    wait = re.search(r"frees in (\d+) s", refusal.get("message", ""))
    minutes = max(1, round(int(wait.group(1)) / 60)) if wait else 5
    say(f"  Could a runaway or stolen chatbot key hold every time instead? It asks for all of {day_in_words(day)} at "
        f"{clock(at)}, each under a made-up conversation: it gets {held} held and is then told to come back in about "
        f"{minutes} minute{'s' if minutes != 1 else ''}, when the first runs out. One key keeps at most 4 holds in "
        "any hour of a property, so the leasing team's calendar is never held hostage.")


def second_company_files() -> tuple[dict, dict]:
    """Riverside Lofts as ResMan knows it (the sandbox's seed shape) and as we configure it (demo.json's shape)."""
    ours = {**property_config(), "property_id": SECOND_PROPERTY_ID, "resman_account_id": SECOND_ACCOUNT,
            "name": "Riverside Lofts", "address": "400 Lakeshore Blvd, Austin, TX 78704",
            "prospect_source_id": SECOND_SOURCE_ID, "staff_notification_emails": ["leasing@riverside.example"],
            "office_email": "leasing@riverside.example", "exceptions": [],
            "agents": [{"id": SECOND_AGENT["id"], "name": SECOND_AGENT["name"], "tour_types": ["in_person", "virtual"],
                        "email": "riley.moss@riverside.example"}]}
    first, last = SECOND_AGENT["name"].split(" ", 1)
    resman = {"property_id": SECOND_PROPERTY_ID, "name": "Riverside Lofts", "street_address": "400 Lakeshore Blvd",
              "city": "Austin", "state": "TX", "zip": "78704", "time_zone": ours["time_zone"],
              "employees": [{"id": SECOND_AGENT["id"], "first_name": first, "last_name": last,
                             "email": "riley.moss@riverside.example", "is_leasing": True}],
              "prospect_sources": [{"id": SECOND_SOURCE_ID, "name": "DomIQ Chatbot"}],
              "account_id": SECOND_ACCOUNT}
    return ours, resman


def load_properties(ctx: Context, path: Path) -> subprocess.CompletedProcess:
    """The operator's command, with the local stack's environment."""
    import stack
    loader = stack.cargo_target_dir() / "debug" / "load-properties"
    env = {**os.environ, **ctx.env, **read_env_file(STACK_ENV.parent / "function.env")}
    return subprocess.run([str(loader), str(path)], env=env, capture_output=True, text=True, timeout=120)


def step_a_second_company_joins(ctx: Context) -> None:
    import boto3
    sandbox = ctx.url("RESMAN_SANDBOX_URL")
    ours, resman = second_company_files()
    say(f"Riverside Living, a second property-management company, starts using the chatbot. In ResMan it is its own "
        f"account (AccountID {SECOND_ACCOUNT}), with its own key for us; its property is Riverside Lofts.")
    accounts = request_json("GET", f"{sandbox}/_sandbox/accounts") or []
    if not any(a.get("account_id") == SECOND_ACCOUNT for a in accounts):
        status, answer = request("POST", f"{sandbox}/_sandbox/accounts", json_body={
            "accounts": [{"account_id": SECOND_ACCOUNT, "api_key": SECOND_ACCOUNT_KEY}], "properties": [resman]})
        if status != 200:
            raise DemoError(f"the sandbox did not take the second account ({status}{_reason(answer)})")
    config = STACK_ENV.parent / "riverside.json"
    config.write_text(json.dumps(ours, indent=2))
    env = read_env_file(STACK_ENV.parent / "function.env")
    secrets = boto3.client("secretsmanager", endpoint_url=ctx.url("AWS_ENDPOINT_URL"),
                           region_name=ctx.env.get("AWS_REGION") or env.get("AWS_REGION", "us-east-1"),
                           aws_access_key_id=ctx.env.get("AWS_ACCESS_KEY_ID", "test"),
                           aws_secret_access_key=ctx.env.get("AWS_SECRET_ACCESS_KEY", "test"))
    name = f"{env.get('RESMAN_ACCOUNT_SECRET_PREFIX', 'tour-booking/resman/accounts/')}{SECOND_ACCOUNT}"
    try:
        secrets.describe_secret(SecretId=name)
        say("  (Its credentials were stored by an earlier run of this demo.)")
    except secrets.exceptions.ResourceNotFoundException:
        refused = load_properties(ctx, config)
        if refused.returncode == 0:
            raise DemoError("load-properties loaded a property whose account has no credentials")
        reason = refused.stderr.strip().splitlines()[-1] if refused.stderr.strip() else "refused"
        say("  The operator loads its property file first, before the account's key is stored. It is refused, and "
            "nothing is loaded:")
        say(f"  | {reason}")
        account_file = STACK_ENV.parent / "riverside-account.json"
        account_file.write_text(json.dumps({"resman_accounts": [{"account_id": SECOND_ACCOUNT,
                                                                 "api_key": SECOND_ACCOUNT_KEY}]}))
        stored = load_properties(ctx, account_file)
        if stored.returncode != 0:
            raise DemoError(f"the account's key could not be stored: {stored.stderr.strip()}")
        say(f"  The operator loads the account's file (its AccountID and key) with the same command: "
            f"{stored.stdout.strip()}. The key is never shown.")
    loaded = load_properties(ctx, config)
    if loaded.returncode != 0:
        raise DemoError(f"load-properties failed: {loaded.stderr.strip()}")
    say(f"  Loading again works, with no deploy: {loaded.stdout.strip()}")

    zone = ZoneInfo(ours["time_zone"])
    minutes = int(ours["tour_types"]["in_person"]["duration_minutes"])
    day = next_open_weekday(ctx, datetime.now(zone).date(), STAFF_TOUR_TIME, minutes,
                            property_id=SECOND_PROPERTY_ID)
    start = datetime.combine(day, STAFF_TOUR_TIME, tzinfo=zone)
    status, answer = request("POST", f"{sandbox}/_sandbox/appointments", json_body={
        "property_id": SECOND_PROPERTY_ID, "agent_id": SECOND_AGENT["id"], "scheduled_at": start.isoformat(),
        "duration_minutes": minutes,
        "prospect": {"first_name": "Walk-in", "last_name": "Riverside", "email": "walk-in.riverside@example.com"}})
    booked = status == 201
    if not booked and status != 409:
        raise DemoError(f"ResMan would not book {SECOND_AGENT['name']} ({status}{_reason(answer)})")
    say(f"  Riverside's front desk books {SECOND_AGENT['name']}, its only guide, in ResMan for {day_in_words(day)} at "
        f"{clock(start)}" + ("." if booked else " (an earlier run of this demo already did)."))
    started = time.monotonic()
    while start in slot_times(availability(ctx, day, property_id=SECOND_PROPERTY_ID), zone):
        if time.monotonic() - started > MIRROR_WAIT_SECONDS:
            raise DemoError(f"{clock(start)} was still offered at Riverside Lofts after {MIRROR_WAIT_SECONDS} s; see "
                            ".local/logs/pump.log and .local/logs/lambda.log")
        time.sleep(1)
    say(f"  After {time.monotonic() - started:.0f} s the chatbot no longer offers {clock(start)} at Riverside Lofts: the "
        "change feed polls every property on each tick, one queue message per property, many at once.")
    calls = [r for r in request_json("GET", f"{sandbox}/_sandbox/requests") or []
             if r.get("property_id") == SECOND_PROPERTY_ID]
    others = [r for r in calls if r.get("account_id") != SECOND_ACCOUNT]
    if others:
        raise DemoError(f"{len(others)} call(s) about Riverside Lofts carried another account's credentials")
    say(f"  ResMan received {plural(len(calls), 'call')} about Riverside Lofts, every one under account "
        f"{SECOND_ACCOUNT} with its own key; none with Maple Grove's.")


def step_booking_survives_a_resman_outage(ctx: Context) -> None:
    config = property_config()
    zone = ZoneInfo(config["time_zone"])
    day = booking_day(ctx, OUTAGE_TOUR_TIME)
    grace = PROSPECTS[4]
    sandbox = ctx.url("RESMAN_SANDBOX_URL")
    say("ResMan goes down (every call fails, as in an outage).")
    request_json("POST", f"{sandbox}/_sandbox/faults", json_body={"http_error_rate": 1.0, "http_error_statuses": [503]})
    try:
        status, answer = book_tour(ctx, grace, day, OUTAGE_TOUR_TIME, f"demo-outage-{day.isoformat()}")
    finally:
        request_json("DELETE", f"{sandbox}/_sandbox/faults")
    if status not in (201, 202):
        raise DemoError(f"the booking was not accepted during the outage (HTTP {status}{_reason(answer)})")
    when = datetime.fromisoformat(answer["confirmed_datetime"]).astimezone(zone)
    if status == 202:
        say(f"{grace['name']} still gets her tour: {when_in_words(when)} with {answer['staff_member']}. The chatbot is "
            "told honestly that it is booked here and on its way to ResMan; the time stays held for her.")
    else:
        say(f"{grace['name']}'s tour ({when_in_words(when)}) was already booked by an earlier run of this demo.")
    say("ResMan comes back. The retry queue delivers the booking to ResMan in the background:")
    deadline = time.monotonic() + SYNC_WAIT_SECONDS
    started = time.monotonic()
    while time.monotonic() < deadline:
        in_resman = resman_appointments_with(ctx, answer["appointment_id"])
        if in_resman:
            say(f"  after {time.monotonic() - started:.0f} s it is in ResMan's calendar, once "
                f"({plural(len(in_resman), 'appointment')}).")
            return
        time.sleep(1)
    raise DemoError(f"the booking did not reach ResMan within {SYNC_WAIT_SECONDS} s; see .local/logs/pump.log")


# --- A tour's life after booking -----------------------------------------------------------------------------------


SOURCES_IN_WORDS = {
    "chatbot": "done through the chatbot",
    "resman_webhook": "done in ResMan (ResMan's notice told us)",
    "resman_poll": "done in ResMan (our reading of ResMan's changes found it)",
    "staff_api": "done by staff through our API",
}


def tour_of(ctx: Context, tour_id: str) -> dict:
    """GET /api/resman/tours/{id}: the tour as it now stands, with its history."""
    answer = request_json("GET", f"{ctx.url('LAMBDA_BASE_URL')}{TOUR_PATH}/{tour_id}",
                          headers={"x-api-key": ctx.env.get("API_KEY", "")})
    if not isinstance(answer, dict) or "status" not in answer:
        raise DemoError(f"the tour {tour_id} could not be read back")
    return answer


def wait_for_tour(ctx: Context, tour_id: str, done: Callable[[dict], bool], what: str) -> dict:
    """Reads the tour until `done` holds (a change from ResMan arrives by webhook within a moment)."""
    deadline = time.monotonic() + WEBHOOK_WAIT_SECONDS
    while time.monotonic() < deadline:
        tour = tour_of(ctx, tour_id)
        if done(tour):
            return tour
        time.sleep(0.5)
    raise DemoError(f"{what} did not reach the tour within {WEBHOOK_WAIT_SECONDS} s; see .local/logs/lambda.log")


def staff_change(ctx: Context, appointment_id: str, change: dict) -> list[str]:
    """A leasing agent's change in ResMan's portal (the sandbox's staff action): the fields that changed."""
    answer = request_json("POST", f"{ctx.url('RESMAN_SANDBOX_URL')}/_sandbox/appointments/{appointment_id}/staff-change",
                          json_body=change)
    return list(answer.get("updated_fields", [])) if isinstance(answer, dict) else []


def conversation_in_words(ctx: Context, prospect: dict, zone: ZoneInfo) -> None:
    for t in conversation(ctx, prospect):
        when = datetime.fromisoformat(t["confirmed_datetime"]).astimezone(zone)
        say(f"    - {when_in_words(when)} with {t['staff_member']}: {t['status'].replace('_', ' ')}")


def step_a_tour_lives_on(ctx: Context) -> None:
    config = property_config()
    zone = ZoneInfo(config["time_zone"])
    maria = PROSPECTS[0]
    first = maria["name"].split()[0]
    tours = [t for t in conversation(ctx, maria) if t.get("resman_appointment_id") and t["status"] != "released"]
    if len(tours) < 2:
        raise DemoError(f"{first}'s two tours from the steps above are not both in ResMan yet")
    staffed, chatbot_cancels = tours[0], tours[-1]
    tour_id, appointment = staffed["appointment_id"], staffed["resman_appointment_id"]

    agent = staffed["staff_member"]
    say(f"In ResMan, {agent} confirms {first}'s tour.")
    if staff_change(ctx, appointment, {"status": "Confirmed"}):
        tour = wait_for_tour(ctx, tour_id, lambda t: t["status"] == "confirmed", "The confirmation")
        change = tour["history"][-1]
        say(f"  The chatbot's view follows within a moment: confirmed, and the tour's history records it as "
            f"{SOURCES_IN_WORDS.get(change['source'], change['source'])}.")
    else:
        say("  (It was already confirmed by an earlier run of this demo.)")

    tour = tour_of(ctx, tour_id)
    old = datetime.fromisoformat(tour["confirmed_datetime"]).astimezone(zone)
    # An hour later if the agent is free then in ResMan, else the next hour that is (earlier runs move it too).
    sandbox = ctx.url("RESMAN_SANDBOX_URL")
    for hours in (1, -1, 2, -2, 3, -3):
        new = old + timedelta(hours=hours)
        moved, _ = request("POST", f"{sandbox}/_sandbox/appointments/{appointment}/staff-change",
                           json_body={"scheduled_at": new.isoformat()})
        if moved == 200:
            break
    else:
        raise DemoError("ResMan would not move the tour: the agent is busy at every time tried")
    say(f"{agent} then moves it from {clock(old)} to {clock(new)} in ResMan.")
    tour = wait_for_tour(ctx, tour_id, lambda t: datetime.fromisoformat(t["confirmed_datetime"]) == new, "The move")
    say(f"  The chatbot's view follows: {when_in_words(new)}, still {tour['status']}, the same tour (not a new "
        f"booking); its history now lists {plural(len(tour['history']), 'change')}.")
    if old in slot_times(availability(ctx, old.date()), zone):
        say(f"  {clock(old)} is offered to prospects again: the old time does not stay blocked.")
    else:
        raise DemoError(f"{clock(old)} is still blocked after the tour moved away from it")

    second_id = chatbot_cancels["appointment_id"]
    say(f"{first} tells the chatbot she cannot make her other tour, and the chatbot cancels it:")
    status, answer = request("PUT", f"{ctx.url('LAMBDA_BASE_URL')}{UPDATE_PATH}/{second_id}",
                             json_body={"status": "cancelled"},
                             headers={"x-api-key": ctx.env.get("API_KEY", ""),
                                      "Idempotency-Key": f"demo-cancel-{second_id}"})
    if status == 409 and isinstance(answer, dict):
        say(f"  ({answer.get('error', {}).get('message', 'already changed')}: an earlier run of this demo did it.)")
    elif status != 200:
        raise DemoError(f"the cancellation was not accepted (HTTP {status}{_reason(answer)})")
    else:
        say(f"  Answered at once: {answer['status']}; ResMan is told in the background ({answer['sync_status']}).")
    resman_id = chatbot_cancels["resman_appointment_id"]
    agent = chatbot_cancels["staff_member"]
    when = when_in_words(datetime.fromisoformat(chatbot_cancels["confirmed_datetime"]).astimezone(zone))
    wait_for_tour(ctx, second_id, lambda t: t["status"] == "cancelled" and t["sync_status"] == "synced",
                  "The cancellation's note in ResMan")
    appointments = [a for a in resman_appointments_with(ctx, second_id) if a.get("appointment_id") == resman_id]
    if not appointments:
        raise DemoError("the cancelled tour's appointment is missing from ResMan")
    lead = appointments[0].get("prospect_status", "Active")
    if appointments[0].get("status") == "Cancelled":
        say(f"  In ResMan the appointment is marked Cancelled (this property turns on resman_cancel_word), with a note "
            f"saying why; {first} stays an {lead.lower()} prospect (never marked lost).")
        return conversation_now(ctx, maria, zone, first)
    say(f"  ResMan gets what its API allows: a note on {first}'s guest card saying the tour was cancelled (she stays "
        f"an {lead.lower()} prospect, never marked lost). ResMan's API cannot cancel an appointment, so it stays on "
        f"ResMan's calendar: the leasing team's alert asks them to mark it cancelled there, and until they do, "
        f"{agent}'s time on {when} stays blocked for new prospects, so nobody is booked over it.")
    if not staff_change(ctx, resman_id, {"status": "Cancelled"}):
        raise DemoError("the agent's cancellation did not change the appointment in ResMan")
    tour = tour_of(ctx, second_id)
    if tour["status"] != "cancelled":
        raise DemoError(f"the tour reads {tour['status']} after the agent cancelled it in ResMan")
    say(f"  The leasing agent marks it cancelled in ResMan; as that news arrives (the webhook within a moment, the "
        f"poller within a minute), {agent}'s time is free again on both calendars, and the tour stays cancelled.")
    rebook_the_cancelled_time(ctx, maria, chatbot_cancels, zone)
    conversation_now(ctx, maria, zone, first)


def rebook_the_cancelled_time(ctx: Context, prospect: dict, cancelled: dict, zone: ZoneInfo) -> None:
    """The prospect changes her mind and asks for the very time she cancelled, in the same conversation, with the
    same words: a new tour is booked, not the cancelled one handed back."""
    first = prospect["name"].split()[0]
    start = datetime.fromisoformat(cancelled["confirmed_datetime"]).astimezone(zone)
    deadline = time.monotonic() + WEBHOOK_WAIT_SECONDS
    while start not in slot_times(availability(ctx, start.date()), zone):
        if time.monotonic() > deadline:
            say(f"  ({when_in_words(start)} is not offered again yet, so {first} does not ask for it again.)")
            return
        time.sleep(0.5)
    say(f"{first} changes her mind and asks the chatbot for that same time again, in the same conversation:")
    status, answer = book_tour(ctx, prospect, start.date(), start.time(), None)
    if status in (200, 201, 202) and answer.get("appointment_id") != cancelled["appointment_id"]:
        say(f"  Booked: a new tour ({answer['appointment_id']}) with {answer.get('staff_member')} at "
            f"{when_in_words(start)}, not the cancelled one handed back. Asked before she cancelled, the same words "
            f"would have answered with her existing tour; once it is cancelled, asking again books anew.")
    elif status in (200, 201, 202):
        raise DemoError("asking again for a cancelled time handed back the cancelled tour")
    else:
        say(f"  Not booked (HTTP {status}{_reason(answer)}).")


def conversation_now(ctx: Context, prospect: dict, zone: ZoneInfo, first: str) -> None:
    say(f"What the chatbot now sees for {first}'s conversation:")
    conversation_in_words(ctx, prospect, zone)


def step_both_sides_change_one_tour_at_once(ctx: Context) -> None:
    config = property_config()
    zone = ZoneInfo(config["time_zone"])
    sam = {"name": "Sam Rivera", "email": f"sam.rivera+{int(time.time())}@example.com", "phone": "(512) 555-0190"}
    first = sam["name"].split()[0]
    booked = None
    start_day = booking_day(ctx, CROSSING_TOUR_TIME)
    for days in range(0, 14):
        day = start_day + timedelta(days=days)
        status, answer = book_tour(ctx, sam, day, CROSSING_TOUR_TIME, f"demo-crossing-{sam['email']}-{day}")
        if status in (200, 201, 202):
            booked = answer
            break
    if booked is None:
        raise DemoError("no free time was found to book the tour for this step")
    tour_id = booked["appointment_id"]
    when = datetime.fromisoformat(booked["confirmed_datetime"]).astimezone(zone)
    wait_for_tour(ctx, tour_id, lambda t: t.get("resman_appointment_id") and t["sync_status"] == "synced",
                  "The booking")
    appointment = tour_of(ctx, tour_id)["resman_appointment_id"]
    say(f"{first} has a tour on {when_in_words(when)}. He asks the chatbot to confirm it; in the same second he "
        f"phones the office, and the leasing agent cancels it in ResMan.")
    status, answer = request("PUT", f"{ctx.url('LAMBDA_BASE_URL')}{UPDATE_PATH}/{tour_id}",
                             json_body={"status": "confirmed"},
                             headers={"x-api-key": ctx.env.get("API_KEY", "")})
    if status != 200:
        raise DemoError(f"the chatbot's confirmation was not accepted (HTTP {status}{_reason(answer)})")
    if not staff_change(ctx, appointment, {"status": "Cancelled"}):
        raise DemoError("the agent's cancellation did not change the appointment in ResMan")
    tour = wait_for_tour(ctx, tour_id, lambda t: t["status"] == "cancelled" and t["sync_status"] == "synced",
                         "The agent's cancellation")
    in_resman = [a for a in resman_appointments_with(ctx, tour_id) if a.get("appointment_id") == appointment]
    resman_status = in_resman[0].get("status") if in_resman else "missing"
    if resman_status == "Cancelled":
        say("  One rule settles it, whichever news arrives first: a cancellation wins over a confirmation, whoever "
            "made either. ResMan keeps the cancellation (the chatbot's confirmation is never written over it), and "
            "the chatbot's view says cancelled.")
    elif resman_status == "Confirmed":
        # The chatbot's confirmation reached ResMan just after the agent's cancellation, and ResMan's API cannot
        # cancel an appointment again: the leasing team is asked to.
        asked = f"please mark appointment {appointment} cancelled in ResMan"
        wait_for_emails(ctx, lambda emails: any(asked in part(e, "plain") for e in emails),
                        "the leasing team's request to cancel it in ResMan")
        say("  One rule settles it, whichever news arrives first: a cancellation wins over a confirmation, whoever "
            "made either, and the chatbot's view says cancelled. This time the chatbot's confirmation reached ResMan "
            "just after the agent's cancellation, and ResMan's API cannot cancel an appointment, so the leasing team "
            f"got an alert: \"{asked}\"; the agent's time stays blocked until they do.")
    else:
        raise DemoError(f"ResMan shows the tour {resman_status}, neither Cancelled nor Confirmed")
    overridden = [h for h in tour["history"] if h.get("overrode")]
    if overridden:
        lost = overridden[-1]["overrode"]
        say(f"  The tour's history keeps both sides: \"cancelled\" "
            f"({SOURCES_IN_WORDS.get(overridden[-1]['source'], overridden[-1]['source'])}), which won over "
            f"\"{lost['status']}\" ({SOURCES_IN_WORDS.get(lost['source'], lost['source'])}).")
    else:
        say("  (This time the confirmation reached ResMan a moment before the agent cancelled, so the cancellation "
            "is simply the later change, as the history shows.)")
    say("  Had they recorded two different outcomes instead (the chatbot \"completed\", the agent \"no-show\"), no "
        "rule would pick one: the tour would wait on the dashboard's attention list for staff to say which holds.")


# --- What the prospect and the staff receive -------------------------------------------------------------------------


def sent_emails(ctx: Context) -> list:
    """Every email SES (moto here) took, oldest first, parsed."""
    try:
        return sent_mail.sent_emails(ctx.url("AWS_ENDPOINT_URL"))
    except OSError as error:
        raise DemoError(f"the local SES (moto) did not answer ({error}); is the local stack up? (make up)") from error


def wait_for_emails(ctx: Context, wanted: Callable[[list], bool], what: str) -> list:
    deadline = time.monotonic() + SYNC_WAIT_SECONDS
    while time.monotonic() < deadline:
        emails = sent_emails(ctx)
        if wanted(emails):
            return emails
        time.sleep(1)
    raise DemoError(f"{what} did not go out within {SYNC_WAIT_SECONDS} s; see .local/logs/pump.log and lambda.log")


def part(message, subtype: str) -> str:
    found = message.get_body(preferencelist=(subtype,))
    return found.get_content() if found is not None else ""


def invite_of(message) -> str:
    for attachment in message.iter_attachments():
        if attachment.get_content_type() == "text/calendar":
            content = attachment.get_content()
            return content.decode() if isinstance(content, bytes) else content
    return ""


def step_what_people_receive(ctx: Context) -> None:
    maria = PROSPECTS[0]
    first = maria["name"].split()[0]
    to_maria = lambda emails: [e for e in emails if maria["email"] in str(e.get("To", ""))]  # noqa: E731
    emails = wait_for_emails(ctx, lambda e: len(to_maria(e)) >= 2, f"{first}'s emails")
    say(f"Every change above was also written to {first}, by email, each exactly once:")
    for message in to_maria(emails):
        say(f"  - \"{message['Subject']}\"")
    confirmation = to_maria(emails)[0]
    say("The first one, her confirmation, as she reads it (the plain-text part; an HTML part comes with it):")
    for line in part(confirmation, "plain").strip().splitlines():
        say(f"  | {line}")
    wanted = ("METHOD", "UID", "SEQUENCE", "DTSTART", "DTEND", "STATUS", "SUMMARY")
    event = invite_of(confirmation).partition("BEGIN:VALARM")[0]
    lines = [line for line in event.splitlines() if line.split(":")[0] in wanted]
    say("Its calendar invite (the .ics attached), the lines a calendar reads: one event per tour (UID), updated by "
        "every later email (SEQUENCE goes up), times in UTC:")
    for line in lines:
        say(f"  | {line}")
    staff = [e for e in emails if "New tour: " in str(e.get("Subject", "")) and maria["name"] in str(e["Subject"])]
    if not staff:
        raise DemoError("the leasing team's alert for Maria's tour was not sent")
    say(f"And the leasing team's alert, to {staff[0]['To']}:")
    for line in part(staff[0], "plain").strip().splitlines():
        say(f"  | {line}")


def step_an_outcome_acts(ctx: Context) -> None:
    maria = PROSPECTS[0]
    first = maria["name"].split()[0]
    held = [t for t in conversation(ctx, maria) if t["status"] in ("confirmed", "scheduled", "completed")]
    if not held:
        raise DemoError(f"{first} has no tour left to hold")
    tour = held[0]
    say(f"{first}'s tour with {tour['staff_member']} takes place. Afterwards the chatbot records how it went: she "
        "liked the place but wants to know more before deciding.")
    status, answer = request("PUT", f"{ctx.url('LAMBDA_BASE_URL')}{UPDATE_PATH}/{tour['appointment_id']}",
                             json_body={"status": "completed", "outcome": "follow_up_needed",
                                        "staff_notes": "Asked whether the two-bedroom units have in-unit laundry"},
                             headers={"x-api-key": ctx.env.get("API_KEY", ""),
                                      "Idempotency-Key": f"demo-outcome-{tour['appointment_id']}"})
    if status != 200:
        raise DemoError(f"the outcome was not recorded (HTTP {status}{_reason(answer)})")
    say("  Recorded: completed, follow-up needed. That outcome acts at once, through the same outbox as every "
        "message, once:")
    to_her = lambda emails: [e for e in emails  # noqa: E731
                             if maria["email"] in str(e.get("To", "")) and "Your questions" in str(e["Subject"])]
    alert = lambda emails: [e for e in emails  # noqa: E731
                            if "Follow up with the prospect: " in str(e.get("Subject", ""))
                            and maria["name"] in str(e["Subject"])]
    emails = wait_for_emails(ctx, lambda e: to_her(e) and alert(e), "the follow-up emails")
    say(f"  - {first} gets \"{to_her(emails)[0]['Subject']}\": {tour['staff_member']} will be in touch, and how to "
        "reach the office now.")
    say(f"  - {tour['staff_member']} and the leasing team get a follow-up with her context, to {alert(emails)[0]['To']}:")
    for line in part(alert(emails)[0], "plain").strip().splitlines():
        say(f"    | {line}")
    say("  Had she been interested, she would have had the application link; not interested, and no more messages "
        "about the tour would reach her.")


# --- The prospect changes the tour from the link in her email -------------------------------------------------------

# Someone the earlier steps have not met, so her first email is the confirmation of this tour.
SELF_SERVICE_PROSPECT = {"name": "Ana Silva", "email": "ana.silva@example.com", "phone": "(512) 555-0199"}


def open_page(url: str, form: dict | None = None) -> tuple[int, str]:
    """A page as the prospect's browser gets it: (HTTP status, HTML)."""
    try:
        return http.request("GET" if form is None else "POST", url, form=form, timeout=60, text=True,
                            headers={"Accept": "text/html"})
    except http.Unreachable as error:
        raise DemoError(f"the self-service page did not answer ({error}); is the local stack up? (make up)") from error


def page_text(page: str, element_id: str) -> str:
    """The words of the page's element with this id, tags dropped."""
    inner = page_section(page, element_id)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", inner)).split())


def page_section(page: str, element_id: str) -> str:
    """The inner HTML of the page's element with this id."""
    found = re.search(rf'<(\w+)[^>]*\bid="{element_id}"[^>]*>(.*?)</\1>', page, re.S)
    return found.group(2) if found else ""


def step_prospect_reschedules_from_her_email(ctx: Context) -> None:
    # A new address on every run, so a run against a stack an earlier run used books (and erases) a tour of its own.
    grace = {**SELF_SERVICE_PROSPECT, "email": f"ana.silva+{int(time.time())}@example.com"}
    ctx.learned["self_service_prospect"] = grace
    first = grace["name"].split()[0]
    day = booking_day(ctx, clock_time(15, 0))
    offered = availability(ctx, day)["available_slots"]
    if not offered:
        raise DemoError(f"no tour time is free on {day_in_words(day)} for {first}")
    zone = ZoneInfo(property_config()["time_zone"])
    at = datetime.fromisoformat(offered[-1]["time"]).astimezone(zone)
    agreed = {"words": TEXT_CONSENT_WORDS, "agreed_at": datetime.now(zone).replace(microsecond=0).isoformat()}
    status, answer = book_tour(ctx, grace, day, at.time(), f"demo-self-service-{grace['email']}", sms_consent=agreed)
    if status not in (201, 202):
        raise DemoError(f"{first}'s booking was not accepted (HTTP {status}{_reason(answer)})")
    say(f"{first} booked a tour through the chatbot for {when_in_words(at)}.")
    to_grace = lambda emails: [e for e in emails if grace["email"] in str(e.get("To", ""))]  # noqa: E731
    confirmation = to_grace(wait_for_emails(ctx, lambda e: len(to_grace(e)) >= 1, f"{first}'s confirmation"))[0]
    links = sent_mail.links_in(confirmation)
    if not links:
        raise DemoError("the confirmation carries no reschedule link")
    line = next(l for l in part(confirmation, "plain").splitlines() if links[0] in l)
    say("Her confirmation email ends with a link that only she has (signed for this one tour, valid until it starts):")
    say(f"  | {line.strip()}")
    status, page = open_page(links[0])
    if status != 200:
        raise DemoError(f"the link's page answered HTTP {status}")
    times = re.findall(r'name="start" value="([^"]+)"[^>]*>\s*([^<]+?)\s*</label>', page)
    shown = re.search(r"<strong>(.*?)</strong>", page)
    say(f"She opens it: the page shows her tour ({html.unescape(shown.group(1)) if shown else 'its time'}) and "
        f"{plural(len(times), 'other free time')}, with one button, \"Move my tour\":")
    for _, words in times[:4]:
        say(f"  ( ) {html.unescape(words)}")
    if len(times) > 4:
        say(f"      ... and {len(times) - 4} more")
    if not times:
        raise DemoError("the page offered no other time")
    start, words = times[0]
    token = urllib.parse.parse_qs(urllib.parse.urlparse(links[0]).query)["t"][0]
    status, done = open_page(links[0], {"t": token, "action": "move", "start": start})
    if status != 200:
        raise DemoError(f"the move answered HTTP {status}: {page_text(done, 'taken') or page_text(done, 'refused')}")
    say(f"She picks {html.unescape(words)} and presses the button. The page says: \"{page_text(done, 'done')}\"")
    tour = tour_of(ctx, answer["appointment_id"])
    moved_to = datetime.fromisoformat(tour["confirmed_datetime"]).astimezone(zone)
    who = "Ana herself, through her link" if tour["history"][-1]["source"] == "prospect_link" else "someone else"
    say(f"  Our record of the tour: {when_in_words(moved_to)}, changed by {who} (the same rules as a change by "
        "the chatbot: the time is held first, so nobody is double-booked).")
    deadline = time.monotonic() + SYNC_WAIT_SECONDS
    while time.monotonic() < deadline:
        in_resman = resman_appointments_with(ctx, answer["appointment_id"])
        if in_resman and datetime.fromisoformat(in_resman[0]["scheduled_at"].replace("Z", "+00:00")) == moved_to:
            say(f"  ResMan's calendar moved too: the guide sees the tour at {clock(moved_to)}.")
            break
        time.sleep(1)
    else:
        raise DemoError(f"ResMan did not get the move within {SYNC_WAIT_SECONDS} s; see .local/logs/pump.log")
    emails = wait_for_emails(ctx, lambda e: any(m["Subject"].startswith("New time") for m in to_grace(e)),
                             f"{first}'s new-time email")
    moved_email = next(m for m in to_grace(emails) if m["Subject"].startswith("New time"))
    say(f"  She gets \"{moved_email['Subject']}\" with the updated calendar invite and a fresh link.")
    status, again = open_page(links[0])
    say(f"  The link in the first email now says: \"{page_text(again, 'refused')}\" (HTTP {status}): a link works "
        "for one change, so a forwarded or old email cannot undo it.")
    staff_alerts = [m for m in sent_emails(ctx) if m["Subject"].startswith(f"Tour moved: {grace['name']}")]
    staff_links = sent_mail.links_in(staff_alerts[0], "/tour/staff?t=") if staff_alerts else []
    if staff_links:
        view_status, view = open_page(staff_links[0])
        history = [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", item)).split())
                   for item in re.findall(r"<li>(.*?)</li>", page_section(view, "history"), re.S)]
        say(f"  The leasing team's alert of the move links to the tour (HTTP {view_status}); its history reads:")
        for line in history:
            say(f"    - {line}")
    forged_status, _ = open_page(links[0][:-1] + ("0" if links[0][-1] != "0" else "1"))
    say(f"  A link with one character changed is refused outright (HTTP {forged_status}) and shows nothing.")
    if status != 410 or forged_status != 403:
        raise DemoError("a used or forged link must be refused")


# --- A prospect asks to be forgotten -------------------------------------------------------------------------------


def step_prospect_asks_to_be_forgotten(ctx: Context) -> None:
    ana = ctx.learned.get("self_service_prospect")
    if not isinstance(ana, dict):
        raise DemoError("step 12 did not book a tour for Ana")
    first = ana["name"].split()[0]
    tours = conversation(ctx, ana)
    if not tours:
        raise DemoError(f"{first} has no tour to erase the data of (step 12 books one)")
    eraser = REPO_ROOT / "target" / "debug" / "erase-prospect"
    function_env = STACK_ENV.with_name("function.env")
    if not eraser.exists() or not function_env.exists():
        raise DemoError("target/debug/erase-prospect or .local/function.env is missing; run make up")
    tour_id = tours[-1]["appointment_id"]
    if (tour_of(ctx, tour_id).get("sms_consent") or {}).get("state") != "granted":
        raise DemoError(f"{first}'s agreement to texts (given with her booking) is not on her tour")
    note = {"staff_notes": f"{ana['name']} asked to be called back at {ana['phone']}"}
    note_key = {"x-api-key": ctx.env.get("API_KEY", ""), "Idempotency-Key": f"demo-note-{tour_id}"}
    status, noted = request("PUT", f"{ctx.url('LAMBDA_BASE_URL')}{UPDATE_PATH}/{tour_id}", json_body=note,
                            headers=note_key)
    if status != 200:
        raise DemoError(f"the staff note was not saved (HTTP {status}{_reason(noted)})")
    say(f"Earlier, the chatbot had passed on a note for the staff: \"{first} asked to be called back at "
        f"{ana['phone']}\". Notes like this hold a prospect's name and number too.")
    say(f"{first} writes to the leasing office: please delete my data. The office runs "
        f"`make erase-prospect EMAIL={ana['email']}`:")
    result = subprocess.run([str(eraser), ana["email"]], env={**os.environ, **read_env_file(function_env)},
                            capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise DemoError(f"erase-prospect failed: {result.stderr.strip()}")
    for line in result.stdout.strip().splitlines():
        say(f"  | {line}")
    after = conversation(ctx, ana)
    say(f"The chatbot's view of her conversation still counts {plural(len(after), 'tour')} "
        f"({', '.join(t['status'] for t in after)}), so the property's figures do not change; her name, e-mail and "
        "phone are gone from our records. (Otherwise they leave by themselves 30 days after the tour.)")
    if len(after) != len(tours):
        raise DemoError("erasing personal data must leave the tours")
    tour = tour_of(ctx, tour_id)
    _, replayed = request("PUT", f"{ctx.url('LAMBDA_BASE_URL')}{UPDATE_PATH}/{tour_id}", json_body=note,
                          headers=note_key)
    if tour.get("staff_notes") or (isinstance(replayed, dict) and replayed.get("staff_notes")):
        raise DemoError("the staff note with her number survived the erasure")
    say("The staff note with her number is gone too: from the tour, and from the saved answer the chatbot would get "
        "if it sent that note again.")
    if (tour.get("sms_consent") or {}).get("state") != "none":
        raise DemoError(f"her agreement to texts survived the erasure: {tour.get('sms_consent')}")
    say("So is her agreement to texts: her number is kept only as a one-way code on a do-not-text list, so it is "
        "never texted again.")


# --- Texts, and the prospect's replies --------------------------------------------------------------------------------


TEXTING_PROSPECT = {"name": "Sofia Reyes", "email": "sofia.reyes@example.com", "phone": "(512) 555-0177"}
# The stack's texting number, as the prospect's phone shows it (any number does for the stand-in).
OUR_TEXT_NUMBER = "+17375550100"
TEXT_WAIT_SECONDS = 45


def e164(phone: str) -> str:
    digits = re.sub(r"\D", "", phone)
    return f"+1{digits}" if len(digits) == 10 else f"+{digits}"


def texts_to(ctx: Context, number: str) -> list[dict]:
    answer = request_json("GET", f"{ctx.url('SMS_SANDBOX_URL')}/_sandbox/texts?to={urllib.parse.quote(number)}")
    return answer.get("texts", []) if isinstance(answer, dict) else []


def wait_for_texts(ctx: Context, number: str, count: int, what: str) -> list[dict]:
    deadline = time.monotonic() + TEXT_WAIT_SECONDS
    while time.monotonic() < deadline:
        texts = texts_to(ctx, number)
        if len(texts) >= count:
            return texts
        time.sleep(0.5)
    raise DemoError(f"{what} was not texted within {TEXT_WAIT_SECONDS} s; see .local/logs/lambda.log")


def in_quiet_hours(zone: ZoneInfo) -> bool:
    local = datetime.now(zone).time()
    return local >= clock_time(21, 0) or local < clock_time(8, 0)


def play_schedule_tick(ctx: Context, at: datetime) -> dict:
    """Invokes the reminder scheduler with the scheduled event EventBridge would send at `at` (the scheduler takes a
    tick at its stamp when that is ahead of the clock), so the demo can show what that moment sends."""
    event = {"version": "0", "id": f"demo-tick-{int(at.timestamp())}", "detail-type": "Scheduled Event",
             "source": "aws.events", "time": at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
             "detail": {}}
    status, answer = request("POST", f"{ctx.url('LAMBDA_INVOKE_URL')}/2015-03-31/functions/"
                             "tour-reminder-scheduler/invocations", json_body=event)
    if status != 200 or not isinstance(answer, dict):
        raise DemoError(f"the scheduler's tick of {when_in_words(at)} failed (HTTP {status})")
    return answer


def next_eight_am(zone: ZoneInfo) -> datetime:
    local = datetime.now(zone)
    day = local.date() + timedelta(days=1) if local.time() >= clock_time(21, 0) else local.date()
    return datetime.combine(day, clock_time(8, 0, 30), zone)


def reply_by_text(ctx: Context, number: str, body: str) -> None:
    answer = request_json("POST", f"{ctx.url('SMS_SANDBOX_URL')}/_sandbox/replies",
                          json_body={"from": number, "to": OUR_TEXT_NUMBER, "body": body})
    if not isinstance(answer, dict) or any(status != 200 for status in answer.get("deliveries", [])):
        raise DemoError(f"the reply did not reach tour-text-events: {answer}")


def step_a_prospect_answers_by_text(ctx: Context) -> None:
    config = {**property_config(), "texts": True}
    zone = ZoneInfo(config["time_zone"])
    path = STACK_ENV.parent / "maple-grove-texts.json"
    path.write_text(json.dumps(config, indent=2))
    loaded = load_properties(ctx, path)
    if loaded.returncode != 0:
        raise DemoError(f"the property with texts on was not loaded: {loaded.stderr.strip()}")
    say(f"The leasing manager turns texting on for {config['name']} (`\"texts\": true` in its file, once its number "
        "is registered for business texting). Nobody is texted without saying yes.")
    sofia = {**TEXTING_PROSPECT, "email": f"sofia.reyes+{int(time.time())}@example.com"}
    first, number = sofia["name"].split()[0], e164(sofia["phone"])
    day = booking_day(ctx, clock_time(16, 0))
    offered = availability(ctx, day)["available_slots"]
    if not offered:
        raise DemoError(f"no tour time is free on {day_in_words(day)} for {first}")
    at = datetime.fromisoformat(offered[-1]["time"]).astimezone(zone)
    agreed = {"words": TEXT_CONSENT_WORDS, "agreed_at": datetime.now(zone).replace(microsecond=0).isoformat()}
    status, answer = book_tour(ctx, sofia, day, at.time(), f"demo-texts-{sofia['email']}", sms_consent=agreed)
    if status not in (201, 202):
        raise DemoError(f"{first}'s booking was not accepted (HTTP {status}{_reason(answer)})")
    tour_id = answer["appointment_id"]
    say(f"{first} books a tour for {when_in_words(at)} and says yes to texts.")
    before = len(texts_to(ctx, number))
    if in_quiet_hours(zone):
        eight = next_eight_am(zone)
        say(f"  It is {clock(datetime.now(zone))} at the property: no text goes between 9 pm and 8 am, so her "
            "confirmation text waits until 8 am (her email went at once). The demo plays the scheduler's 8 am tick "
            "now, as if the night had passed:")
        time.sleep(1)
        if texts_to(ctx, number)[before:]:
            raise DemoError("a text went to her in quiet hours")
        play_schedule_tick(ctx, eight)
    texts = wait_for_texts(ctx, number, before + 1, f"{first}'s confirmation")
    say(f"  Her phone gets: \"{texts[-1]['body']}\"")

    def receipt(tour: dict) -> dict | None:
        sent = [d for d in tour.get("notifications") or [] if d.get("message") == "text_confirmation"]
        return sent[0].get("receipt") if sent else None

    tour = wait_for_tour(ctx, tour_id, lambda t: receipt(t) is not None, "the confirmation text's receipt")
    state = "delivered" if receipt(tour).get("delivered") else f"not delivered ({receipt(tour).get('failure')})"
    say(f"  The phone network reports it {state}, and the tour shows staff so, beside each email.")

    # Her first reminder still ahead (one already due when she booked is never set).
    hours = [h for h in config.get("reminder_hours") or [24, 2] if at - timedelta(hours=h) > datetime.now(zone)]
    if not hours:
        raise DemoError(f"{first}'s tour is too soon for any reminder")
    due = at - timedelta(hours=hours[0])
    say(f"  Her reminders come by text too, {' and '.join(str(h) for h in hours)} hours before the tour (by email "
        f"only if a text cannot reach her). The demo plays the scheduler's tick of {when_in_words(due)}:")
    play_schedule_tick(ctx, due + timedelta(seconds=30))
    texts = wait_for_texts(ctx, number, before + 2, f"{first}'s reminder")
    if "Reply C" not in texts[-1]["body"]:
        raise DemoError(f"her reminder does not ask her to confirm: {texts[-1]['body']}")
    say(f"  Her phone gets: \"{texts[-1]['body']}\"")

    reply_by_text(ctx, number, "C")
    texts = wait_for_texts(ctx, number, before + 3, "the answer to her C")
    tour = wait_for_tour(ctx, tour_id, lambda t: bool(t.get("prospect_confirmed_at")), "her confirmation by text")
    confirmed = datetime.fromisoformat(tour["prospect_confirmed_at"]).astimezone(zone)
    say(f"She replies \"C\". Staff see on the tour: the prospect confirmed she will come, at {clock(confirmed)} "
        f"(beside their own confirmation, which stays theirs to give). Her phone: \"{texts[-1]['body']}\"")

    reply_by_text(ctx, number, "CANCEL")
    texts = wait_for_texts(ctx, number, before + 4, "the answer to her CANCEL")
    tour = wait_for_tour(ctx, tour_id, lambda t: t.get("status") == "cancelled", "her cancellation by text")
    if tour["history"][-1]["source"] != "prospect_text":
        raise DemoError(f"the cancellation is not recorded as hers: {tour['history'][-1]}")
    say("Later she replies \"CANCEL\". The tour is cancelled as any cancellation is (its history says: by the "
        "prospect, by text), and since CANCEL also means \"stop texting me\", texts stop.")
    say(f"  One last text: \"{texts[-1]['body']}\"")
    deadline = time.monotonic() + SYNC_WAIT_SECONDS
    while time.monotonic() < deadline:
        tour = tour_of(ctx, tour_id)
        if tour.get("sync_status") == "synced":
            break
        time.sleep(1)
    else:
        raise DemoError(f"ResMan was not told of the cancellation within {SYNC_WAIT_SECONDS} s")
    say("  ResMan has the cancellation noted on her appointment, as for a cancellation by the chatbot.")
    consent = (tour.get("sms_consent") or {}).get("state")
    time.sleep(3)
    after = texts_to(ctx, number)
    sent_after = len(after) - len(texts)
    say(f"  Her agreement to texts now reads \"{consent}\", and {plural(sent_after, 'more text')} went to her "
        "afterwards: the cancellation's own text was held back, because she had just said stop.")
    if consent != "revoked" or sent_after:
        raise DemoError("after CANCEL, consent must be revoked and no further text sent")


# --- The leasing team rates the bookings -----------------------------------------------------------------------------


def staff_rating_links(message) -> dict[int, str]:
    """The "was this booking useful?" links of a staff email, by score."""
    links = sent_mail.links_in(message, "/tour/staff-rate?t=")
    return {int(urllib.parse.parse_qs(urllib.parse.urlparse(url).query)["score"][0]): url for url in links}


def step_the_team_rates_the_bookings(ctx: Context) -> None:
    emails = sent_emails(ctx)
    alerts = [e for e in emails if str(e.get("Subject", "")).startswith("New tour: ") and staff_rating_links(e)]
    if len(alerts) < 2:
        raise DemoError("fewer than two new-tour alerts carry the rating links")
    say("Every alert the leasing team gets by email ends with one question, each answer a single click (signed for "
        "that one tour, like the prospect's links):")
    for line in part(alerts[0], "plain").strip().splitlines()[-6:]:
        say(f"  | {line}")
    good, poor = alerts[0], alerts[-1]
    status, page = open_page(staff_rating_links(good)[5])
    if status != 200:
        raise DemoError(f"the rating link answered HTTP {status}")
    say(f"On \"{good['Subject']}\" the agent clicks 5. The page says: \"{page_text(page, 'done')}\"")
    status, page = open_page(staff_rating_links(poor)[2])
    choices = re.findall(r'name="went_wrong" value="([^"]+)"> ([^<]+)</label>', page)
    say(f"On \"{poor['Subject']}\" someone clicks 2, and the page asks what went wrong (optional): "
        f"{'; '.join(html.unescape(words) for _, words in choices)}.")
    token = urllib.parse.parse_qs(urllib.parse.urlparse(staff_rating_links(poor)[2]).query)["t"][0]
    status, said = open_page(staff_rating_links(poor)[2], {"t": token, "went_wrong": "wrong_time"})
    if status != 200 or "went-wrong" not in said:
        raise DemoError(f"what went wrong was not recorded (HTTP {status})")
    say(f"  They tick the first and send: \"{page_text(said, 'went-wrong')}\"")
    status, again = open_page(staff_rating_links(poor)[5])
    say(f"  A second click on that alert, on 5, changes nothing: \"{page_text(again, 'done')}\"")

    sender = REPO_ROOT / "target" / "debug" / "send-digest"
    function_env = STACK_ENV.with_name("function.env")
    if not sender.exists() or not function_env.exists():
        raise DemoError("target/debug/send-digest or .local/function.env is missing; run make up")
    maria = conversation(ctx, PROSPECTS[0])
    zone = ZoneInfo(property_config()["time_zone"])
    day = datetime.fromisoformat(maria[0]["confirmed_datetime"]).astimezone(zone).date() if maria else \
        datetime.now(zone).date()
    year, week, _ = day.isocalendar()
    label = f"{year}-W{week:02d}"
    say()
    say("Every Monday from 8 am (the property's clock) the leasing team also gets a digest of the week before, once: "
        "the week's figures and a rating link for every tour they have not rated. The office can send one now, for "
        f"the week of the demo's tours: `make send-digest PROPERTY={DEMO_PROPERTY_ID} WEEK={label}`")
    before = len(emails)
    result = subprocess.run([str(sender), DEMO_PROPERTY_ID, label], env={**os.environ, **read_env_file(function_env)},
                            capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise DemoError(f"send-digest failed: {(result.stdout + result.stderr).strip()}")
    for line in result.stdout.strip().splitlines():
        say(f"  | {line}")
    digest = [e for e in wait_for_emails(ctx, lambda e: len(e) > before and any(
        str(m.get("Subject", "")).startswith("Your week at") for m in e[before:]), "the weekly digest")[before:]
        if str(e.get("Subject", "")).startswith("Your week at")][0]
    lines = part(digest, "plain").strip().splitlines()
    say(f"\"{digest['Subject']}\", to {digest['To']}, begins:")
    for line in lines[:12]:
        say(f"  | {line}")
    if len(lines) > 12:
        say(f"  | ... ({len(lines) - 12} more lines: the other tours' rating links)")


def step_every_part_kept_to_its_permissions(ctx: Context) -> None:
    """The local IAM gate's count: every AWS call each function made in this demo, held to its policy."""
    status, stats = request("GET", f"{ctx.url('AWS_ENDPOINT_URL')}/_iam/stats")
    if status != 200 or not isinstance(stats, dict):
        raise DemoError(f"the IAM gate did not answer (HTTP {status}); restart with make down && make up")
    say("Each part of the system (booking, availability, the ResMan sync, the emails...) may read and write only "
        "what it needs, exactly as it will be allowed in AWS. Locally a gate checks every request against those "
        "permissions.")
    say(f"In this demo the parts made {stats['checked']:,} requests to the database, the queues, the mail and text "
        f"services and the secret store; {stats['denied']} of them asked for something they were not allowed.")
    if stats["denied"]:
        status, denials = request("GET", f"{ctx.url('AWS_ENDPOINT_URL')}/_iam/denials")
        for denial in (denials or [])[:5]:
            say(f"  | {denial['function']} asked for {denial['action']} on {denial['resource']}")
        raise DemoError("a part of the system asked for something outside its permissions (above)")


def percent(rate) -> str:
    return "no figure yet" if rate is None else f"{round(rate * 100)}%"


def dashboard_period(config: dict) -> tuple[date, date]:
    """The dashboard's default period, as its page picks it: the last 30 days and the coming week."""
    today = datetime.now(ZoneInfo(config["time_zone"])).date()
    return today - timedelta(days=29), today + timedelta(days=7)


def dashboard_url(ctx: Context, start: date, end: date) -> str:
    query = urllib.parse.urlencode({"property_id": DEMO_PROPERTY_ID, "from": start.isoformat(), "to": end.isoformat()})
    # The leasing manager's own key, never the chatbot's: it reads this company's figures and changes nothing. It
    # travels in the fragment, which the browser never sends to a server; the page keeps it for the tab.
    return f"{ctx.url('LAMBDA_BASE_URL')}/tour-dashboard/dashboard?{query}#key={ctx.env.get('MANAGER_API_KEY', '')}"


def recount_figures(ctx: Context, start: date, end: date) -> None:
    """The operator's recount: the period's figures counted again from the tours themselves, against the daily totals
    the dashboard reads."""
    recount = REPO_ROOT / "target" / "debug" / "recount"
    function_env = STACK_ENV.with_name("function.env")
    if not recount.exists() or not function_env.exists():
        raise DemoError("target/debug/recount or .local/function.env is missing; run make up")
    # The totals follow the table's changes within a second or two; the last step's changes may still be on the way.
    deadline = time.monotonic() + 30
    while True:
        result = subprocess.run([str(recount), DEMO_PROPERTY_ID, start.isoformat(), end.isoformat()],
                                env={**os.environ, **read_env_file(function_env)}, capture_output=True, text=True,
                                timeout=120)
        if result.returncode == 0:
            break
        if time.monotonic() > deadline:
            raise DemoError(f"the recount found differences: {(result.stdout + result.stderr).strip()}")
        time.sleep(1)
    say("  These figures are kept as daily totals, updated from every change of a tour as it happens, so the "
        "dashboard reads about 30 small records for a month however many tours there are. The operator's recount "
        f"(`make recount PROPERTY={DEMO_PROPERTY_ID}`) counts them again from the tours themselves:")
    for line in result.stdout.strip().splitlines():
        say(f"  | {line}")


def step_the_managers_dashboard(ctx: Context) -> None:
    config = property_config()
    start, end = dashboard_period(config)
    query = urllib.parse.urlencode({"property_id": DEMO_PROPERTY_ID, "from": start.isoformat(), "to": end.isoformat()})
    headers = {"x-api-key": ctx.env.get("MANAGER_API_KEY", "")}
    base = f"{ctx.url('LAMBDA_BASE_URL')}/tour-metrics/api/resman/tours"
    # One call, as the dashboard makes it: the metrics and the trends from the same daily totals.
    summary = request_json("GET", f"{base}/summary?{query}", headers=headers)
    if not isinstance(summary, dict) or "metrics" not in summary or "trends" not in summary:
        raise DemoError(f"the figures did not come back: {_reason(summary)}")
    metrics, trends = summary["metrics"], summary["trends"]
    if metrics["total_bookings"] == 0:
        raise DemoError("the figures count no booking, though this demo booked several")
    say(f"The leasing manager's figures for {config['name']}, {day_in_words(start)} to {day_in_words(end)} "
        f"({zone_in_words(metrics['time_zone'])} days):")
    say(f"  {plural(metrics['total_bookings'], 'booking')} made through the chatbot; "
        f"{percent(metrics['booking_success_rate'])} of those decided reached ResMan "
        f"(the goal is 95% or more).")
    if metrics["booking_time_p50"] is not None:
        say(f"  Half the bookings reached ResMan within {metrics['booking_time_p50']:g} seconds of the chatbot's "
            f"request, 95% within {metrics['booking_time_p95']:g} s (the goal is under two minutes).")
    say(f"  Confirmation emails delivered: {percent(metrics['confirmation_delivery_rate'])}. "
        f"Double bookings prevented: {metrics['double_booking_refusals']}.")
    say(f"  Tours: {metrics['confirmed_tours']} confirmed by staff, {metrics['completed_tours']} held, "
        f"{metrics['cancelled_tours']} cancelled, {metrics['no_show_tours']} missed.")
    say(f"  After the tours: {metrics['interested_tours']} interested, {metrics['follow_up_tours']} wanting a "
        f"follow-up, {metrics['not_interested_tours']} not interested; an outcome was recorded for "
        f"{percent(metrics['outcome_rate'])} of the tours held.")
    staff = metrics["staff_satisfaction"]
    verdict = "" if staff is None else (": met" if staff > metrics["staff_satisfaction_goal"] else ": not met yet")
    say(f"  Staff satisfaction: {percent(staff)} of {plural(metrics['staff_rating_count'], 'answer')} from the "
        f"leasing team rated the bookings useful (the goal is above {percent(metrics['staff_satisfaction_goal'])}"
        f"{verdict}).")
    if metrics["satisfaction_count"]:
        say(f"  Prospects rated their tours {metrics['satisfaction_score']} of 5 on average "
            f"({plural(metrics['satisfaction_count'], 'rating')}).")
    if metrics["staff_went_wrong"]:
        say("  What went wrong, as staff said: " + ", ".join(
            f"{reason.replace('_', ' ')} {count}" for reason, count in metrics["staff_went_wrong"].items()) + ".")
    kinds = ", ".join(f"{count} {kind.replace('_', '-')}" for kind, count in trends["tour_type_distribution"].items())
    say(f"  By kind: {kinds}.")
    attention = metrics["needs_attention"]
    if attention:
        say(f"  {plural(len(attention), 'tour')} need someone's attention (not yet in ResMan, not confirmed a day "
            "ahead, or a message that failed): the dashboard lists them.")
    recount_figures(ctx, start, end)
    say()
    say("The same figures, with charts of the daily bookings, the tour mix, the funnel from booked to leased and the")
    say("show rate by hour, are on the staff dashboard. Open it in a browser. The address carries the leasing")
    say("manager's own key (after the #, which the browser keeps to itself): it shows this company's figures, can change")
    say("nothing, and opens no other company's property. The chatbot's key is never handed out.")
    ctx.learned["dashboard_url"] = dashboard_url(ctx, start, end)
    say(f"  {ctx.learned['dashboard_url']}")


@dataclass(frozen=True)
class Step:
    title: str
    run: Callable[[Context], None]


# Later features add their steps here, in the order a leasing manager would want to see them.
STEPS = [
    Step("The system is running", step_system_running),
    Step("The demo property, as ResMan knows it", step_property_in_resman),
    Step("A week of tour times, as the chatbot sees them", step_week_of_availability),
    Step("Staff book tours straight in ResMan, and those times leave the chatbot's list",
         step_staff_booking_leaves_availability),
    Step("A leasing agent changes a tour in ResMan, and our system hears about it", step_staff_change_reaches_us),
    Step("A prospect books a tour through the chatbot", step_chatbot_books_a_tour),
    Step("Only ResMan's signed notices can change a tour", step_only_resmans_signed_notices_change_a_tour),
    Step("The same prospect books a second tour: one guest card, a faster answer", step_second_tour_on_the_same_guest_card),
    Step("Twenty prospects want the same time at once", step_rush_for_one_time),
    Step("A prospect thinks it over, and her time is held for her between two messages",
         step_a_time_is_held_while_the_prospect_thinks),
    Step("A second management company joins, with its own ResMan account", step_a_second_company_joins),
    Step("ResMan is down, and a prospect still gets a tour", step_booking_survives_a_resman_outage),
    Step("Staff confirm and move a tour in ResMan, the chatbot cancels another, and the conversation follows",
         step_a_tour_lives_on),
    Step("The chatbot and a leasing agent change the same tour at the same moment",
         step_both_sides_change_one_tour_at_once),
    Step("What the prospect and the leasing team receive", step_what_people_receive),
    Step("After a tour, its outcome starts the follow-up", step_an_outcome_acts),
    Step("A prospect moves her tour herself, from the link in her email", step_prospect_reschedules_from_her_email),
    Step("The same prospect asks to be forgotten", step_prospect_asks_to_be_forgotten),
    Step("A prospect who agreed to texts gets them, and answers by text", step_a_prospect_answers_by_text),
    Step("The leasing team rates the bookings: one click on an alert, and a weekly digest",
         step_the_team_rates_the_bookings),
    Step("The leasing manager's figures, and the dashboard to open in a browser", step_the_managers_dashboard),
    Step("Every part of the system kept to its own permissions", step_every_part_kept_to_its_permissions),
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
    say("That is everything the system can do so far. The staff dashboard, with this demo's tours on it:")
    say(f"  {ctx.learned.get('dashboard_url', '(not reached)')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
