"""The demo's wording: what a leasing manager reads about closed days, times and agents."""

from __future__ import annotations

from datetime import date, datetime, time

import demo

MONDAY = date(2026, 11, 23)
THANKSGIVING = date(2026, 11, 26)


def answer(hours: list[list[str]], note: str | None = None) -> dict:
    """An availability answer with no time left, as the API words the office's day."""
    return {"available_slots": [], "office": {"hours": hours, "note": note, "minimum_notice_minutes": 120}}


def test_a_day_without_times_says_why_in_the_answers_own_terms():
    assert demo.why_no_times(answer([], "Thanksgiving"), THANKSGIVING, MONDAY) == "closed (Thanksgiving)"
    sunday = date(2026, 11, 29)
    assert demo.why_no_times(answer([]), sunday, MONDAY) == "closed (the office is closed on Sundays)"
    open_day = answer([["09:00", "18:00"]])
    assert demo.why_no_times(open_day, MONDAY, MONDAY) == "no times left today (tours need 2 hours' notice)"
    assert demo.why_no_times(open_day, date(2026, 11, 24), MONDAY) == "fully booked"


def test_the_staff_booking_goes_on_the_next_weekday_the_api_says_is_open(monkeypatch):
    # The office as the API answers it: closed on Thanksgiving, open until 1 pm the day after, 9 to 6 on weekdays.
    office = {THANKSGIVING: [], date(2026, 11, 27): [["09:00", "13:00"]]}
    asked = []

    def availability(ctx, day, tour_type="in_person", property_id=demo.DEMO_PROPERTY_ID):
        asked.append((day, property_id))
        return answer(office.get(day, [["09:00", "18:00"]] if day.weekday() < 5 else []))

    monkeypatch.setattr(demo, "availability", availability)
    assert demo.next_open_weekday(None, date(2026, 11, 25), time(11, 0), 45) == date(2026, 11, 27)
    assert demo.next_open_weekday(None, date(2026, 11, 25), time(12, 30), 45) == date(2026, 11, 30)
    assert demo.next_open_weekday(None, date(2026, 11, 27), time(11, 0), 45, property_id="P-2") == date(2026, 11, 30)
    assert (date(2026, 11, 30), "P-2") in asked, "the other property's own answer is asked for"


def test_times_days_and_names_read_as_people_write_them():
    assert demo.clock(datetime(2026, 11, 24, 9, 0)) == "9:00 AM"
    assert demo.clock(time(17, 15)) == "5:15 PM"
    assert demo.day_in_words(THANKSGIVING) == "Thu Nov 26"
    assert demo.names_in_words(["Alex"]) == "Alex"
    assert demo.names_in_words(["Alex", "Jordan", "Sam"]) == "Alex, Jordan and Sam"
    assert demo.plural(1, "open time") == "1 open time"
    assert demo.plural(31, "open time") == "31 open times"
