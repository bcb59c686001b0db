"""Fixtures for the privacy tests: the sandbox EHR and capture apps, shared with the hardening
tests (a real SMART launch over loopback HTTP; the CSRF header sent as the phone client does).
"""

from __future__ import annotations

from tests.security.conftest import ehr, make_app

__all__ = ["ehr", "make_app"]
