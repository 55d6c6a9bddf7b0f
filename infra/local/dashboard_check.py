"""Checks the staff analytics dashboard (functions/tour-dashboard/page) in a real browser: Debian's Chromium, headless,
driven by Playwright (Playwright's own browser download is not used).

`check_dashboard(url, metrics, trends, screenshot)` opens the page (its URL carries `#key=...`), waits until it says
it is ready, saves a full-page screenshot and compares what the page shows with the API answers it was given:

- every figure: `[data-metric=<field>]` has `data-value` equal to the field's JSON value ("" for null);
- every chart: `canvas[data-chart=<name>]` is drawn (non-zero size) and its `data-points` is the number of the
  chart's values that are not zero, as `expected_chart_points` counts them;
- the attention table: one `tr[data-booking-id]` per `needs_attention` entry, in the API's order;
- the API key is gone from the address bar.

From the command line it fetches the answers itself, with the page's one call (`GET /api/resman/tours/summary`,
`{"metrics": ..., "trends": ...}`):

    .venv/bin/python infra/local/dashboard_check.py \\
        'http://127.0.0.1:9000/lambda-url/tour-dashboard/dashboard?property_id=P&from=2026-11-01&to=2026-11-30' \\
        --api-base http://127.0.0.1:9000/lambda-url/tour-metrics --key KEY --screenshot out.png
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from playwright.sync_api import Browser, Page, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

# Every number of GET /api/resman/tours/metrics; each is a figure on the page.
METRIC_FIELDS = (
    "total_bookings",
    "confirmed_tours",
    "completed_tours",
    "cancelled_tours",
    "no_show_tours",
    "average_booking_time",
    "booking_time_p50",
    "booking_time_p95",
    "staff_utilization",
    "booking_success_rate",
    "confirmation_delivery_rate",
    "completion_rate",
    "no_show_rate",
    "staff_response_time_median",
    "satisfaction_score",
    "satisfaction_count",
    "double_booking_refusals",
    "interested_tours",
    "not_interested_tours",
    "follow_up_tours",
    "outcome_rate",
    "staff_satisfaction",
    "staff_rating_count",
    "staff_satisfaction_goal",
    "texts.sent",
    "texts.delivery_rate",
    "texts.reply_rate",
    "texts.attendance_confirmation_rate",
)
# The figures of GET /api/resman/tours/trends; the rest of that answer is charts.
TREND_FIELDS = ("conversion_rate", "tour_to_application_rate", "tour_to_lease_rate")
FUNNEL_STEPS = ("booked", "confirmed", "completed", "applied", "leased")
CHARTS = ("daily_bookings", "tour_type_distribution", "funnel", "show_rate_by_hour", "show_rate_by_lead_time",
          "show_rate_by_reminder")

# The states the page stays in until someone acts (data-state on <body>); `loading` is the only other one.
FINAL_STATES = ("ready", "error", "needs-key", "needs-property")
# The page fetches, then draws six charts; a minute is far more than that takes even on a busy machine.
READY_TIMEOUT_MS = 60_000


class DashboardCheckFailed(AssertionError):
    """The page did not show what the API answered, or did not get ready."""


class ChromiumMissing(RuntimeError):
    pass


def find_chromium() -> str:
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )
    if not found:
        raise ChromiumMissing(
            "Chromium is not installed: the dashboard check needs Debian's package `chromium`. Run `make chromium` "
            "(which `make test` runs) or `apt-get install --no-install-recommends chromium`."
        )
    return found


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's Chromium, headless, for the duration of the block."""
    executable = find_chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def expected_chart_points(trends: dict) -> dict[str, int]:
    """The `data-points` each chart must show: how many of its values are not zero (null counts as zero).

    - daily_bookings: the `count` of each date;
    - tour_type_distribution: the count of each tour type;
    - funnel: booked, confirmed, completed, applied and leased;
    - show_rate_by_hour: the `rate` of each hour (the chart draws the hours that had tours; an hour without tours
      has a null rate). dashboard.js's chartData counts the same way;
    - show_rate_by_lead_time: the `rate` of each lead (same day, 1-2 days, 3+ days);
    - show_rate_by_reminder: the `rate` of each segment (reminded, not reminded). An older API's answer without it
      draws an empty chart, so it counts none.
    """

    def non_zero(values: list) -> int:
        return sum(1 for value in values if value is not None and value != 0)

    return {
        "daily_bookings": non_zero([day["count"] for day in trends["daily_bookings"]]),
        "tour_type_distribution": non_zero(list(trends["tour_type_distribution"].values())),
        "funnel": non_zero([trends["funnel"][step] for step in FUNNEL_STEPS]),
        "show_rate_by_hour": non_zero([hour["rate"] for hour in trends["show_rate_by_hour"]]),
        "show_rate_by_lead_time": non_zero([lead["rate"] for lead in trends["show_rate_by_lead_time"]]),
        "show_rate_by_reminder": non_zero([segment["rate"] for segment in trends.get("show_rate_by_reminder", [])]),
    }


