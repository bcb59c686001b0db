"""A minimal FHIR R4 client for the patient/encounter context of a SMART launch.

Capture reads three things from the EHR, with the access token of the launch (SMART App Launch
2, STANDARDS.md section 4): the launched Patient, the launched Encounter, and, for wristband or
chart-number look-ups, Patients by identifier (R4 search.html#token). Nothing else: no paging,
no ``_include``, no following of references, so the client cannot wander into records the
launch did not name.

Answers are parsed with the ``fhir.resources`` R4B models (R4B's Patient/Encounter/Bundle are
wire-compatible with R4 4.0.1 for the elements we read). A response that does not validate is
an error naming the element that was wrong, never a partly read patient.

Errors map HTTP status to what the caller does next (R4 http.html#summary, RFC 6750 3.1):

* 401 ``FhirUnauthorized``: the token is expired or invalid; refresh it or re-launch.
* 403 ``FhirForbidden``: the EHR does not allow capture to read this record (scope/compartment).
* 404/410 ``FhirNotFound``: no such record (or deleted).
* 5xx, 429, timeouts and connection failures ``FhirUnavailable``: transient; try again.
* anything else ``FhirError``.

The access token is never put in a message or a log line.
"""

from __future__ import annotations

import json
import re
from types import TracebackType
from typing import Any, TypeVar

import httpx
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.resource import Resource
from pydantic import ValidationError

from capture_api.exceptions import CaptureError

FHIR_JSON = "application/fhir+json"
#: R4 datatypes.html#id: the logical id's lexical form. Checked so an id can never add a path.
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
_R = TypeVar("_R", bound=Resource)


