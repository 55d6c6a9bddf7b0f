"""The staff dashboard page (functions/tour-dashboard/page) in Debian's headless Chromium: served as the
tour-dashboard function serves it (its four files, `{{ api_base }}` rendered, the same Content-Security-Policy), in
front of a stand-in of the metrics API that answers fixed figures to the right key only.

A missing Chart.js copy or Chromium fails the test with what to run; it never skips.
"""

from __future__ import annotations

import copy
import html
import json
import shutil
import urllib.parse
from dataclasses import dataclass, field
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

import dashboard_check
from conftest import REPO_ROOT, serving

FUNCTION_DIR = REPO_ROOT / "functions" / "tour-dashboard"
PAGE_DIR = FUNCTION_DIR / "page"
CHART_JS = FUNCTION_DIR / "vendor" / "chart.umd.min.js"
DASHBOARD_PATH = "/lambda-url/tour-dashboard/dashboard"
API_PREFIX = "/lambda-url/tour-metrics"
# Where a person finds the picture of the last run.
SCREENSHOT_COPY = REPO_ROOT / "target" / "test-output" / "dashboard-page.png"

KEY = "dashboard-test-key-7f3a"
PROPERTY_ID = "prop-oak-terrace"
FROM, TO = "2026-11-01", "2026-11-30"

ASSETS = {
    "dashboard.js": ("text/javascript; charset=utf-8", PAGE_DIR / "dashboard.js"),
    "dashboard.css": ("text/css; charset=utf-8", PAGE_DIR / "dashboard.css"),
    "chart.umd.min.js": ("text/javascript; charset=utf-8", CHART_JS),
}


def period_dates() -> list[str]:
    first, last = date.fromisoformat(FROM), date.fromisoformat(TO)
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


# A busy month: a null figure (no ratings yet), a rate of exactly 1 (JSON 1.0 against JavaScript's 1), days without
# bookings, a tour type nobody booked, a funnel step at zero, an hour whose only tour was missed (rate 0) and
# prospects no reminder reached who all missed their tour (rate 0, so the reminder chart counts one point where the
# lead-time chart counts two).
METRICS = {
    "property_id": PROPERTY_ID, "from": FROM, "to": TO, "time_zone": "America/Chicago",
    "total_bookings": 12, "confirmed_tours": 5, "completed_tours": 4, "cancelled_tours": 1, "no_show_tours": 1,
    "average_booking_time": 3.2, "booking_time_p50": 2.1, "booking_time_p95": 9.8,
    "staff_utilization": 0.1234,
    "booking_success_rate": 0.95, "confirmation_delivery_rate": 1.0, "completion_rate": 0.8, "no_show_rate": 0.2,
    "staff_response_time_median": 3725.5,
    "satisfaction_score": None, "satisfaction_count": 0, "double_booking_refusals": 1,
    "interested_tours": 2, "not_interested_tours": 1, "follow_up_tours": 1, "outcome_rate": 0.75,
    "staff_satisfaction": 0.8571, "staff_rating_count": 7, "staff_satisfaction_goal": 0.9,
    "staff_went_wrong": {"wrong_time": 1},
    "texts": {"sent": 6, "delivered": 5, "failed": 1, "delivery_rate": 0.8333, "texted_tours": 3, "replied_tours": 2,
              "reply_rate": 0.6667, "attendance_confirmed_tours": 2, "attendance_confirmation_rate": None},
    "needs_attention": [
        {"booking_id": "bk-01JD3X5ZQ8", "appointment_id": None, "tour_type": "in_person",
         "start": "2026-11-30T15:00:00Z", "local_start": "2026-11-30T09:00", "status": "scheduled",
         "sync_status": "pending", "reasons": ["sync_pending", "unconfirmed"]},
        {"booking_id": "bk-01JD3X9K2M", "appointment_id": "res-88412", "tour_type": "virtual",
         "start": "2026-11-24T22:30:00Z", "local_start": "2026-11-24T16:30", "status": "confirmed",
         "sync_status": "failed", "reasons": ["sync_failed", "message_failed"]},
    ],
}
DAILY_COUNTS = {"2026-11-02": 2, "2026-11-03": 1, "2026-11-09": 3, "2026-11-16": 1, "2026-11-20": 4, "2026-11-27": 1}
SHOWS_BY_HOUR = {9: (2, 1), 11: (3, 3), 14: (1, 0), 16: (2, 2)}  # hour: (tours, shows)
TRENDS = {
    "property_id": PROPERTY_ID, "from": FROM, "to": TO, "time_zone": "America/Chicago",
    "daily_bookings": [{"date": day, "count": DAILY_COUNTS.get(day, 0)} for day in period_dates()],
    "tour_type_distribution": {"in_person": 7, "self_guided": 0, "virtual": 5},
    "conversion_rate": 0.25, "tour_to_application_rate": 0.5, "tour_to_lease_rate": 0.25,
    "funnel": {"booked": 12, "confirmed": 5, "completed": 4, "applied": 2, "leased": 0},
    "show_rate_by_weekday": [
        {"weekday": day, "tours": 0, "shows": 0, "rate": None}
        for day in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
    ],
    "show_rate_by_hour": [
        {"hour": hour, "tours": tours, "shows": shows, "rate": round(shows / tours, 4) if tours else None}
        for hour in range(24)
        for tours, shows in [SHOWS_BY_HOUR.get(hour, (0, 0))]
    ],
    "show_rate_by_lead_time": [
        {"segment": "same_day", "tours": 0, "shows": 0, "rate": None},
        {"segment": "one_to_two_days", "tours": 5, "shows": 4, "rate": 0.8},
        {"segment": "three_days_or_more", "tours": 3, "shows": 2, "rate": 0.6667},
    ],
    "show_rate_by_confirmation": [
        {"segment": "confirmed", "tours": 4, "shows": 4, "rate": 1.0},
        {"segment": "unconfirmed", "tours": 4, "shows": 2, "rate": 0.5},
    ],
    "show_rate_by_prospect_confirmation": [
        {"segment": "prospect_confirmed", "tours": 2, "shows": 2, "rate": 1.0},
        {"segment": "not_prospect_confirmed", "tours": 6, "shows": 4, "rate": 0.6667},
    ],
    "show_rate_by_reminder": [
        {"segment": "reminded", "tours": 6, "shows": 6, "rate": 1.0},
        {"segment": "not_reminded", "tours": 2, "shows": 0, "rate": 0.0},
    ],
}
SEGMENT_CHARTS = ("show_rate_by_lead_time", "show_rate_by_confirmation", "show_rate_by_prospect_confirmation",
                  "show_rate_by_reminder")


