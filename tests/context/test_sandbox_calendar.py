"""The EHR sandbox's clinic is on capture's "today" whatever the time zone or the date change.

CI failed at 00:06 UTC: the sandbox's encounters were dated when the test session imported it
(before midnight), so capture's worklist for the new day was empty. And the encounters were
at UTC hours while capture asks for the local calendar day: a developer east or west of UTC
saw part of the clinic (or none of it) for part of every day.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys

import httpx

from capture_api.context.worklist import WorklistClient
from ehr_sandbox.server import SandboxServer
from ehr_sandbox.ups_server import follow_the_calendar, workitem_uid
from tests.conftest import REPO

DERM = "DERM-PHONE-01"
DERM_ITEMS = [workitem_uid(e) for e in ("enc-muller", "enc-smith-a", "enc-ngata")]


def test_a_sandbox_started_yesterday_shows_todays_clinic_and_keeps_created_items() -> None:
    today = dt.date.today()
    yesterday = today - dt.timedelta(days=1)
    with SandboxServer() as sandbox:
        base = f"{sandbox.state.base_url}/dicom-web"
        follow_the_calendar(sandbox.state, today=yesterday)  # as if it had started yesterday
        assert sandbox.state.encounters["enc-muller"]["period"]["start"].startswith(
            yesterday.isoformat()
        )
        at_nine_yesterday = dt.datetime.combine(yesterday, dt.time(9)).astimezone(dt.UTC)
        created = {  # an item a request scheduled yesterday: it stays yesterday's
            "00100020": {"vr": "LO", "Value": ["100003"]},
            "00404005": {"vr": "DT", "Value": [at_nine_yesterday.strftime("%Y%m%d%H%M%S+0000")]},
            "00404025": {"vr": "SQ", "Value": [{"00080100": {"vr": "SH", "Value": [DERM]}}]},
        }
        answer = httpx.post(f"{base}/workitems?1.2.826.0.1.3680043.10.1.98", json=[created])
        assert answer.status_code == 201, answer.text

        with WorklistClient(base, station_code=DERM) as worklist:
            items = worklist.today()
        assert [w.uid for w in items] == DERM_ITEMS
        starts = [w.scheduled_start for w in items]
        assert all(s is not None for s in starts)
        local = [s.astimezone() for s in starts if s is not None]
        assert [(s.date(), s.hour) for s in local] == [(today, 9), (today, 10), (today, 14)]
        assert sandbox.state.encounters["enc-muller"]["period"]["start"].startswith(
            today.isoformat()
        )
        assert "1.2.826.0.1.3680043.10.1.98" not in {w.uid for w in items}


_IN_ZONE = """
from capture_api.context.worklist import WorklistClient
from ehr_sandbox.server import SandboxServer
with SandboxServer() as sandbox:
    with WorklistClient(f"{sandbox.state.base_url}/dicom-web", station_code="DERM-PHONE-01") as w:
        print(len(w.today()))
"""


def test_the_whole_clinic_is_on_todays_worklist_far_from_utc() -> None:
    """UTC+14 and UTC-11: the local day and the UTC day differ for most of every day."""
    for zone in ("Pacific/Kiritimati", "Pacific/Pago_Pago"):
        env = {**os.environ, "TZ": zone, "PYTHONPATH": str(REPO)}
        done = subprocess.run(
            [sys.executable, "-c", _IN_ZONE], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "3", (zone, done.stdout, done.stderr[-2000:])
