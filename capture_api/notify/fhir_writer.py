"""Writes to the EHR's FHIR R4 server: CapabilityStatement check and conditional create.

* ``GET {iss}/metadata`` (R4 http.html#capabilities) returns the CapabilityStatement; a resource
  type is writable when ``rest[mode=server].resource[type]`` lists the ``create`` interaction
  and ``conditionalCreate`` is true (R4 capabilitystatement.html). Without conditional create a
  retry could duplicate the resource, so we do not post at all.
* ``POST {iss}/{type}`` with ``If-None-Exist: identifier=system|value`` (R4 http.html 3.1.0.8.1
  "Conditional create"): no match -> the server creates (201 Created, ``Location``); one match
  -> it creates nothing and answers 200 OK (we take the existing id); several matches -> 412
  Precondition Failed. 400/422 carry an OperationOutcome (R4 operationoutcome.html) whose
  ``diagnostics``/``details.text`` we keep as the reason.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx

from capture_api.config import EhrRegistration
from capture_api.notify.backend_auth import BackendTokens, NotifyUnavailable

FHIR_JSON = "application/fhir+json"
_LOCATION_ID = re.compile(
    r"(?:^|/)(?P<type>[A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?/?$"
)


class Outcome(StrEnum):
    """What a conditional create came to."""

    SENT = "sent"  # 201 created or 200 already there
    UNAUTHORIZED = "unauthorized"  # 401: get a new token
    PERMANENT = "permanent"  # 4xx other than 401/408/429: failed with the reason
    TRANSIENT = "transient"  # 5xx, 408, 429, network: retry with backoff


@dataclass(frozen=True)
class WriteResult:
    outcome: Outcome
    resource_id: str | None = None
    reason: str | None = None
    status: int | None = None


@dataclass(frozen=True)
class Capabilities:
    """Per resource type: (create, conditionalCreate) from the CapabilityStatement."""

    writable: dict[str, tuple[bool, bool]]

    def problem(self, resource_type: str) -> str | None:
        """Why we must not post ``resource_type``; None when create + conditionalCreate."""
        create, conditional = self.writable.get(resource_type, (False, False))
        if not create:
            return (
                f"the EHR's CapabilityStatement does not support create of {resource_type}: "
                "remove it from the registration's notify list or ask the EHR team"
            )
        if not conditional:
            return (
                f"the EHR's CapabilityStatement does not support conditional create of "
                f"{resource_type} (If-None-Exist), so a retry could duplicate it: not sent"
            )
        return None


class FhirWriter:
    """One EHR's FHIR endpoints, over a shared ``httpx.Client``."""

    def __init__(self, http: httpx.Client) -> None:
        self.http = http

    def capabilities(self, iss: str) -> Capabilities:
        """Read the CapabilityStatement (public: no token, as FHIR and SMART expect)."""
        url = f"{iss.rstrip('/')}/metadata"
        try:
            response = self.http.get(url, headers={"Accept": FHIR_JSON})
        except httpx.HTTPError as exc:
            raise NotifyUnavailable(
                f"the EHR's CapabilityStatement could not be read ({type(exc).__name__})"
            ) from exc
        if response.status_code != 200:
            raise NotifyUnavailable(f"the EHR's /metadata answered HTTP {response.status_code}")
        try:
            document = response.json()
        except ValueError as exc:
            raise NotifyUnavailable("the EHR's CapabilityStatement is not JSON") from exc
        return Capabilities(_writable(document))

    def conditional_create(
        self, iss: str, resource: dict[str, Any], if_none_exist: str, token: str
    ) -> WriteResult:
        """``POST {iss}/{type}`` with ``If-None-Exist`` (R4 http.html 3.1.0.8.1)."""
        resource_type = str(resource["resourceType"])
        url = f"{iss.rstrip('/')}/{resource_type}"
        headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": FHIR_JSON,
            "Accept": FHIR_JSON,
            "If-None-Exist": if_none_exist,
            "Prefer": "return=representation",
        }
        try:
            response = self.http.post(url, json=resource, headers=headers)
        except httpx.HTTPError as exc:
            return WriteResult(
                Outcome.TRANSIENT, reason=f"the EHR could not be reached ({type(exc).__name__})"
            )
        status = response.status_code
        if status in (200, 201):
            return WriteResult(Outcome.SENT, resource_id=_resource_id(response), status=status)
        if status == 401:
            return WriteResult(Outcome.UNAUTHORIZED, reason="the EHR refused the token", status=401)
        if status == 412:
            return WriteResult(
                Outcome.PERMANENT,
                reason=(
                    f"the EHR already has several {resource_type} resources with this photo's "
                    f"identifier (412 Precondition Failed): resolve the duplicates in the EHR"
                ),
                status=status,
            )
        if status in (408, 429) or status >= 500:
            detail = _diagnostics(response)
            return WriteResult(
                Outcome.TRANSIENT,
                reason=f"the EHR answered HTTP {status}" + (f": {detail}" if detail else ""),
                status=status,
            )
        detail = _diagnostics(response) or response.reason_phrase
        return WriteResult(
            Outcome.PERMANENT,
            reason=f"the EHR refused the {resource_type} (HTTP {status}): {detail}",
            status=status,
        )