def empty_answers() -> tuple[dict, dict]:
    """A property that has had no tours yet: every share and time null, every count zero."""
    metrics = {name: (0 if isinstance(value, int) else None) for name, value in METRICS.items()
               if name in dashboard_check.METRIC_FIELDS}
    # The brief's figures are numbers whatever happens: 0 here (the page shows a dash for the first and the last,
    # whose companions say there was nothing to count).
    metrics.update(property_id=PROPERTY_ID, **{"from": FROM, "to": TO}, time_zone="America/Chicago",
                   needs_attention=[], average_booking_time=0, staff_utilization=0,
                   staff_satisfaction_goal=0.9, staff_went_wrong={},
                   texts={name: (0 if isinstance(value, int) else None) for name, value in METRICS["texts"].items()})
    trends = copy.deepcopy(TRENDS)
    trends.update(conversion_rate=0, tour_to_application_rate=None, tour_to_lease_rate=None,
                  tour_type_distribution={"in_person": 0, "self_guided": 0, "virtual": 0},
                  funnel={step: 0 for step in dashboard_check.FUNNEL_STEPS})
    for day in trends["daily_bookings"]:
        day["count"] = 0
    for hour in trends["show_rate_by_hour"]:
        hour.update(tours=0, shows=0, rate=None)
    for segment in (segment for name in SEGMENT_CHARTS for segment in trends[name]):
        segment.update(tours=0, shows=0, rate=None)
    return metrics, trends


