"""Where the bytes of a photo to take back come from: the spool (``deliver.spooled``: on any
replica), else the archive.

With the default spool retention (0 s) the spooled DICOM object is gone once the archive
verified it, so the archive is asked (``Archive.retrieve``, WADO-RS). When neither can answer
(the archive is down and the spool purged), the KOS still needs the rejected instance's
Patient and Study attributes: ``evidence_from_records`` writes them from what capture recorded
(the context it was captured in, the capture row), the same values the encoder wrote, so a
rejection made while the archive is away waits in the outbox like any photo.
"""

from __future__ import annotations

import io

from pydicom import Dataset, dcmread
from pydicom.encaps import generate_frames
from pydicom.uid import UID

from capture_api.capture.schemas import EncounterIn, PatientIn
from capture_api.deliver import Archive
from capture_api.deliver.spooled import part10
from capture_api.exceptions import ArchiveUnavailable
from capture_api.store.records import CaptureRecord, ContextRecord
from capture_api.store.spool import Spool

VL_PHOTOGRAPHIC = UID("1.2.840.10008.5.1.4.1.1.77.1.4")
DERMOSCOPIC = UID("1.2.840.10008.5.1.4.1.1.77.1.7")


def header(
    capture: CaptureRecord, context: ContextRecord, spool: Spool, archive: Archive
) -> Dataset:
    """The photo's attributes for the KOS evidence: stored ones, else those recorded here."""
    try:
        data = part10(capture, spool, archive)
    except ArchiveUnavailable:
        return evidence_from_records(capture, context)
    return dcmread(io.BytesIO(data), stop_before_pixels=True)


def jpeg_of(dataset_bytes: bytes) -> tuple[bytes, Dataset]:
    """The JPEG bitstream of a photo's one frame, unchanged, and the dataset it came from."""
    dataset = dcmread(io.BytesIO(dataset_bytes))
    frame = next(generate_frames(dataset.PixelData, number_of_frames=1))
    return frame, dataset


def evidence_from_records(capture: CaptureRecord, context: ContextRecord) -> Dataset:
    """Patient, Study and SOP attributes of a capture as the encoder wrote them (vl_photo)."""
    patient = PatientIn.model_validate_json(context.patient_json).to_patient()
    encounter = (
        EncounterIn.model_validate_json(context.encounter_json).to_encounter()
        if context.encounter_json
        else None
    )
    ds = Dataset()
    ds.PatientName = patient.name.dicom() if patient.name else ""
    ds.PatientID = patient.patient_id
    if patient.issuer:
        ds.IssuerOfPatientID = patient.issuer.local_namespace or patient.issuer.universal_id or ""
    ds.PatientBirthDate = patient.birth_date.strftime("%Y%m%d") if patient.birth_date else ""
    ds.PatientSex = patient.sex.value if patient.sex else ""
    moment = capture.captured_at or capture.created_at
    ds.StudyInstanceUID = capture.study_uid
    ds.StudyDate = moment.strftime("%Y%m%d")
    ds.StudyTime = moment.strftime("%H%M%S")
    ds.StudyID = (capture.study_uid or "")[-16:].strip(".")
    ds.AccessionNumber = (encounter.accession_number if encounter else None) or ""
    ds.ReferringPhysicianName = ""
    ds.SeriesInstanceUID = capture.series_uid
    ds.SOPClassUID = DERMOSCOPIC if capture.dermoscopy_json else VL_PHOTOGRAPHIC
    ds.SOPInstanceUID = capture.sop_instance_uid
    return ds