MISSING = object()


def field_of(answer: dict, field: str) -> object:
    """A figure's field in an API answer, which may sit in an object of it (`texts.sent`); MISSING when absent."""
    found: object = answer
    for key in field.split("."):
        if not isinstance(found, dict) or key not in found:
            return MISSING
        found = found[key]
    return found


def json_equal(shown: str, expected: object) -> bool:
    """`data-value` (JSON.stringify of the value, "" for null) against the API's value, with JSON's semantics:
    numbers compare as numbers (1 and 1.0 are one number), null only matches ""."""
    if expected is None:
        return shown == ""
    if shown == "":
        return False
    try:
        return json.loads(shown) == expected
    except json.JSONDecodeError:
        return False


def wait_until_ready(page: Page, console: list[str]) -> None:
    """Waits for data-state=ready; any other final state, or the timeout, fails with what the page said."""
    try:
        page.wait_for_selector(
            ", ".join(f"body[data-state={state}]" for state in FINAL_STATES),
            state="attached",
            timeout=READY_TIMEOUT_MS,
        )
    except PlaywrightTimeout:
        state = page.evaluate("document.body.dataset.state")
        raise DashboardCheckFailed(
            f"the dashboard was not ready within {READY_TIMEOUT_MS // 1000} s (state {state!r})"
            + describe_console(console)
        ) from None
    state = page.evaluate("document.body.dataset.state")
    if state != "ready":
        shown = page.evaluate(
            "[...document.querySelectorAll('#error, #key-problem, #status')]"
            ".filter(e => !e.hidden).map(e => e.textContent.trim()).join(' | ')"
        )
        raise DashboardCheckFailed(f"the dashboard ended in state {state!r}: {shown!r}" + describe_console(console))


def describe_console(console: list[str]) -> str:
    return "\nbrowser console:\n  " + "\n  ".join(console) if console else "\n(browser console empty)"