@dataclass
class Site:
    """The dashboard as the function serves it, and the metrics API it calls, on one local origin (as under
    `cargo lambda watch`). `requests` keeps each API request's path with its query and its x-api-key header."""

    origin: str = ""
    metrics: dict = field(default_factory=lambda: copy.deepcopy(METRICS))
    trends: dict = field(default_factory=lambda: copy.deepcopy(TRENDS))
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    # When set, the summary call answers this status and error message instead (as when a read of the figures fails).
    summary_error: tuple[int, str] | None = None

    @property
    def api_base(self) -> str:
        return self.origin + API_PREFIX

    def page_url(self, fragment: str = "") -> str:
        query = urllib.parse.urlencode({"property_id": PROPERTY_ID, "from": FROM, "to": TO})
        return f"{self.origin}{DASHBOARD_PATH}?{query}" + (f"#{fragment}" if fragment else "")

    def content_security_policy(self) -> str:
        # What the tour-dashboard function sends: only the page's own files, and fetches to the metrics API.
        return (f"default-src 'self'; connect-src 'self' {self.origin}; img-src 'self' data:; style-src 'self'; "
                "script-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


def serve(site: Site) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 - keep test output quiet
            pass

        def answer(self, status: int, content_type: str, body: bytes, page: bool = False) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Content-Type-Options", "nosniff")
            if page:
                self.send_header("Content-Security-Policy", site.content_security_policy())
                self.send_header("Referrer-Policy", "no-referrer")
                self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def api_error(self, status: int, code: str, message: str) -> None:
            body = json.dumps({"error": {"code": code, "message": message}}).encode()
            self.answer(status, "application/json", body)

        def do_GET(self):  # noqa: N802 - http.server's naming
            url = urllib.parse.urlsplit(self.path)
            if url.path == DASHBOARD_PATH:
                page = (PAGE_DIR / "index.html").read_text().replace("{{ api_base }}", html.escape(site.api_base))
                self.answer(200, "text/html; charset=utf-8", page.encode(), page=True)
            elif url.path.startswith(DASHBOARD_PATH + "/assets/") and url.path.rsplit("/", 1)[1] in ASSETS:
                content_type, path = ASSETS[url.path.rsplit("/", 1)[1]]
                self.answer(200, content_type, path.read_bytes())
            elif url.path == f"{API_PREFIX}/api/resman/tours/properties":
                site.requests.append((self.path, self.headers.get("x-api-key")))
                if self.headers.get("x-api-key") != KEY:
                    self.api_error(401, "unauthorized", "Missing or wrong API key.")
                else:
                    listed = {"properties": [{"property_id": PROPERTY_ID, "name": "Maple Grove Apartments",
                                              "time_zone": "America/Chicago"}]}
                    self.answer(200, "application/json", json.dumps(listed).encode())
            elif url.path == f"{API_PREFIX}/api/resman/tours/summary":
                # The page's one call for its figures; /metrics and /trends are not served, so a page that still
                # called them would fail.
                site.requests.append((self.path, self.headers.get("x-api-key")))
                query = dict(urllib.parse.parse_qsl(url.query))
                if self.headers.get("x-api-key") != KEY:
                    self.api_error(401, "unauthorized", "Missing or wrong API key.")
                elif query != {"property_id": PROPERTY_ID, "from": FROM, "to": TO}:
                    self.api_error(400, "invalid_query", f"unexpected query {url.query}")
                elif site.summary_error:
                    self.api_error(site.summary_error[0], "unavailable", site.summary_error[1])
                else:
                    answer = {"metrics": site.metrics, "trends": site.trends}
                    self.answer(200, "application/json", json.dumps(answer).encode())
            else:
                self.answer(404, "text/plain", b"not found")

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


@pytest.fixture(scope="module", autouse=True)
def page_files_present() -> None:
    if not CHART_JS.exists():
        pytest.fail(f"{CHART_JS.relative_to(REPO_ROOT)} is missing: run `make dashboard-assets` (make venv does)")
    try:
        dashboard_check.find_chromium()
    except dashboard_check.ChromiumMissing as error:
        pytest.fail(str(error))


@pytest.fixture
def site() -> Iterator[Site]:
    site = Site()
    with serving(serve(site)) as origin:
        site.origin = origin
        yield site


def test_the_dashboard_shows_every_figure_chart_and_tour_needing_attention_that_the_api_answers(site, tmp_path):
    screenshot = tmp_path / "dashboard.png"
    summary = dashboard_check.check_dashboard(site.page_url(f"key={KEY}"), site.metrics, site.trends, screenshot)

    SCREENSHOT_COPY.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(screenshot, SCREENSHOT_COPY)
    assert summary["chart_points"] == {
        "daily_bookings": 6, "tour_type_distribution": 2, "funnel": 4, "show_rate_by_hour": 3,
        "show_rate_by_lead_time": 2, "show_rate_by_reminder": 1,
    }
    assert summary["attention_rows"] == 2
    # The key left the address bar, and reached the API in the header only.
    assert KEY not in summary["final_url"]
    assert summary["final_url"] == site.page_url()
    # One call for the figures (the summary), beside the property picker's.
    assert sorted(path.split("?")[0] for path, _ in site.requests) == [
        f"{API_PREFIX}/api/resman/tours/properties", f"{API_PREFIX}/api/resman/tours/summary",
    ]
    assert all(key == KEY and KEY not in path for path, key in site.requests)


def test_a_property_without_tours_shows_dashes_and_says_nothing_needs_attention(site, tmp_path):
    site.metrics, site.trends = empty_answers()
    summary = dashboard_check.check_dashboard(
        site.page_url(f"key={KEY}"), site.metrics, site.trends, tmp_path / "empty.png"
    )
    assert summary["chart_points"] == dict.fromkeys(dashboard_check.CHARTS, 0)
    assert summary["attention_rows"] == 0
    # The brief's numbers are 0 with nothing to count; the page says "no data", never "0 s" or "0%".
    with dashboard_check.chromium() as browser:
        page = browser.new_page()
        page.goto(site.page_url(f"key={KEY}"))
        page.wait_for_selector("body[data-state=ready]", state="attached", timeout=30_000)
        for field in ("average_booking_time", "conversion_rate"):
            element = f"[data-metric={field}]"
            assert page.get_attribute(element, "data-value") == "0", field
            assert page.inner_text(element).strip() == "—", field


def test_staff_satisfaction_is_shown_against_the_briefs_goal_of_above_90_percent(site):
    def shown(staff_satisfaction, count):
        site.metrics = {**METRICS, "staff_satisfaction": staff_satisfaction, "staff_rating_count": count}
        with dashboard_check.chromium() as browser:
            page = browser.new_page()
            page.goto(site.page_url(f"key={KEY}"))
            page.wait_for_selector("body[data-state=ready]", state="attached", timeout=30_000)
            figure = "[data-metric=staff_satisfaction]"
            return (page.inner_text(figure).strip(), page.get_attribute(figure, "data-meets"),
                    page.inner_text("[data-goal-verdict=staff_satisfaction]").strip(),
                    page.inner_text("[data-metric=staff_satisfaction_goal]").strip())

    assert shown(0.8571, 7) == ("85.7%", "false", "(not met yet)", "90%")
    assert shown(0.9, 10) == ("90%", "false", "(not met yet)", "90%"), "the goal is above 90%, not 90%"
    assert shown(0.95, 20) == ("95%", "true", "(met)", "90%")
    assert shown(None, 0) == ("—", "", "(no answers yet)", "90%")


def test_a_refused_key_brings_back_the_key_form_and_the_right_key_typed_there_loads_the_figures(site, tmp_path):
    with dashboard_check.chromium() as browser:
        page = browser.new_page()
        page.goto(site.page_url("key=not-the-key"))
        page.wait_for_selector("body[data-state=needs-key]", state="attached", timeout=30_000)
        page.screenshot(path=str(tmp_path / "refused-key.png"), full_page=True)
        assert page.is_visible("#key-form")
        assert "not accepted" in page.inner_text("#key-problem")
        assert "not-the-key" not in page.url
        assert page.evaluate("sessionStorage.length") == 0  # The refused key is not kept.

        page.fill("#api-key", KEY)
        page.click("#key-form button[type=submit]")
        page.wait_for_selector("body[data-state=ready]", state="attached", timeout=30_000)
        assert page.get_attribute("[data-metric=total_bookings]", "data-value") == "12"
        assert KEY not in page.url


def test_an_api_error_shows_its_message_instead_of_figures(site, tmp_path):
    site.summary_error = (503, "The analytics store is busy; try again in a minute.")
    with pytest.raises(dashboard_check.DashboardCheckFailed) as failure:
        dashboard_check.check_dashboard(site.page_url(f"key={KEY}"), site.metrics, site.trends, tmp_path / "error.png")
    assert "state 'error'" in str(failure.value)
    assert "The analytics store is busy; try again in a minute. (HTTP 503)" in str(failure.value)


def reminder_chart(site: Site) -> dict:
    """What the reminder chart shows once the page is ready: its caption, the bars Chart.js drew and its hooks."""
    with dashboard_check.chromium() as browser:
        page = browser.new_page()
        page.goto(site.page_url(f"key={KEY}"))
        page.wait_for_selector("body[data-state=ready]", state="attached", timeout=30_000)
        return page.eval_on_selector(
            "canvas[data-chart=show_rate_by_reminder]",
            """canvas => {
                const chart = window.Chart.getChart(canvas);
                const figure = canvas.closest("figure");
                return {
                    caption: figure.querySelector("figcaption").textContent,
                    labels: chart.data.labels,
                    values: chart.data.datasets[0].data,
                    points: canvas.dataset.points,
                    empty_shown: !figure.querySelector(".chart-empty").hidden,
                };
            }""",
        )


def test_the_reminder_chart_shows_the_show_rate_of_prospects_a_reminder_reached_and_of_the_others(site):
    shown = reminder_chart(site)
    assert shown["caption"].startswith("Show rate with and without a reminder")
    assert shown["labels"] == ["Reminder reached them", "No reminder reached them"]
    # In percent: everyone a reminder reached came, nobody else did (a zero bar, so one point).
    assert shown["values"] == [100, 0]
    assert (shown["points"], shown["empty_shown"]) == ("1", False)


def test_the_check_fails_a_page_whose_reminder_chart_is_not_the_apis(site, tmp_path):
    answered = copy.deepcopy(site.trends)
    answered["show_rate_by_reminder"][1].update(shows=1, rate=0.5)
    with pytest.raises(dashboard_check.DashboardCheckFailed) as failure:
        dashboard_check.check_dashboard(site.page_url(f"key={KEY}"), site.metrics, answered, tmp_path / "wrong.png")
    assert "chart show_rate_by_reminder: data-points='1', expected 2" in str(failure.value)


def test_an_older_api_without_the_reminder_figures_still_shows_everything_else(site, tmp_path):
    del site.trends["show_rate_by_reminder"]
    summary = dashboard_check.check_dashboard(site.page_url(f"key={KEY}"), site.metrics, site.trends,
                                              tmp_path / "older-api.png")
    assert summary["chart_points"]["show_rate_by_reminder"] == 0
    assert summary["chart_points"]["show_rate_by_lead_time"] == 2
    shown = reminder_chart(site)
    assert (shown["labels"], shown["points"], shown["empty_shown"]) == ([], "0", True)


def test_without_a_key_the_page_asks_for_one_and_calls_nothing(site):
    with dashboard_check.chromium() as browser:
        page = browser.new_page()
        page.goto(site.page_url())
        page.wait_for_selector("body[data-state=needs-key]", state="attached", timeout=30_000)
        assert page.is_visible("#api-key")
        assert not page.is_visible("#report")
    assert site.requests == []


def test_a_key_that_reaches_one_property_opens_it_without_an_id_and_the_field_offers_it(site, tmp_path):
    """The property picker: the properties the key reaches (here one, by name) fill the property field, and an
    address without `property_id` opens the only one."""
    query = urllib.parse.urlencode({"from": FROM, "to": TO})
    url = f"{site.origin}{DASHBOARD_PATH}?{query}#key={KEY}"
    summary = dashboard_check.check_dashboard(url, site.metrics, site.trends, tmp_path / "picked.png")
    assert summary["final_url"] == site.page_url() or PROPERTY_ID in summary["final_url"], summary["final_url"]
    with dashboard_check.chromium() as browser:
        page = browser.new_page()
        page.goto(url)
        page.wait_for_selector("body[data-state=ready]", state="attached", timeout=30_000)
        offered = page.evaluate("[...document.querySelectorAll('#property-list option')].map(o => [o.value, o.label])")
        assert offered == [[PROPERTY_ID, "Maple Grove Apartments"]]
        assert page.text_content("#period").startswith("Maple Grove Apartments · ")
