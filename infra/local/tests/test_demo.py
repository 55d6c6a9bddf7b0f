"""The demo's wording: what a leasing manager reads about closed days, times and agents."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

import demo

MONDAY = date(2026, 11, 23)
THANKSGIVING = date(2026, 11, 26)


@pytest.fixture(scope="module")
def config() -> dict:
    return demo.property_config()


def test_a_day_without_times_says_why(config):
    assert demo.why_no_times(config, THANKSGIVING, MONDAY) == "closed (Thanksgiving)"
    assert demo.why_no_times(config, date(2026, 11, 29), MONDAY) == "closed (the office is closed on Sundays)"
    assert demo.why_no_times(config, MONDAY, MONDAY) == "no times left today (tours need 2 hours' notice)"
    assert demo.why_no_times(config, date(2026, 11, 24), MONDAY) == "fully booked"


def test_the_staff_booking_goes_on_the_next_open_weekday(config):
    assert demo.next_open_weekday(config, date(2026, 11, 25), time(11, 0), 45) == date(2026, 11, 27)
    assert demo.next_open_weekday(config, date(2026, 11, 27), time(11, 0), 45) == date(2026, 11, 30)


def test_times_days_and_names_read_as_people_write_them():
    assert demo.clock(datetime(2026, 11, 24, 9, 0)) == "9:00 AM"
    assert demo.clock(time(17, 15)) == "5:15 PM"
    assert demo.day_in_words(THANKSGIVING) == "Thu Nov 26"
    assert demo.names_in_words(["Alex"]) == "Alex"
    assert demo.names_in_words(["Alex", "Jordan", "Sam"]) == "Alex, Jordan and Sam"
    assert demo.plural(1, "open time") == "1 open time"
    assert demo.plural(31, "open time") == "31 open times"