def check_dashboard(url: str, metrics: dict, trends: dict, screenshot: Path) -> dict:
    """Opens the dashboard at `url` and checks it shows `metrics` and `trends` (the API's answers for the page's
    property and dates). Raises DashboardCheckFailed; returns what was checked."""
    key = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).fragment)).get("key")
    console: list[str] = []
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
        page.on("pageerror", lambda error: console.append(f"uncaught: {error}"))
        page.goto(url)
        try:
            wait_until_ready(page, console)
        finally:
            # Also when the page failed: the picture often says why at a glance.
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)

        problems: list[str] = []
        # A page that works under its Content-Security-Policy and without script errors logs no error at all.
        if any(line.startswith(("error:", "uncaught:")) for line in console):
            problems.append("the browser console has errors (below): a script failed or the CSP blocked something")

        shown_values: dict[str, list[str]] = page.evaluate(
            """() => {
                const values = {};
                for (const element of document.querySelectorAll('[data-metric]')) {
                    (values[element.dataset.metric] ??= []).push(element.dataset.value ?? null);
                }
                return values;
            }"""
        )
        figures = [(field, metrics) for field in METRIC_FIELDS] + [(field, trends) for field in TREND_FIELDS]
        for field, answer in figures:
            found = field_of(answer, field)
            if found is MISSING:
                problems.append(f"the API answer has no {field}")
                continue
            shown = shown_values.get(field, [])
            if len(shown) != 1:
                problems.append(f"{len(shown)} elements with data-metric={field}, expected 1")
            elif shown[0] is None or not json_equal(shown[0], found):
                problems.append(f"{field}: the page shows data-value={shown[0]!r}, the API answered {found!r}")

        points = expected_chart_points(trends)
        charts_shown: dict[str, dict] = {}
        for name in CHARTS:
            canvas = page.query_selector(f"canvas[data-chart={name}]")
            if canvas is None:
                problems.append(f"no canvas[data-chart={name}]")
                continue
            shown = canvas.evaluate(
                "c => ({width: c.getBoundingClientRect().width, height: c.getBoundingClientRect().height,"
                " points: c.dataset.points ?? null})"
            )
            charts_shown[name] = shown
            if not (shown["width"] > 0 and shown["height"] > 0):
                problems.append(f"chart {name} is {shown['width']}x{shown['height']} pixels")
            if shown["points"] != str(points[name]):
                problems.append(f"chart {name}: data-points={shown['points']!r}, expected {points[name]}")

        expected_rows = [tour["booking_id"] for tour in metrics["needs_attention"]]
        shown_rows = page.eval_on_selector_all("tr[data-booking-id]", "rows => rows.map(r => r.dataset.bookingId)")
        if shown_rows != expected_rows:
            problems.append(f"attention rows {shown_rows}, expected {expected_rows}")
        if not expected_rows and not page.is_visible("text=Nothing needs attention."):
            problems.append("no tour needs attention, but the page does not say so")

        final_url = page.url
        if key and key in final_url:
            problems.append(f"the API key is still in the address bar: {final_url}")

        if problems:
            raise DashboardCheckFailed(
                "the dashboard does not show what the API answered:\n  " + "\n  ".join(problems)
                + describe_console(console)
            )
        return {
            "figures": len(figures),
            "chart_points": points,
            "charts": charts_shown,
            "attention_rows": len(shown_rows),
            "final_url": final_url,
            "screenshot": str(screenshot),
            "console": console,
        }


def fetch_json(api_base: str, path: str, query: dict[str, str], key: str) -> dict:
    url = f"{api_base.rstrip('/')}{path}?{urllib.parse.urlencode(query)}"
    request = urllib.request.Request(url, headers={"x-api-key": key, "accept": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def fetch_figures(api_base: str, query: dict[str, str], key: str) -> tuple[dict, dict]:
    """The metrics and the trends answers, from the one call the page makes (the summary: both from the same reads,
    so they always agree with each other)."""
    summary = fetch_json(api_base, "/api/resman/tours/summary", query, key)
    return summary["metrics"], summary["trends"]


def main() -> int:
    parser = argparse.ArgumentParser(description="Check the tour dashboard in headless Chromium against the API.")
    parser.add_argument("url", help="the dashboard's URL, with property_id, from and to in its query string")
    parser.add_argument("--api-base", required=True, help="the metrics API's base URL (what the page's API_BASE is)")
    parser.add_argument("--key", required=True, help="the API key (given to the page in the URL fragment)")
    parser.add_argument("--screenshot", type=Path, default=Path("dashboard.png"))
    args = parser.parse_args()

    page_url = urllib.parse.urlsplit(args.url)
    query = dict(urllib.parse.parse_qsl(page_url.query))
    if not {"property_id", "from", "to"} <= query.keys():
        parser.error("the URL must carry property_id, from and to: the check compares the API's answer for them")
    api_query = {name: query[name] for name in ("property_id", "from", "to")}
    metrics, trends = fetch_figures(args.api_base, api_query, args.key)
    url_with_key = urllib.parse.urlunsplit(page_url._replace(fragment=urllib.parse.urlencode({"key": args.key})))
    try:
        summary = check_dashboard(url_with_key, metrics, trends, args.screenshot)
    except (DashboardCheckFailed, ChromiumMissing) as error:
        print(error, file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
