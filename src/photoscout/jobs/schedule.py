"""When the service does what (pure: times in, times out). Settings name local wall-clock times: ``quiet_hours``
("22:00-07:00", a window that may cross midnight) during which background model work waits, ``full_scan_at`` (the
nightly full pass), ``rescan_minutes`` (the periodic rescan that always runs, events or not)."""

from __future__ import annotations

from datetime import datetime, time, timedelta


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def quiet(window: str, now: datetime) -> bool:
    """Whether ``now`` falls in the ``HH:MM-HH:MM`` window (empty: never; equal ends: never)."""
    if not window:
        return False
    start, end = (_clock(t) for t in window.split("-"))
    at = now.time()
    if start <= end:
        return start <= at < end
    return at >= start or at < end  # the window crosses midnight


def quiet_ends(window: str, now: datetime) -> datetime | None:
    """When the quiet window ``now`` is in ends (None when not in one)."""
    if not quiet(window, now):
        return None
    end = _clock(window.split("-")[1])
    ends = now.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
    return ends if ends > now else ends + timedelta(days=1)


def next_full_pass(at: str, now: datetime, last: datetime | None) -> datetime | None:
    """The next nightly full pass at ``at`` (HH:MM) after the ``last`` one (empty ``at``: none)."""
    if not at:
        return None
    clock = _clock(at)
    due = now.replace(hour=clock.hour, minute=clock.minute, second=0, microsecond=0)
    if due > now:
        due -= timedelta(days=1)  # today's has not come yet: is yesterday's still owed?
    if last is not None and last >= due:
        due += timedelta(days=1)
    elif last is None:
        due += timedelta(days=1)  # a fresh start scans everything anyway: the first nightly pass is the next one
    return due
