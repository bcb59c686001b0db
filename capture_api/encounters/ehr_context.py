"""Tie every capture to the patient the EHR opened: contexts from a launch or a scan.

This is the product's main safety rule ("hand entered demographics don't work", HIMSS-SIIM):
demographics come from the EHR's FHIR API, never from typing; a session launched for one
patient can never capture, scan or claim another patient (403, audited). Patients are
compared by MRN and issuer as DICOM will carry them, not by display name (two "John Smith").
"""

from __future__ import annotations

from fhir.resources.R4B.encounter import Encounter
from fhir.resources.R4B.patient import Patient

from capture_api.audit.trail import Outcome, record
from capture_api.capture import Issuer, same_authority
from capture_api.capture.schemas import ContextIn, PatientIn
from capture_api.config import Settings
from capture_api.context.fhir import FhirClient, FhirNotFound
from capture_api.context.fhir_mapping import encounter_in, patient_in
from capture_api.context.sessions import SessionStore
from capture_api.context.smart import find_registration
from capture_api.exceptions import InvalidMetadata, PatientMismatch
from capture_api.intake.service import CaptureService
from capture_api.oauth import Discovery
from capture_api.store import contexts
from capture_api.store.db import Database
from capture_api.store.records import ContextRecord, UserSession

WRONG_PATIENT = (
    "this is not the patient opened from the EHR ({opened}); photos can only be taken for the "
    "patient whose chart launched capture: open the right chart and launch capture again"
)


