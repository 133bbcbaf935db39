"""Shared working hours between a mentor and a mentee, in UTC.

Definition (DESIGN.md section 4): for a round dated D, the shared hours are the hours of
the mentee's working window on *their* local date D that fall inside the mentor's working
windows on the mentor's local dates D-1, D and D+1. Everything is converted to UTC with
``zoneinfo`` so DST changes and windows that cross midnight come out right:

* a window whose end is at or before its start crosses midnight and ends on the next local day
  (start == end means a 24-hour window);
* local wall times that do not exist (spring-forward gap) or exist twice (fall-back fold) are
  resolved the way ``zoneinfo`` does with ``fold=0``: the offset in force *before* the
  transition is used.  A 09:00-17:00 window is therefore 8 h long in UTC on every day except
  when a transition happens inside it (then 7 h or 9 h).

Two implementations live here: ``overlap_windows`` (scalar, used by explanations and the
independent checker) and ``overlap_seconds_table`` (vectorised over the few distinct
(time zone, window) combinations, used to build candidates). Tests check they agree.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Iterable, Sequence
from zoneinfo import ZoneInfo

import numpy as np

from .problem import Person, Window

UTC = timezone.utc
MINUTES_PER_DAY = 24 * 60


@lru_cache(maxsize=4096)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=1 << 14)
def local_window_utc(time_zone: str, start_min: int, end_min: int, local_day: date) -> tuple[datetime, datetime]:
    """The working window that *starts* on ``local_day`` (local time), as UTC datetimes."""
    tz = _zone(time_zone)
    length = (end_min - start_min) % MINUTES_PER_DAY or MINUTES_PER_DAY
    midnight = datetime(local_day.year, local_day.month, local_day.day)
    start_local = midnight + timedelta(minutes=start_min)
    end_local = midnight + timedelta(minutes=start_min + length)  # wall clock, may be the next day
    start = start_local.replace(tzinfo=tz).astimezone(UTC)
    end = end_local.replace(tzinfo=tz).astimezone(UTC)
    return start, end


def _union(intervals: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(intervals):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def overlap_windows(mentor: Person, mentee: Person, on: date) -> tuple[Window, ...]:
    """UTC windows in which both can meet on the round date ``on`` (see module docstring)."""
    e_start, e_end = local_window_utc(mentee.time_zone, mentee.work_start_min, mentee.work_end_min, on)
    mentor_windows = _mentor_windows(mentor.time_zone, mentor.work_start_min, mentor.work_end_min, on)
    shared = []
    for m_start, m_end in mentor_windows:
        start, end = max(e_start, m_start), min(e_end, m_end)
        if end > start:
            shared.append(Window(start_utc=start, end_utc=end))
    return tuple(shared)


@lru_cache(maxsize=1 << 14)
def _mentor_windows(time_zone: str, start_min: int, end_min: int, on: date) -> tuple[tuple[datetime, datetime], ...]:
    """The mentor's windows starting on local dates on-1, on and on+1, merged (UTC).

    Memoised (like ``local_window_utc``): an organisation has a few hundred distinct
    (time zone, window) combinations, and zoneinfo conversions dominate the scalar path."""
    return tuple(
        _union(local_window_utc(time_zone, start_min, end_min, on + timedelta(days=k)) for k in (-1, 0, 1))
    )


def overlap_hours(mentor: Person, mentee: Person, on: date) -> float:
    """Total shared working hours on the round date (sum of ``overlap_windows``)."""
    return windows_hours(overlap_windows(mentor, mentee, on))


def windows_hours(windows: Sequence[Window]) -> float:
    return sum((w.end_utc - w.start_utc).total_seconds() for w in windows) / 3600.0


# --- vectorised form ----------------------------------------------------------------------


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def overlap_seconds_table(
    mentee_combos: Sequence[tuple[str, int, int]],
    mentor_combos: Sequence[tuple[str, int, int]],
    on: date,
) -> np.ndarray:
    """Shared seconds for every (mentee combo, mentor combo); a combo is (tz, start, end).

    There are few distinct combos in a real organisation (a few hundred at most), so the
    whole table is small and a pair's overlap becomes one lookup.
    """
    e_bounds = np.array(
        [[_epoch(t) for t in local_window_utc(tz, s, e, on)] for tz, s, e in mentee_combos], dtype=np.int64
    ).reshape(-1, 2)
    # Up to three disjoint mentor intervals per combo (after union), padded with empty ones.
    m_bounds = np.zeros((len(mentor_combos), 3, 2), dtype=np.int64)
    for j, (tz, s, e) in enumerate(mentor_combos):
        for k, (a, b) in enumerate(_mentor_windows(tz, s, e, on)):
            m_bounds[j, k] = (_epoch(a), _epoch(b))
    starts = np.maximum(e_bounds[:, None, None, 0], m_bounds[None, :, :, 0])
    ends = np.minimum(e_bounds[:, None, None, 1], m_bounds[None, :, :, 1])
    return np.clip(ends - starts, 0, None).sum(axis=2).astype(np.int32)


def format_hhmm(minutes: int) -> str:
    minutes %= MINUTES_PER_DAY
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
