"""Shared working hours in UTC: DST, midnight-crossing windows, and the vectorised table."""

from datetime import date, datetime, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matching import overlap_hours, overlap_windows
from matching.overlap import overlap_seconds_table

from .factory import person

UTC = timezone.utc
SINGAPORE_DAY = person("sg", tz="Asia/Singapore", hours=("09:00", "17:00"))  # 01:00-09:00 UTC all year
TORONTO_EVENING = person("to", tz="America/Toronto", hours=("19:00", "03:00"))  # crosses midnight
TORONTO_DAY = person("to-day", tz="America/Toronto", hours=("08:00", "16:00"))


@pytest.mark.parametrize(
    "on, expected",
    [
        # 12 Mar 2025, Toronto on EDT (UTC-4, DST began 9 Mar): mentee 19:00 EDT 12 Mar - 03:00 EDT
        # 13 Mar = 23:00 UTC 12 Mar - 07:00 UTC 13 Mar; mentor's 13 Mar window 01:00-09:00 UTC -> 6 h.
        (date(2025, 3, 12), 6.0),
        # 5 Mar 2025, EST (UTC-5): 00:00-08:00 UTC 6 Mar against 01:00-09:00 UTC 6 Mar -> 7 h.
        (date(2025, 3, 5), 7.0),
        # 30 Oct 2025, still EDT: 23:00 UTC 30 Oct - 07:00 UTC 31 Oct -> 6 h.
        (date(2025, 10, 30), 6.0),
        # 1 Nov 2025: the shift spans the fall-back at 02:00 on 2 Nov. It starts 19:00 EDT =
        # 23:00 UTC and ends 03:00 EST = 08:00 UTC (a 9-hour shift) -> 01:00-08:00 UTC = 7 h.
        (date(2025, 11, 1), 7.0),
        # 4 Nov 2025, EST again: 00:00-08:00 UTC 5 Nov -> 7 h.
        (date(2025, 11, 4), 7.0),
        # 8 Mar 2025, the mentee's shift spans the switch: 19:00 EST 8 Mar = 00:00 UTC 9 Mar until
        # 03:00 EDT 9 Mar = 07:00 UTC 9 Mar (a 7-hour shift); mentor 01:00-09:00 UTC 9 Mar -> 6 h.
        (date(2025, 3, 8), 6.0),
    ],
)
def test_singapore_mentor_toronto_night_shift(on, expected):
    assert overlap_hours(SINGAPORE_DAY, TORONTO_EVENING, on) == pytest.approx(expected)


def test_window_that_crosses_the_dst_switch_is_shorter_in_utc():
    windows = overlap_windows(SINGAPORE_DAY, TORONTO_EVENING, date(2025, 3, 8))
    assert [(w.start_utc, w.end_utc) for w in windows] == [
        (datetime(2025, 3, 9, 1, tzinfo=UTC), datetime(2025, 3, 9, 7, tzinfo=UTC))
    ]


def test_mentor_previous_local_day_counts():
    # Mentee in Singapore 01:00-09:00 UTC 12 Mar; the Toronto mentor's shift that *started* on
    # 11 Mar local (19:00 EDT = 23:00 UTC 11 Mar, until 07:00 UTC 12 Mar) gives 01:00-07:00 -> 6 h.
    assert overlap_hours(TORONTO_EVENING, SINGAPORE_DAY, date(2025, 3, 12)) == pytest.approx(6.0)


@pytest.mark.parametrize("on", [date(2025, 3, 12), date(2025, 11, 4)])
def test_day_shifts_singapore_toronto_never_meet(on):
    # 01:00-09:00 UTC against 12:00-20:00 (EDT) or 13:00-21:00 (EST) UTC.
    assert overlap_hours(SINGAPORE_DAY, TORONTO_DAY, on) == 0.0
    assert overlap_windows(SINGAPORE_DAY, TORONTO_DAY, on) == ()


def test_europe_and_us_drift_apart_when_only_the_us_has_switched():
    london = person("l", tz="Europe/London")
    new_york = person("n", tz="America/New_York")
    # 12 Mar: New York on EDT (13:00-21:00 UTC), London on GMT (09:00-17:00 UTC) -> 4 h.
    assert overlap_hours(new_york, london, date(2025, 3, 12)) == pytest.approx(4.0)
    # 5 Mar: New York on EST (14:00-22:00 UTC) -> 3 h.
    assert overlap_hours(new_york, london, date(2025, 3, 5)) == pytest.approx(3.0)


def test_full_day_window():
    always = person("a", tz="Asia/Tokyo", hours=("00:00", "00:00"))
    assert overlap_hours(always, person("b", tz="Europe/Berlin"), date(2025, 6, 1)) == pytest.approx(8.0)


ZONES = ["Asia/Singapore", "America/Toronto", "Europe/London", "Asia/Kolkata", "Australia/Sydney",
         "Pacific/Auckland", "America/Los_Angeles", "Asia/Kathmandu", "Europe/Berlin", "America/Sao_Paulo"]
combo = st.tuples(st.sampled_from(ZONES), st.integers(0, 95).map(lambda q: q * 15), st.integers(0, 95).map(lambda q: q * 15))


@settings(max_examples=60, deadline=None)
@given(
    mentee=combo,
    mentor=combo,
    on=st.dates(min_value=date(2024, 1, 1), max_value=date(2026, 12, 31)),
)
def test_vectorised_table_matches_scalar(mentee, mentor, on):
    table = overlap_seconds_table([mentee], [mentor], on)
    a = person("e", tz=mentee[0], hours=(f"{mentee[1] // 60:02d}:{mentee[1] % 60:02d}", f"{mentee[2] // 60:02d}:{mentee[2] % 60:02d}"))
    b = person("m", tz=mentor[0], hours=(f"{mentor[1] // 60:02d}:{mentor[1] % 60:02d}", f"{mentor[2] // 60:02d}:{mentor[2] % 60:02d}"))
    assert table[0, 0] == round(overlap_hours(b, a, on) * 3600)
