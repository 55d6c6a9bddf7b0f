"""The real functions under `cargo lambda watch`, on the whole local stack (DynamoDB Local, moto, the ResMan sandbox),
called as the chatbot calls them: 200 prospects asking for one slot at the same instant, and a tour changed by the
chatbot and by staff in ResMan, with the queue, the webhook and the sync worker between them.

At most `IN_FLIGHT` requests are open at once: the number API Gateway lets through at once in front of the deployed
functions (`ThrottlingBurstLimit` in template.yaml). It also keeps under what `cargo lambda watch` can hold: measured
here, 100 simultaneous invocations were answered but 150 wedged it for good (its scheduler queues 100 actions), and a
wedged emulator would say nothing about our code.

It builds the workspace's binaries (`make test` has already compiled everything, so this mostly links them) and
starts the stack in its own directory and ports, never touching a developer's running stack.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from pathlib import Path
from typing import Any
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pytest

import dashboard_check
import fuzz
import gateway
import sent_mail
import stack
from cfn_template import load_template
from conftest import REPO_ROOT, free_port, venv_tool
from provision import read_env_file
from sign_event import signature
from tourlocal import http

PROPERTY = "5f1c2a9e-3b7d-4c41-9a0e-7d2b6c8e1f01"  # Maple Grove, America/Chicago
PROSPECTS = 200
# What the deployed API lets through at once: the stage's burst limit (a parameter, by default).
_BURST = load_template(REPO_ROOT / "template.yaml").document["Resources"]["ChatbotApi"]["Properties"][
    "DefaultRouteSettings"]["ThrottlingBurstLimit"]
IN_FLIGHT = int(load_template(REPO_ROOT / "template.yaml").document["Parameters"][_BURST["Ref"]]["Default"]
                if isinstance(_BURST, dict) else _BURST)

# Cases per operation and phase of the bounded fuzz (about a minute on 2 cores).
FUZZ_EXAMPLES = 30

def in_person_agents() -> set[str]:
    properties = json.loads((REPO_ROOT / "infra/properties/demo.json").read_text())
    maple = next(p for p in (properties if isinstance(properties, list) else [properties])
                 if p["property_id"] == PROPERTY)
    return {a["id"] for a in maple["agents"] if "in_person" in a["tour_types"]}


@pytest.fixture(scope="module")
def running_stack(tmp_path_factory):
    venv_tool("moto_server"), venv_tool("cargo-lambda")
    paths = stack.Paths(tmp_path_factory.mktemp("e2e") / "local")
    ports = stack.Ports(dynamodb=free_port(), moto=free_port(), resman=free_port(), lambda_=free_port(), iam=free_port(),
                        sms=free_port())
    with pytest.MonkeyPatch.context() as patch:
        for name, port in ports.named().items():
            patch.setenv(name, str(port))
        try:
            assert stack.up(paths) == 0
            yield {**read_env_file(paths.stack_env), "LOGS_DIR": str(paths.logs), "POLICIES_FILE": str(paths.policies)}
        finally:
            stack.down(paths)


def call(env: dict, method: str, path: str, body: dict | None = None, key: str = "API_KEY") -> tuple[int, dict]:
    """A request with the key named `key` in the stack's environment (the chatbot's by default)."""
    return http.request(method, f"{env['LAMBDA_BASE_URL']}/{path}", json_body=body, timeout=120,
                        headers={"x-api-key": env[key], "content-type": "application/json"})


def gate(env: dict, method: str, path: str, body: object | None = None) -> object:
    """The IAM gate's own endpoints (/_iam/denials, /_iam/policies), at AWS_ENDPOINT_URL."""
    status, answer = http.request(method, f"{env['AWS_ENDPOINT_URL']}{path}", json_body=body, timeout=10)
    assert status < 400, (status, answer)
    return answer


def free_slot(env: dict, days_ahead: int = 3) -> tuple[str, str]:
    """The first in-person time offered on a weekday a few days out, counted in the property's own days (not the
    machine's: in the evening in Chicago it is already tomorrow in UTC): (date, HH:MM)."""
    day = datetime.now(ZoneInfo("America/Chicago")).date() + timedelta(days=days_ahead)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    status, answer = call(
        env, "GET",
        f"tour-availability/api/resman/tours/availability?property_id={PROPERTY}&date={day}&tour_type=in_person",
    )
    assert status == 200 and answer["available_slots"], answer
    return str(day), answer["available_slots"][0]["time"][11:16]


