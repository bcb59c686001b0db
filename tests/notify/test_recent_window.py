"""The notifier's looks read the recently verified photos, and everything once an hour."""

from __future__ import annotations

import datetime as dt

from capture_api.notify.recent import FULL_LOOK, MARGIN, RecentWindow

T0 = dt.datetime(2026, 12, 6, 8, 0, tzinfo=dt.UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> dt.datetime:
        return self.now


def test_a_window_opens_only_after_a_complete_look_over_everything() -> None:
    clock = Clock()
    window = RecentWindow(clock)
    began, since = window.begin()
    assert (began, since) == (T0, None)  # the first look reads every photo
    window.end(began, since, complete=False)  # it hit its limit: more to read
    clock.now = T0 + dt.timedelta(seconds=5)
    began, since = window.begin()
    assert since is None  # everything again, until a look over everything completes
    window.end(began, since, complete=True)

    clock.now = T0 + dt.timedelta(seconds=30)
    second, since = window.begin()
    assert since == T0 + dt.timedelta(seconds=5) - MARGIN  # what was verified since, less
    window.end(second, since, complete=False)  # a full batch: the same window next time
    clock.now = T0 + dt.timedelta(seconds=40)
    assert window.begin()[1] == since
    window.end(clock.now, since, complete=True)
    clock.now = T0 + dt.timedelta(seconds=50)
    assert window.begin()[1] == T0 + dt.timedelta(seconds=40) - MARGIN


def test_every_photo_is_read_again_once_a_full_look_is_an_hour_old() -> None:
    clock = Clock()
    window = RecentWindow(clock)
    window.end(*window.begin(), complete=True)
    clock.now = T0 + FULL_LOOK - dt.timedelta(seconds=1)
    began, since = window.begin()
    assert since is not None
    window.end(began, since, complete=True)  # a windowed look does not reset the hour
    clock.now = T0 + FULL_LOOK
    assert window.begin()[1] is None