class FhirError(CaptureError):
    """The EHR's FHIR server did not give us the record; the message says what it answered."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class FhirUnauthorized(FhirError):
    """401: the access token is expired or invalid; refresh it or ask the user to re-launch."""


class FhirForbidden(FhirError):
    """403: the EHR does not allow capture to read this patient (scopes or patient compartment)."""


class FhirNotFound(FhirError):
    """404/410: the EHR has no such record (wrong id, or deleted)."""


class FhirUnavailable(FhirError):
    """The EHR could not answer now (5xx, 429, timeout, connection failure): try again later."""


class FhirClient:
    """Reads Patient and Encounter resources from one FHIR base with one bearer token.

    ``client`` lets tests or the app share an ``httpx.Client`` (connection pool, proxies); a
    client passed in is not closed by ``close()``.
    """

    def __init__(
        self,
        base_url: str,
        access_token: str,
        *,
        client: httpx.Client | None = None,
        timeout: float = 15,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Accept": FHIR_JSON}
        if access_token.strip():  # none: the EHR answers 401 and the caller re-launches
            self._headers["Authorization"] = f"Bearer {access_token.strip()}"
        self._owns_client = client is None
        self._client = client or httpx.Client(timeout=timeout)
        self._timeout = timeout

    # --- public API --------------------------------------------------------------------------

    def read_patient(self, patient_id: str) -> Patient:
        """``GET [base]/Patient/[id]`` (R4 http.html#read)."""
        return self._read(Patient, patient_id)

    def read_encounter(self, encounter_id: str) -> Encounter:
        """``GET [base]/Encounter/[id]`` (R4 http.html#read)."""
        return self._read(Encounter, encounter_id)

    def search_patients(self, system: str | None, value: str) -> list[Patient]:
        """``GET [base]/Patient?identifier=[system|]value``: patients carrying that identifier.

        Only ``search.mode = match`` entries are returned, and only those that really carry
        the identifier: a server that ignores an unsupported parameter answers with *all*
        patients (R4 search.html#errors allows it), which must never look like a match.
        A result spread over several pages is refused rather than read partially, since the
        caller needs to know whether the identifier is unique.
        """
        if not value:
            raise FhirError("an identifier value is required to search for a patient")
        token = _escape(value) if system is None else f"{_escape(system)}|{_escape(value)}"
        body = self._get("Patient", {"identifier": token}, "the Patient search")
        bundle = _validate(Bundle, body, "the Patient search result")
        if bundle.type != "searchset":
            raise FhirError(f"the Patient search answered a {bundle.type} Bundle, not a searchset")
        found: list[Patient] = []
        for index, entry in enumerate(bundle.entry or []):
            mode = entry.search.mode if entry.search else None
            if mode not in (None, "match") or entry.resource is None:
                continue  # included resources and OperationOutcome warnings are not matches
            raw = body["entry"][index]["resource"]
            patient = _validate(Patient, raw, f"Patient search entry {index + 1}")
            if _carries(patient, system, value):
                found.append(patient)
        if any(link.relation == "next" for link in bundle.link or []) or (
            bundle.total is not None and bundle.total > len(bundle.entry or [])
        ):
            raise FhirError("the Patient search has more results than one page; refine it")
        return found

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> FhirClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- HTTP --------------------------------------------------------------------------------

    def _read(self, model: type[_R], resource_id: str) -> _R:
        kind = model.get_resource_type()
        if not _FHIR_ID.match(resource_id):
            raise FhirError(f"{resource_id!r} is not a FHIR {kind} id")
        body = self._get(f"{kind}/{resource_id}", None, f"{kind}/{resource_id}")
        resource = _validate(model, body, f"{kind}/{resource_id}")
        if resource.id != resource_id:  # R4 http.html#read: the answer is the resource asked for
            raise FhirError(
                f"the EHR answered {kind}/{resource.id} when asked for {kind}/{resource_id}"
            )
        return resource

    def _get(self, path: str, params: dict[str, str] | None, what: str) -> dict[str, Any]:
        url = f"{self.base_url}/{path}"
        try:
            response = self._client.get(
                url, params=params, headers=self._headers, timeout=self._timeout
            )
        except httpx.TimeoutException as exc:
            raise FhirUnavailable(f"the EHR did not answer {what} in time") from exc
        except httpx.TransportError as exc:
            raise FhirUnavailable(f"could not reach the EHR for {what}: {exc}") from exc
        if response.status_code != 200:
            raise _status_error(response, what)
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise FhirError(f"the EHR's answer for {what} is not JSON") from exc
        if not isinstance(body, dict):
            raise FhirError(f"the EHR's answer for {what} is not a FHIR resource")
        return body


def _status_error(response: httpx.Response, what: str) -> FhirError:
    status = response.status_code
    detail = _outcome_text(response)
    suffix = f" ({detail})" if detail else ""
    if status == 401:
        return FhirUnauthorized(
            f"the EHR refused the access token for {what}: it is expired or invalid; "
            f"sign in again from the EHR{suffix}",
            status=status,
        )
    if status == 403:
        return FhirForbidden(
            f"the EHR does not allow capture to read this patient ({what}){suffix}", status=status
        )
    if status in (404, 410):
        return FhirNotFound(f"the EHR has no {what}{suffix}", status=status)
    if status >= 500 or status == 429:
        return FhirUnavailable(
            f"the EHR is unavailable (HTTP {status}) for {what}{suffix}", status=status
        )
    return FhirError(f"the EHR answered HTTP {status} for {what}{suffix}", status=status)


def _outcome_text(response: httpx.Response) -> str:
    """The diagnostics/details of an OperationOutcome body, if there is one (R4 3.1.0.4)."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict) or body.get("resourceType") != "OperationOutcome":
        return ""
    texts: list[str] = []
    for issue in body.get("issue") or []:
        if not isinstance(issue, dict):
            continue
        details = issue.get("details")
        text = issue.get("diagnostics") or (
            details.get("text") if isinstance(details, dict) else ""
        )
        if isinstance(text, str) and text:
            texts.append(text)
    return "; ".join(texts)[:300]


def _validate(model: type[_R], body: dict[str, Any], what: str) -> _R:
    """Validate with the R4B model; the error names the failing element paths, not a trace."""
    kind = model.get_resource_type()
    if body.get("resourceType") != kind:
        raise FhirError(
            f"the EHR answered a {body.get('resourceType') or 'non-FHIR'} resource for {what}, "
            f"not a {kind}"
        )
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in err['loc']) or kind}: {err['msg']}"
            for err in exc.errors()[:3]
        ]
        more = f" (and {exc.error_count() - 3} more)" if exc.error_count() > 3 else ""
        raise FhirError(
            f"the EHR's {kind} for {what} is not valid FHIR: {'; '.join(problems)}{more}"
        ) from None


def _escape(text: str) -> str:
    """Escape ``\\ , | $`` in a search value (R4 search.html#escaping); httpx URL-encodes."""
    return re.sub(r"([\\,|$])", r"\\\1", text)


def _carries(patient: Patient, system: str | None, value: str) -> bool:
    return any(
        ident.value == value and (system is None or ident.system == system)
        for ident in patient.identifier or []
    )


__all__ = [
    "FhirClient",
    "FhirError",
    "FhirForbidden",
    "FhirNotFound",
    "FhirUnauthorized",
    "FhirUnavailable",
]
