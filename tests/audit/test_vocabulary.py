"""The vocabulary stays whole: every API route is audited under a named action with its own
codes (or is deliberately left out), and docs/audit.md lists every action and CSV column."""

from __future__ import annotations

import re

import pytest

from capture_api.api.app import create_app
from capture_api.audit import events
from capture_api.audit.audited_routes import ROUTE_ACTIONS, SUFFIX_ACTIONS, action_for, is_audited
from capture_api.audit.export import CSV_COLUMNS
from tests.conftest import REPO

DOCS = (REPO / "docs" / "audit.md").read_text(encoding="utf-8")
NOT_PATIENT_DATA = {"/healthz", "/readyz", "/metrics", "/api/v1/body-sites"}


def test_every_api_route_has_a_named_action() -> None:
    paths = create_app().openapi()["paths"]
    unnamed = []
    for path, operations in paths.items():
        for method in operations:
            audited = is_audited(path, method)
            if path.removesuffix("/{code}").removesuffix("/lookup") in NOT_PATIENT_DATA:
                assert not audited, path
                continue
            assert audited, f"{method.upper()} {path} is not audited"
            if action_for(path) == "api":
                unnamed.append(f"{method.upper()} {path}")
    assert not unnamed, f"name these in capture_api/audit/audited_routes.py: {unnamed}"


def test_every_action_has_codes_and_is_documented() -> None:
    route_actions = {a for _, a in ROUTE_ACTIONS} | {a for _, a in SUFFIX_ACTIONS}
    assert route_actions <= set(events.ACTIONS)
    for action, kind in events.ACTIONS.items():
        assert re.search(rf"\| `{re.escape(action)}`", DOCS), f"{action} missing in docs/audit.md"
        assert kind.event_id.scheme_designator == "DCM" and events.meaning(kind.event_id.value)
    for column in CSV_COLUMNS:
        assert f"`{column}`" in DOCS, f"CSV column {column} missing in docs/audit.md"


@pytest.mark.parametrize(
    ("path", "method", "audited"),
    [
        ("/launch/callback", "GET", True),
        ("/logout", "POST", True),
        ("/api/v1/contexts/x", "OPTIONS", False),
        ("/api/v1/body-sites/123", "GET", False),
        ("/api/v1/body-sitesX", "GET", True),
        ("/app/app.js", "GET", False),
        ("/launcher", "GET", False),
    ],
)
def test_what_is_audited(path: str, method: str, audited: bool) -> None:
    assert is_audited(path, method) is audited


def test_the_balp_action_follows_the_method_unless_fixed() -> None:
    assert events.balp_action("capture", "GET") == "R"
    assert events.balp_action("capture", "POST") == "C"
    assert events.balp_action("capture", None) == "C"
    assert events.balp_action("audit-export", "GET") == "E"
    assert events.balp_action("unblur", "POST") == "R"
    assert events.balp_action("something-new", None) == "R"  # never lost: a Patient Record read