def test_two_hundred_simultaneous_bookings_of_one_slot_through_the_functions_book_one_per_agent(running_stack):
    env = running_stack
    day, time = free_slot(env)
    agents = in_person_agents()
    start = threading.Barrier(PROSPECTS)
    in_flight = threading.BoundedSemaphore(IN_FLIGHT)
    answers: list[tuple[int, dict]] = [None] * PROSPECTS  # type: ignore[list-item]

    def prospect(n: int) -> None:
        body = {
            "conversation_id": f"e2e-{n}",
            "tour_data": {
                "prospect_name": f"Prospect Number{n}", "prospect_email": f"e2e{n}@example.com",
                "prospect_phone": f"+1512557{n:04d}", "tour_type": "in_person", "preferred_date": day,
                "preferred_time": time, "property_id": PROPERTY,
            },
        }
        start.wait()
        with in_flight:
            answers[n] = call(env, "POST", "book-tour/api/resman/tours/book", body)

    threads = [threading.Thread(target=prospect, args=(n,)) for n in range(PROSPECTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    statuses = Counter(status for status, _ in answers)
    assert statuses == {201: len(agents), 409: PROSPECTS - len(agents)}, statuses
    booked = [answer for status, answer in answers if status == 201]
    assert {b["staff_member_id"] for b in booked} == agents, "each agent gives the tour once"
    refused = [answer for status, answer in answers if status == 409]
    assert all(r["error"]["code"] == "slot_taken" and r["error"]["alternatives"] for r in refused)

    _, appointments = http.request("GET", f"{env['RESMAN_SANDBOX_URL']}/_sandbox/appointments?property_id={PROPERTY}")
    at_that_time = [a for a in appointments if a["appointment_id"] in {b["resman_appointment_id"] for b in booked}]
    assert len(at_that_time) == len(agents), "ResMan got exactly the winners"
    assert len({a["agent_id"] for a in at_that_time}) == len(agents)

    # Each winner reads back through get-tour by ResMan's id, as the tour now stands.
    status, tour = call(env, "GET", f"get-tour/api/resman/tours/{booked[0]['resman_appointment_id']}")
    assert status == 200, tour
    assert tour["appointment_id"] == booked[0]["appointment_id"] and tour["version"] == 1
    assert [h["source"] for h in tour["history"]] == ["chatbot"]


def eventually(what: str, check, seconds: float = 60.0):
    """Polls `check` until it returns something truthy (the queue and the webhook work in the background)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"{what} did not happen within {seconds} s")


def emails_to(env: dict, address: str) -> list:
    """The emails moto's SES took for `address`, parsed."""
    return sent_mail.emails_to(env["AWS_ENDPOINT_URL"], address)


def sandbox_appointment(env: dict, appointment_id: str) -> dict:
    _, appointments = http.request("GET", f"{env['RESMAN_SANDBOX_URL']}/_sandbox/appointments?property_id={PROPERTY}")
    return next(a for a in appointments if a["appointment_id"] == appointment_id)


def test_each_key_reaches_only_what_its_role_and_companies_allow_on_every_endpoint(running_stack):
    """Issue 22: the chatbot's key books at Maple Grove; a manager of Maple Grove's company reads its tour and figures
    and writes nothing (403); a manager of another company (Riverside Living, account 401) gets 403 from every
    endpoint its role does not have and, from the rest, exactly what an unknown id gets (404)."""
    env = running_stack
    day, time_of_day = free_slot(env, days_ahead=6)
    conversation = "e2e-scopes"
    body = {
        "conversation_id": conversation,
        "tour_data": {
            "prospect_name": "Scope Check", "prospect_email": "scopes@example.com", "prospect_phone": "+15125578888",
            "tour_type": "in_person", "preferred_date": day, "preferred_time": time_of_day, "property_id": PROPERTY,
        },
    }
    status, booked = call(env, "POST", "book-tour/api/resman/tours/book", body)
    assert status == 201, booked
    tour_id = booked["appointment_id"]
    period = f"property_id={PROPERTY}&from={day}&to={day}"
    hold = {"conversation_id": conversation, "property_id": PROPERTY, "tour_type": "in_person",
            "preferred_date": day, "preferred_time": time_of_day}
    # Every endpoint of the API, with what each role may do there.
    endpoints = [
        ("GET", f"tour-availability/api/resman/tours/availability?property_id={PROPERTY}&date={day}&tour_type=in_person",
         None, False),
        ("POST", "tour-hold/api/resman/tours/holds", hold, False),
        ("POST", "book-tour/api/resman/tours/book", body, False),
        ("GET", f"conversation-tours/api/resman/tours?conversation_id={conversation}", None, False),
        ("GET", f"get-tour/api/resman/tours/{tour_id}", None, True),
        ("PUT", f"update-tour/api/resman/tours/{tour_id}", {"status": "confirmed"}, False),
        ("GET", f"tour-metrics/api/resman/tours/metrics?{period}", None, True),
        ("GET", f"tour-metrics/api/resman/tours/trends?{period}", None, True),
        ("GET", f"tour-metrics/api/resman/tours/summary?{period}", None, True),
    ]
    unknown_tour = call(env, "GET", "get-tour/api/resman/tours/tour_0123456789abcdef0123456789abcdef",
                        key="MANAGER_API_KEY")
    unknown_property = call(env, "GET", "tour-metrics/api/resman/tours/metrics?"
                            "property_id=00000000-0000-4000-8000-000000000000", key="MANAGER_API_KEY")
    for method, path, payload, a_managers_read in endpoints:
        own_status, own = call(env, method, path, payload, key="MANAGER_API_KEY")
        other_status, other = call(env, method, path, payload, key="RIVERSIDE_MANAGER_API_KEY")
        if not a_managers_read:
            for status, answer in [(own_status, own), (other_status, other)]:
                assert (status, answer["error"]["code"]) == (403, "forbidden"), (path, status, answer)
            continue
        assert own_status == 200, (path, own)
        expected = unknown_tour if "get-tour" in path else unknown_property
        assert (other_status, other) == expected, (path, other_status, other)
    # The dashboard's property picker lists each manager's own company's properties only.
    status, own = call(env, "GET", "tour-metrics/api/resman/tours/properties", key="MANAGER_API_KEY")
    assert status == 200 and PROPERTY in [p["property_id"] for p in own["properties"]], own
    status, other = call(env, "GET", "tour-metrics/api/resman/tours/properties", key="RIVERSIDE_MANAGER_API_KEY")
    assert status == 200 and PROPERTY not in [p["property_id"] for p in other["properties"]], other
    # The chatbot's key still reaches all of it.
    status, tour = call(env, "GET", f"get-tour/api/resman/tours/{tour_id}")
    assert status == 200 and tour["appointment_id"] == tour_id, tour


def test_one_key_past_its_holds_in_an_hour_is_answered_429_with_when_to_come_back(running_stack):
    """Made-up conversations cannot fill a property's hour: the key's fifth live hold there is refused, with
    Retry-After, through the function as deployed (its HOLDS_PER_KEY_HOUR from the template)."""
    day = datetime.now(ZoneInfo("America/Chicago")).date() + timedelta(days=9)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    wanted = [{"tour_type": "in_person", "staff_member_id": agent} for agent in sorted(in_person_agents())]
    wanted += [{"tour_type": "self_guided"}] * 2
    answers = []
    for n, extra in enumerate(wanted):
        body = {"conversation_id": f"made-up-{uuid.uuid4()}", "property_id": PROPERTY, "date": str(day),
                "time": "14:00", **extra}
        status, answer, headers = http.exchange(
            "POST", f"{running_stack['LAMBDA_BASE_URL']}/tour-hold/api/resman/tours/holds", json_body=body,
            headers={"x-api-key": running_stack["API_KEY"]}, timeout=120)
        answers.append((status, headers.get("Retry-After"), answer))
    assert [status for status, _, _ in answers] == [201, 201, 201, 201, 429], answers
    _, retry_after, refusal = answers[-1]
    assert refusal["error"]["code"] == "too_many_holds", refusal
    assert retry_after is not None and 1 <= int(retry_after) <= 300, answers[-1]


def test_the_briefs_webhook_at_the_briefs_path_brings_staff_notes_to_the_tour(running_stack):
    """A relay that sends the brief's TourUpdateWebhook, as written (no event_id), to the brief's path on the
    function URL: accepted once, its notes on the tour; any other path of the function URL is 404."""
    env = running_stack
    day, time_of_day = free_slot(env, days_ahead=6)
    body = {"conversation_id": "e2e-brief-webhook", "tour_data": {
        "prospect_name": "Brief Shape", "prospect_email": "brief.shape@example.com", "prospect_phone": "+15125570001",
        "tour_type": "in_person", "preferred_date": day, "preferred_time": time_of_day, "property_id": PROPERTY}}
    status, booked = call(env, "POST", "book-tour/api/resman/tours/book", body)
    assert status == 201, booked
    notice = json.dumps({
        "appointment_id": booked["resman_appointment_id"], "status": "Confirmed",
        "updated_fields": {"status": "Confirmed", "staff_notes": "Wants to see the pool first"},
        # The tour's own agent: a notice naming another would move our tour off what ResMan's calendar holds.
        "staff_member": booked["staff_member"], "timestamp": datetime.now(ZoneInfo("UTC")).isoformat(),
    })

    def post(path: str) -> tuple[int, dict]:
        return http.request(
            "POST", f"{env['LAMBDA_BASE_URL']}/tour-webhook{path}", raw=notice.encode(), timeout=120,
            headers={"content-type": "application/json",
                     "x-resman-signature": signature(env["WEBHOOK_SECRET"], int(time.time()), notice)})

    assert post("/api/resman/webhooks/tour-update") == (200, {"status": "accepted"})
    assert post("/api/resman/webhooks/tour-update") == (200, {"status": "duplicate"}), "a retry is kept once"
    status, other = post("/somewhere-else")
    assert (status, other["error"]["code"]) == (404, "not_found"), other
    status, tour = call(env, "GET", f"get-tour/api/resman/tours/{booked['appointment_id']}")
    assert status == 200, tour
    assert (tour["status"], tour["staff_notes"]) == ("confirmed", "Wants to see the pool first"), tour
    assert tour["history"][-1]["source"] == "resman_webhook", tour["history"]


def test_a_tour_changed_by_the_chatbot_and_by_staff_through_the_functions_ends_the_same_on_both_sides(running_stack):
    env = running_stack
    day, time_of_day = free_slot(env, days_ahead=5)
    body = {
        "conversation_id": "e2e-lifecycle",
        "tour_data": {
            "prospect_name": "Life Cycle", "prospect_email": "lifecycle@example.com", "prospect_phone": "+15125579999",
            "tour_type": "in_person", "preferred_date": day, "preferred_time": time_of_day, "property_id": PROPERTY,
            "unit_preferences": ["2 bedrooms", "ground floor"],
        },
    }
    status, booked = call(env, "POST", "book-tour/api/resman/tours/book", body)
    assert status == 201, booked
    tour_path = f"update-tour/api/resman/tours/{booked['appointment_id']}"

    # The confirmation goes out through the queue, notification-sender and SES, with its calendar invite.
    confirmation = eventually("the confirmation email", lambda: emails_to(env, "lifecycle@example.com"))[0]
    assert "Central Time" in confirmation["Subject"], confirmation["Subject"]
    invite = next(p for p in confirmation.iter_attachments() if p.get_content_type() == "text/calendar")
    calendar = icalendar.Calendar.from_ical(invite.get_content())
    event = next(iter(calendar.walk("VEVENT")))
    assert str(calendar["METHOD"]) == "REQUEST"
    assert str(event["UID"]) == f"{booked['appointment_id']}@tour-booking"
    assert event.decoded("DTSTART") == datetime.fromisoformat(booked["confirmed_datetime"])

    # The chatbot confirms through update-tour; the answer does not wait for ResMan; the worker writes it there.
    status, updated = call(env, "PUT", tour_path, {"status": "confirmed", "staff_notes": "Bringing a dog"})
    assert status == 200 and updated["status"] == "confirmed" and updated["version"] == 2, updated
    eventually("ResMan's confirmation",
               lambda: sandbox_appointment(env, booked["resman_appointment_id"])["status"] == "Confirmed")
    status, refused = call(env, "PUT", tour_path, {"colour": "red"})
    assert status == 400 and "colour" in refused["error"]["message"], refused

    # Staff move it an hour later in ResMan; the sandbox's signed webhook reaches tour-webhook, the tour follows.
    new_start = datetime.fromisoformat(updated["confirmed_datetime"]) + timedelta(hours=1)
    _, changed = http.request(
        "POST", f"{env['RESMAN_SANDBOX_URL']}/_sandbox/appointments/{booked['resman_appointment_id']}/staff-change",
        json_body={"scheduled_at": new_start.isoformat()})
    assert changed["updated_fields"] == ["scheduled_at"], changed

    def moved():
        status, tour = call(env, "GET", f"get-tour/api/resman/tours/{booked['resman_appointment_id']}")
        return tour if status == 200 and datetime.fromisoformat(tour["confirmed_datetime"]) == new_start else None

    tour = eventually("the staff move reaching the tour", moved)
    assert tour["version"] == 3 and tour["status"] == "confirmed", tour
    assert [h["source"] for h in tour["history"]] == ["chatbot", "chatbot", "resman_webhook"]
    assert tour["staff_notes"] == "Bringing a dog"


def open_page(url: str, form: dict | None = None) -> tuple[int, Any, str]:
    """GET (or, with `form`, POST) the self-service page as a browser would: status, headers, HTML."""
    status, page, headers = http.exchange("GET" if form is None else "POST", url, form=form, timeout=120, text=True,
                                          headers={"Accept": "text/html"})
    return status, headers, page


def test_the_prospect_reschedules_through_the_link_in_their_email_and_the_link_is_then_used(running_stack):
    env = running_stack
    day, time_of_day = free_slot(env, days_ahead=6)
    body = {
        "conversation_id": "e2e-self-service",
        "tour_data": {
            "prospect_name": "Self Service", "prospect_email": "selfservice@example.com",
            "prospect_phone": "+15125578888", "tour_type": "in_person", "preferred_date": day,
            "preferred_time": time_of_day, "property_id": PROPERTY,
        },
    }
    status, booked = call(env, "POST", "book-tour/api/resman/tours/book", body)
    assert status == 201, booked
    confirmation = eventually("the confirmation email", lambda: emails_to(env, "selfservice@example.com"))[0]
    [link] = sent_mail.links_in(confirmation)
    assert link.startswith(f"{env['LAMBDA_BASE_URL']}/tour-self-service/tour?t="), link

    # The page: the tour and the free times, served by tour-self-service, with headers that keep the token private.
    status, headers, page = open_page(link)
    assert status == 200, page
    assert headers.get("Referrer-Policy") == "no-referrer" and headers.get("Cache-Control") == "no-store"
    times = re.findall(r'name="start" value="([^"]+)"', page)
    assert times and "Move my tour" in page and "Cancel my tour" in page
    token = urllib.parse.parse_qs(urllib.parse.urlparse(link).query)["t"][0]

    # One button: the tour moves, through the same use case as the chatbot's PUT.
    status, _, done = open_page(link, {"t": token, "action": "move", "start": times[-1]})
    assert status == 200 and "Your tour is moved" in done, done
    status, tour = call(env, "GET", f"get-tour/api/resman/tours/{booked['appointment_id']}")
    assert status == 200 and datetime.fromisoformat(tour["confirmed_datetime"]) == datetime.fromisoformat(times[-1])
    assert tour["history"][-1]["source"] == "prospect_link", tour["history"]
    eventually("ResMan's move", lambda: datetime.fromisoformat(
        sandbox_appointment(env, booked["resman_appointment_id"])["scheduled_at"]) == datetime.fromisoformat(times[-1]))

    # The link is used; the email about the move brings a fresh one; a forged one is refused and shows nothing.
    status, _, used = open_page(link)
    assert status == 410 and 'data-reason="used"' in used, used
    moved = eventually("the rescheduled email", lambda: [m for m in emails_to(env, "selfservice@example.com")
                                                         if m["Subject"].startswith("New time")])[0]
    [fresh] = sent_mail.links_in(moved)
    assert fresh != link and open_page(fresh)[0] == 200
    forged = fresh[:-1] + ("0" if fresh[-1] != "0" else "1")
    status, _, refused = open_page(forged)
    assert status == 403 and "Self Service" not in refused and 'data-reason="forged"' in refused
    status, headers, _ = open_page(fresh.replace("/tour?", "/tour/rate?"), {"t": token, "action": "cancel"})
    assert status == 405 and headers.get("Allow") == "GET"


def test_a_property_of_another_resman_account_loads_only_once_that_account_has_its_secret(running_stack, tmp_path):
    """An operator onboarding a management company: `load-properties` refuses a property whose ResMan account has no
    credentials secret, naming the secret to create, and loads it once the secret exists; or loads a file of accounts
    (each into its own secret) and their properties in one command."""
    import boto3

    properties = json.loads((REPO_ROOT / "infra/properties/demo.json").read_text())
    onboarded = {**properties[0], "property_id": "9d0c5b1e-0000-4000-8000-000000000777", "resman_account_id": 777,
                 "name": "Onboarded Apartments"}
    config = tmp_path / "onboarded.json"
    config.write_text(json.dumps(onboarded))
    loader = stack.cargo_target_dir() / "debug" / "load-properties"
    env = {**os.environ, **running_stack, **read_env_file(Path(running_stack["LOGS_DIR"]).parent / "function.env")}

    refused = subprocess.run([str(loader), str(config)], env=env, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "ResMan account 777" in refused.stderr and "tour-booking/resman/accounts/777" in refused.stderr, \
        refused.stderr
    assert "loaded" not in refused.stdout

    secrets = boto3.client("secretsmanager", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_REGION"],
                           aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])
    secrets.create_secret(Name="tour-booking/resman/accounts/777",
                          SecretString=json.dumps({"account_id": 777, "api_key": "onboarded-key-777"}))
    loaded = subprocess.run([str(loader), str(config)], env=env, capture_output=True, text=True, timeout=120)
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    assert "Onboarded Apartments" in loaded.stdout and "ResMan account 777" in loaded.stdout, loaded.stdout
    assert "onboarded-key-777" not in loaded.stdout + loaded.stderr

    # Or in one command: a file of accounts beside the file of properties.
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps({"resman_accounts": [{"account_id": 778, "api_key": "onboarded-key-778"}]}))
    second = tmp_path / "second.json"
    second.write_text(json.dumps({**onboarded, "property_id": "9d0c5b1e-0000-4000-8000-000000000778",
                                  "resman_account_id": 778, "name": "Second Onboarded"}))
    both = subprocess.run([str(loader), str(accounts), str(second)], env=env, capture_output=True, text=True,
                          timeout=120)
    assert both.returncode == 0, both.stdout + both.stderr
    assert "stored the credentials of ResMan account 778 in the secret tour-booking/resman/accounts/778" in both.stdout
    assert "Second Onboarded" in both.stdout and "onboarded-key-778" not in both.stdout + both.stderr
    stored = json.loads(secrets.get_secret_value(SecretId="tour-booking/resman/accounts/778")["SecretString"])
    assert stored == {"account_id": 778, "api_key": "onboarded-key-778"}


def test_the_api_holds_to_its_description_under_a_bounded_fuzz(running_stack, tmp_path):
    """schemathesis over every operation of openapi.yaml, through the API Gateway stand-in, with a fixed seed: no
    5xx, no undeclared status, every body, content type and header as described, schema-violating requests
    refused, and a 405 with `Allow` for every other method. `make fuzz` runs the long version."""
    outcomes = fuzz.fuzz(running_stack, examples=FUZZ_EXAMPLES, seed=fuzz.DEFAULT_SEED, out=tmp_path)
    cases = sum(o.cases for o in outcomes)
    failures = sum(o.failures for o in outcomes)
    assert cases >= 300, f"the fuzz ran only {cases} cases"
    assert failures == 0, f"{failures} failed checks; schemathesis's events are in {tmp_path}"


CLIENT_TS = REPO_ROOT / "tests" / "client-ts"


def node_tool(name: str) -> str:
    """A tool of the typed client's npm install (make venv runs `npm ci` there)."""
    tool = CLIENT_TS / "node_modules" / ".bin" / name
    assert tool.exists(), f"{tool} is missing: run `make venv` (it runs npm ci in {CLIENT_TS})"
    return str(tool)


def build_client(openapi: Path, out: Path) -> subprocess.CompletedProcess:
    """Generates the client's types from `openapi` and compiles the sample against them into `out`."""
    types = out / "src"
    types.mkdir(parents=True, exist_ok=True)
    for source in (CLIENT_TS / "src").glob("*.ts"):
        if source.name != "api.d.ts":
            shutil.copy(source, types / source.name)
    generated = subprocess.run([node_tool("openapi-typescript"), str(openapi), "--output", str(types / "api.d.ts")],
                               capture_output=True, text=True)
    assert generated.returncode == 0, generated.stderr
    config = json.loads((CLIENT_TS / "tsconfig.json").read_text())
    config["compilerOptions"].update(rootDir=str(types), outDir=str(out / "dist"),
                                     typeRoots=[str(CLIENT_TS / "node_modules" / "@types")])
    config["include"] = [str(types)]
    (out / "tsconfig.json").write_text(json.dumps(config))
    # Module resolution finds openapi-fetch from the client's node_modules.
    (out / "node_modules").symlink_to(CLIENT_TS / "node_modules")
    (out / "package.json").write_text(json.dumps({"type": "module"}))
    return subprocess.run([node_tool("tsc"), "-p", str(out)], capture_output=True, text=True)


def test_a_change_of_the_description_that_breaks_the_chatbots_code_fails_to_compile(tmp_path):
    """The sample compiles against openapi.yaml, and not against a description that renamed a field it reads."""
    built = build_client(REPO_ROOT / "openapi.yaml", tmp_path / "as-is")
    assert built.returncode == 0, built.stdout + built.stderr
    changed = tmp_path / "openapi-renamed.yaml"
    changed.write_text((REPO_ROOT / "openapi.yaml").read_text().replace("confirmed_datetime", "start_datetime"))
    broken = build_client(changed, tmp_path / "renamed")
    assert broken.returncode != 0 and "confirmed_datetime" in broken.stdout, broken.stdout


def test_the_chatbots_flow_runs_on_the_typed_client_against_the_functions(running_stack, tmp_path):
    """Generated from openapi.yaml, compiled, run through the API Gateway stand-in: availability (or the next day with
    times), a hold another conversation cannot take, the booking that presents its token, alternatives once the time is
    full, the tour read back, and a cancellation."""
    built = build_client(REPO_ROOT / "openapi.yaml", tmp_path)
    assert built.returncode == 0, built.stdout + built.stderr
    port = free_port()
    server = gateway.serve(running_stack["LAMBDA_INVOKE_URL"], port)
    try:
        ran = subprocess.run(
            ["node", str(tmp_path / "dist" / "sample.js")], capture_output=True, text=True, timeout=300,
            env={**os.environ, "TOUR_BOOKING_URL": f"http://127.0.0.1:{port}",
                 "TOUR_BOOKING_API_KEY": running_stack["API_KEY"], "TOUR_BOOKING_PROPERTY": PROPERTY},
        )
    finally:
        server.shutdown()
    assert ran.returncode == 0, ran.stdout + ran.stderr
    steps = [json.loads(line)["step"] for line in ran.stdout.splitlines()]
    assert steps[-7:] == ["held", "the held time is not offered to another conversation", "booked",
                          "that time is full; alternatives offered", "read back", "cancelled", "done"], steps


def test_no_prospects_name_email_or_phone_reaches_any_functions_log(running_stack):
    """Runs last: every booking, change, email, self-service page and fuzz case above went through the functions.
    Their logs (everything cargo lambda watch's functions and the event pump wrote) hold none of the prospects'
    personal data, in any of the forms the functions see it."""
    env = running_stack
    logs = Path(env["LOGS_DIR"])
    text = "".join((logs / name).read_text(errors="replace") for name in ("lambda.log", "pump.log"))
    assert "booking_id" in text and "message sent" in text, "the logs hold the functions' lines: this test reads them"
    personal = [("Life Cycle", "lifecycle@example.com", "+15125579999"),
                ("Self Service", "selfservice@example.com", "+15125578888")]
    personal += [(f"Prospect Number{n}", f"e2e{n}@example.com", f"+1512557{n:04d}") for n in range(PROSPECTS)]
    # The typed client's sample (tests/client-ts/src/sample.ts).
    personal += [("Sample Ana", "sample.ana@example.com", "+15125550177")]
    personal += [(f"Sample Guest{n}", f"sample.guest{n}@example.com", "+15125550177") for n in range(10)]
    found = set()
    for name, email, phone in personal:
        for value in (name, email, phone, phone[2:], email.split("@")[0] + "@"):
            if value in text:
                found.add(value)
    assert not found, f"personal data in the functions' logs: {sorted(found)[:10]}"


def dashboard_period(env: dict) -> tuple[str, str]:
    """The dashboard page's default period (the last 30 days and the coming week), in the property's dates."""
    today = datetime.now(ZoneInfo("America/Chicago")).date()
    return str(today - timedelta(days=29)), str(today + timedelta(days=7))


def figures(env: dict, start: str, end: str) -> tuple[dict, dict]:
    """The period's metrics and trends, from the one call the dashboard makes (the summary)."""
    query = urllib.parse.urlencode({"property_id": PROPERTY, "from": start, "to": end})
    status, summary = call(env, "GET", f"tour-metrics/api/resman/tours/summary?{query}")
    assert status == 200, summary
    return summary["metrics"], summary["trends"]


def test_the_dashboard_shows_the_apis_figures_and_draws_every_chart_in_chromium(running_stack, tmp_path):
    env = running_stack
    # Two tours with an outcome, so the show-rate chart has data: one held, one missed.
    for n, outcome in enumerate(("completed", "no_show")):
        day, time_of_day = free_slot(env, days_ahead=4 + n)
        status, booked = call(env, "POST", "book-tour/api/resman/tours/book", {
            "conversation_id": f"e2e-dashboard-{n}",
            "tour_data": {
                "prospect_name": "Dash Board", "prospect_email": f"dashboard{n}@example.com",
                "prospect_phone": f"+1512558000{n}", "tour_type": "in_person", "preferred_date": day,
                "preferred_time": time_of_day, "property_id": PROPERTY,
            },
        })
        assert status == 201, booked
        status, updated = call(env, "PUT", f"update-tour/api/resman/tours/{booked['appointment_id']}",
                               {"status": outcome})
        assert status == 200, updated
    start, end = dashboard_period(env)
    query = urllib.parse.urlencode({"property_id": PROPERTY, "from": start, "to": end})
    # The leasing manager signs in with their company's key, never the chatbot's.
    url = f"{env['LAMBDA_BASE_URL']}/tour-dashboard/dashboard?{query}#key={env['MANAGER_API_KEY']}"
    screenshot = tmp_path / "dashboard.png"
    # The figures follow the table's change stream (tour-rollups, fed by the pump as Lambda would): they show the two
    # outcomes a moment after the changes.
    eventually("the figures showing both outcomes", lambda: (
        lambda m: m["completed_tours"] >= 1 and m["no_show_tours"] >= 1)(figures(env, start, end)[0]))
    # The queue workers keep changing the figures (syncs, emails) for a moment after the bookings: compare the page
    # with answers that held still while it loaded.
    for attempt in range(5):
        metrics, trends = figures(env, start, end)
        try:
            checked = dashboard_check.check_dashboard(url, metrics, trends, screenshot)
            break
        except AssertionError:
            if (metrics, trends) == figures(env, start, end) or attempt == 4:
                raise
            time.sleep(2)
    kept = REPO_ROOT / "target" / "test-output" / "dashboard-e2e.png"
    kept.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(screenshot, kept)
    assert screenshot.stat().st_size > 10_000, "the screenshot shows a page"
    assert metrics["total_bookings"] >= 2 and metrics["completed_tours"] >= 1 and metrics["no_show_tours"] >= 1
    points = dashboard_check.expected_chart_points(trends)
    assert all(points[chart] > 0 for chart in points), f"every chart has data: {points}"
    assert checked, "the check reports what it compared"
    # Another company's manager is refused this property: the page says there is no such property.
    other = f"{env['LAMBDA_BASE_URL']}/tour-dashboard/dashboard?{query}#key={env['RIVERSIDE_MANAGER_API_KEY']}"
    with pytest.raises(dashboard_check.DashboardCheckFailed, match="no such property"):
        dashboard_check.check_dashboard(other, metrics, trends, tmp_path / "refused.png")


def test_a_function_whose_policy_loses_an_action_it_uses_fails_as_it_would_in_aws(running_stack):
    """The IAM gate holds each function to its policy: take dynamodb:Query (the read of a tour with its messages) away
    from get-tour's role, and reading a tour answers 503 with AWS's AccessDeniedException behind it; give it back,
    and the same read answers 200."""
    env = running_stack
    day, time = free_slot(env, days_ahead=5)
    status, booked = call(env, "POST", "book-tour/api/resman/tours/book", {
        "conversation_id": "iam-gate",
        "tour_data": {
            "prospect_name": "Gate Keeper", "prospect_email": "gate@example.com", "prospect_phone": "+15125550100",
            "tour_type": "in_person", "preferred_date": day, "preferred_time": time, "property_id": PROPERTY,
        },
    })
    assert status in (201, 202), booked
    path = f"get-tour/api/resman/tours/{booked['appointment_id']}"
    assert call(env, "GET", path)[0] == 200

    granted = json.loads(Path(env["POLICIES_FILE"]).read_text())
    reduced = json.loads(json.dumps(granted))
    for statement in reduced["principals"]["LOCALGetTour"]["statements"]:
        statement["actions"] = [a for a in statement["actions"] if a != "dynamodb:Query"]
    gate(env, "DELETE", "/_iam/denials")
    gate(env, "PUT", "/_iam/policies", reduced)
    try:
        status, answer = call(env, "GET", path)
        assert status == 503, answer
        denials = gate(env, "GET", "/_iam/denials")
        assert {"function": "get-tour", "action": "dynamodb:Query",
                "resource": f"arn:aws:dynamodb:us-east-1:123456789012:table/{env['TABLE_NAME']}"} in denials
    finally:
        gate(env, "PUT", "/_iam/policies", granted)
        gate(env, "DELETE", "/_iam/denials")
    assert call(env, "GET", path)[0] == 200


def load_properties(env: dict, config: list | dict, tmp: Path) -> None:
    """The operator's `load-properties`, with the stack's function environment."""
    path = tmp / "properties.json"
    path.write_text(json.dumps(config))
    function_env = read_env_file(Path(env["LOGS_DIR"]).parent / "function.env")
    loader = stack.cargo_target_dir() / "debug" / "load-properties"
    result = subprocess.run([str(loader), str(path)], env={**os.environ, **function_env}, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def sms(env: dict, method: str, path: str, body: dict | None = None) -> dict:
    status, answer = http.request(method, f"{env['SMS_SANDBOX_URL']}{path}", json_body=body, timeout=30)
    assert status == 200, (status, answer)
    return answer


def test_a_text_goes_through_the_text_service_under_its_policy_and_replies_act_on_the_tour(running_stack, tmp_path):
    """Through the functions: the sender texts from the pool (the IAM gate holding it to its sms-voice grant), the
    receipt marks the text, and the prospect's C and then CANCEL reach tour-text-events as SNS events and act."""
    env = running_stack
    properties = json.loads((REPO_ROOT / "infra/properties/demo.json").read_text())
    texting = [{**p, "texts": True} if p["property_id"] == PROPERTY else p for p in properties]
    load_properties(env, texting, tmp_path)
    zone = ZoneInfo("America/Chicago")
    quiet = not (8 <= datetime.now(zone).hour < 21)
    try:
        day, at = free_slot(env, days_ahead=4)
        number = "+15125550188"
        body = {
            "conversation_id": f"e2e-texts-{uuid.uuid4().hex[:8]}",
            "tour_data": {"prospect_name": "Tess Text", "prospect_email": "tess@example.com", "prospect_phone": number,
                          "tour_type": "in_person", "preferred_date": day, "preferred_time": at,
                          "property_id": PROPERTY},
            "sms_consent": {"words": "Text me about my tour. Reply STOP to stop.",
                            "agreed_at": datetime.now(zone).replace(microsecond=0).isoformat()},
        }
        status, booked = call(env, "POST", "book-tour/api/resman/tours/book", body)
        assert status in (201, 202), booked
        tour_id = booked["appointment_id"]

        def tour() -> dict:
            return call(env, "GET", f"get-tour/api/resman/tours/{tour_id}")[1]

        def kinds(t: dict) -> dict:
            return {d["message"]: d for d in t.get("notifications") or []}

        if quiet:
            # 9 pm to 8 am at the property: the text waits; nothing may go now.
            time.sleep(5)
            assert sms(env, "GET", f"/_sandbox/texts?to={urllib.parse.quote(number)}")["texts"] == []
            return
        texts_to = f"/_sandbox/texts?to={urllib.parse.quote(number)}"
        texts = eventually("the confirmation text", lambda: sms(env, "GET", texts_to)["texts"])
        assert "your tour is booked for" in texts[0]["body"] and texts[0]["from"] == stack.SMS_POOL, texts[0]
        sent = eventually("its receipt", lambda: (kinds(tour()).get("text_confirmation") or {}).get("receipt"))
        assert sent["delivered"] is True
        sms(env, "POST", "/_sandbox/replies", {"from": number, "to": "+17375550100", "body": "C"})
        assert eventually("the prospect's C", lambda: tour().get("prospect_confirmed_at"))
        sms(env, "POST", "/_sandbox/replies", {"from": number, "to": "+17375550100", "body": "cancel", "twice": True})
        final = eventually("the final text", lambda: [t for t in sms(env, "GET", texts_to)["texts"]
                                                      if "will not text you again" in t["body"]])
        assert len(final) == 1, "one final text, even delivered twice"
        assert tour()["status"] == "cancelled"
        assert tour()["sms_consent"]["state"] == "revoked"
        held_back = eventually("the cancellation text held back",
                               lambda: (kinds(tour()).get("text_cancelled") or {}).get("status") == "superseded")
        assert held_back
    finally:
        load_properties(env, properties, tmp_path)


def test_every_aws_call_of_the_suite_was_within_its_functions_policy(running_stack):
    """Runs last: everything the tests above made the functions do stayed inside template.yaml's policies."""
    assert gate(running_stack, "GET", "/_iam/denials") == []