def update(http: httpx.Client, iss: str, resource: dict[str, Any], token: str) -> WriteResult:
    """``PUT {iss}/{type}/{id}`` (R4 http.html#update): the whole resource, replaced.

    Used to mark a resource capture created ``entered-in-error`` (issue 18); the outcomes are
    those of ``conditional_create`` (200/201 sent; 401; 5xx/408/429 transient; other 4xx
    permanent with the OperationOutcome's words).
    """
    resource_type, rid = str(resource["resourceType"]), str(resource["id"])
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": FHIR_JSON,
        "Accept": FHIR_JSON,
    }
    try:
        response = http.put(
            f"{iss.rstrip('/')}/{resource_type}/{rid}", json=resource, headers=headers
        )
    except httpx.HTTPError as exc:
        return WriteResult(
            Outcome.TRANSIENT, reason=f"the EHR could not be reached ({type(exc).__name__})"
        )
    status = response.status_code
    if status in (200, 201):
        return WriteResult(Outcome.SENT, resource_id=rid, status=status)
    if status == 401:
        return WriteResult(Outcome.UNAUTHORIZED, reason="the EHR refused the token", status=401)
    detail = _diagnostics(response) or response.reason_phrase
    if status in (408, 429) or status >= 500:
        return WriteResult(
            Outcome.TRANSIENT, reason=f"the EHR answered HTTP {status}: {detail}", status=status
        )
    return WriteResult(
        Outcome.PERMANENT,
        reason=f"the EHR refused the update of {resource_type} (HTTP {status}): {detail}",
        status=status,
    )


def _writable(document: object) -> dict[str, tuple[bool, bool]]:
    out: dict[str, tuple[bool, bool]] = {}
    if not isinstance(document, dict):
        return out
    for rest in document.get("rest") or []:
        if not isinstance(rest, dict) or rest.get("mode") != "server":
            continue
        for entry in rest.get("resource") or []:
            if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
                continue
            interactions = {
                i.get("code") for i in entry.get("interaction") or [] if isinstance(i, dict)
            }
            out[entry["type"]] = ("create" in interactions, entry.get("conditionalCreate") is True)
    return out


def _resource_id(response: httpx.Response) -> str | None:
    """The id from the body, else from ``Location`` (``[base]/[type]/[id]/_history/[vid]``)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("id"), str):
        return str(body["id"])
    match = _LOCATION_ID.search(response.headers.get("location", ""))
    return match.group("id") if match else None


def _diagnostics(response: httpx.Response) -> str | None:
    """The OperationOutcome's issues as one line (diagnostics, else details.text)."""
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict) or body.get("resourceType") != "OperationOutcome":
        return None
    texts = []
    for issue in body.get("issue") or []:
        if not isinstance(issue, dict):
            continue
        text = issue.get("diagnostics") or (issue.get("details") or {}).get("text")
        if isinstance(text, str) and text:
            texts.append(text)
    return "; ".join(texts)[:1000] or None


def write_with_token(
    tokens: BackendTokens,
    registration: EhrRegistration,
    write: Callable[[str], WriteResult],
) -> WriteResult:
    """``write(token)`` with the EHR's backend-services token; a 401 earns one fresh token.

    The one place both chart writers (creating Media/DocumentReference/Observation, and
    setting them entered-in-error) get their token. Raises the token endpoint's
    ``NotifyAuthError`` (the caller fails the row) or ``NotifyUnavailable`` (it retries).
    """
    token = tokens.get(registration)
    result = write(token)
    if result.outcome is Outcome.UNAUTHORIZED:
        tokens.invalidate(registration, token)
        result = write(tokens.get(registration))
    return result
