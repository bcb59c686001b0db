"""What the sandbox's servers share: tokens, data, its own URL and the app it launches."""

from __future__ import annotations

import copy
import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from ehr_sandbox import data
from ehr_sandbox.tokens import TokenRegistry


@dataclass
class SandboxState:
    """One sandbox instance (tests make several, each with its own state)."""

    base_url: str  # e.g. http://127.0.0.1:9000 ; FHIR base is {base_url}/fhir
    app_launch_url: str = "http://127.0.0.1:8000/launch"  # the SMART app (capture) to launch
    tokens: TokenRegistry = field(default_factory=TokenRegistry)
    patients: dict[str, dict[str, Any]] = field(
        default_factory=lambda: copy.deepcopy(data.PATIENTS)
    )
    #: Today's encounters (``data.encounters``); ``ups_server`` moves them, and the worklist
    #: built from them, to the next day after midnight (``schedule_day``).
    encounters: dict[str, dict[str, Any]] = field(default_factory=data.encounters)
    schedule_day: dt.date = field(default_factory=dt.date.today)
    extra: dict[str, Any] = field(default_factory=dict)  # per-module state (clients, workitems)
    #: Where browsers reach the sandbox when that is not ``base_url`` (behind a TLS proxy, as
    #: an EHR on another site than capture): the authorization endpoint is advertised there;
    #: the servers (capture's token and FHIR calls) keep using ``base_url``.
    browser_url: str | None = None

    @property
    def browser_base_url(self) -> str:
        return self.browser_url or self.base_url

    @property
    def fhir_base(self) -> str:
        return f"{self.base_url}/fhir"