class EhrContexts:
    """Create and check capture contexts for signed-in sessions."""

    def __init__(
        self,
        settings: Settings,
        engine: Database,
        service: CaptureService,
        discovery: Discovery | None = None,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.service = service
        self.sessions = SessionStore(engine, settings, discovery=discovery)

    # --- launch ------------------------------------------------------------------------------

    def on_launch(self, row: UserSession) -> str | None:
        """The context of an EHR launch (patient + encounter read from FHIR), or None."""
        if row.patient_fhir_id is None:
            return None
        # The token was issued a moment ago by this very launch: use it as it is.
        with FhirClient(row.iss, row.access_token) as fhir:
            patient = fhir.read_patient(row.patient_fhir_id)
            encounter = (
                fhir.read_encounter(row.encounter_fhir_id) if row.encounter_fhir_id else None
            )
        return self._open(row, patient, self._map(row, patient), encounter, "launch").id

    # --- wristband / QR / manual ID ------------------------------------------------------------

    def scan(self, row: UserSession, identifier: str) -> ContextRecord:
        """Look the patient up by identifier in the EHR and open a context for them."""
        system, _, value = identifier.rpartition("|")
        system = system or find_registration(self.settings, row.iss).mrn_system or ""
        if not value.strip():
            raise InvalidMetadata("the scanned code holds no patient identifier")
        with FhirClient(row.iss, self.sessions.access_token(row)) as fhir:
            matches = fhir.search_patients(system or None, value.strip())
            if len(matches) != 1:
                self._refuse_scan(row, len(matches))
            patient = matches[0]
            mapped = self._map(row, patient)
            self.check_same_patient(row, mapped, action="scan")
            encounter = (
                fhir.read_encounter(row.encounter_fhir_id)
                if row.encounter_fhir_id and row.patient_fhir_id == patient.id
                else None
            )
        return self._open(row, patient, mapped, encounter, "scan")

    def _refuse_scan(self, row: UserSession, found: int) -> None:
        self._audit(row, "scan", Outcome.REFUSED, detail=f"{found} patients match")
        if found == 0:
            raise FhirNotFound("no patient with this identifier in the EHR: check the wristband")
        raise InvalidMetadata(
            "more than one patient in the EHR has this identifier: use the patient's MRN"
        )

    # --- the rule ------------------------------------------------------------------------------

    def check_same_patient(self, row: UserSession, candidate: PatientIn, *, action: str) -> None:
        """Refuse (403, audited) a patient other than the one this session was launched for."""
        opened = self._launched_patient(row)
        if opened is None or _same(opened, candidate):
            return
        self._audit(
            row,
            action,
            Outcome.REFUSED,
            patient=candidate.id,
            detail=f"session opened for MRN {opened.id}",
        )
        raise PatientMismatch(WRONG_PATIENT.format(opened=_who(opened)))

    def check_context(self, row: UserSession, context: ContextRecord, *, action: str) -> None:
        """A session may only use contexts it opened itself."""
        if context.session_id == row.id:
            return
        patient = PatientIn.model_validate_json(context.patient_json)
        self._audit(
            row, action, Outcome.REFUSED, patient=patient.id, detail="context of another session"
        )
        opened = self._launched_patient(row)
        raise PatientMismatch(WRONG_PATIENT.format(opened=_who(opened) if opened else "none"))

    def adopt(self, row: UserSession, context_id: str) -> None:
        """Make a context (e.g. a claimed worklist item) this session's own."""
        self._link(row, context_id)
        if row.context_id is None or row.patient_fhir_id is None:
            self.sessions.set_context_id(row, context_id)

    # --- helpers -------------------------------------------------------------------------------

    def _map(self, row: UserSession, patient: Patient) -> PatientIn:
        registration = find_registration(self.settings, row.iss)
        return patient_in(
            patient, mrn_system=registration.mrn_system, issuer=registration.issuer_of_patient_id
        )

    def _open(
        self,
        row: UserSession,
        patient: Patient,
        mapped: PatientIn,
        encounter: Encounter | None,
        action: str,
    ) -> ContextRecord:
        """Create the session's context for this patient (and encounter), audited."""
        visit = encounter_in(encounter, patient_id=patient.id) if encounter else None
        source = "smart" if action == "launch" else action
        context = self.service.create_context(ContextIn(patient=mapped, encounter=visit), source)
        stored = self._link(
            row,
            context.id,
            fhir_patient=patient.id,
            fhir_encounter=encounter.id if encounter else None,
        )
        self.sessions.set_context_id(row, context.id)
        self._audit(row, action, Outcome.SUCCESS, patient=mapped.id)
        return stored

    def _link(
        self,
        row: UserSession,
        context_id: str,
        *,
        fhir_patient: str | None = None,
        fhir_encounter: str | None = None,
    ) -> ContextRecord:
        return contexts.link_session(
            self.engine,
            context_id,
            session_id=row.id,
            iss=row.iss,
            fhir_patient=fhir_patient,
            fhir_encounter=fhir_encounter,
        )

    def _audit(
        self,
        row: UserSession,
        action: str,
        outcome: Outcome,
        *,
        patient: str | None = None,
        detail: str | None = None,
    ) -> None:
        record(
            self.engine,
            action,
            outcome,
            actor=row.fhir_user,
            session_id=row.id,
            patient=patient,
            detail=detail,
        )

    def _launched_patient(self, row: UserSession) -> PatientIn | None:
        if row.patient_fhir_id is None or row.context_id is None:
            return None
        context = contexts.get(self.engine, row.context_id)
        return PatientIn.model_validate_json(context.patient_json) if context else None


def _same(a: PatientIn, b: PatientIn) -> bool:
    """The same MRN from the same assigning authority, by meaning (``same_authority``).

    "EPI" + OID and the OID alone, or the OID in (0010,0021) with no Qualifiers Sequence,
    are one authority; two different OIDs are two, whatever their local names say.
    """

    def issuer(p: PatientIn) -> Issuer | None:
        return p.issuer.to_issuer() if p.issuer else None

    return a.id == b.id and same_authority(issuer(a), issuer(b))


def _who(patient: PatientIn) -> str:
    name = f"{patient.name.family}, {patient.name.given}" if patient.name else "unnamed"
    return f"{name}, MRN {patient.id}"
