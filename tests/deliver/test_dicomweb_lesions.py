"""Lesions from a real DICOMweb archive (Orthanc): the priors search finds clinical (XC) and
dermoscopic (DMS) photos, and each photo's lesion (Tracking ID/UID and the pin's private
block) reads back from the series' WADO-RS metadata, as a fresh capture install would."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from capture_api.capture.anatomy import Laterality, get_site
from capture_api.capture.lesions import Dermoscopy, LesionMark, LesionPin
from capture_api.capture.model import CaptureContext
from capture_api.capture.patient import Patient
from capture_api.deliver import DicomWebArchive
from capture_api.deliver.archive import InstanceRef
from capture_api.encode.pipeline import wrap_photo
from tests.conftest import phone_jpeg
from tests.deliver.test_dicomweb import orthanc
from tests.orthanc import OrthancServer

__all__ = ["orthanc"]  # the module's Orthanc

LESION = LesionMark("2.25.424242", "L7", "scaly patch", LesionPin("foot-plantar", 0.3, 0.8))


@pytest.fixture
def archive(orthanc: OrthancServer) -> Iterator[DicomWebArchive]:
    with DicomWebArchive(orthanc.base_url, timeout=10) as client:
        yield client


def _store(archive: DicomWebArchive, capture_id: str, **extra: object) -> str:
    ctx = CaptureContext(
        capture_id=capture_id,
        patient=Patient("MRN-DW-LES"),
        study_uid="1.2.826.0.1.3680043.10.77",
        body_site=get_site("84607009"),  # Skin of heel
        laterality=Laterality.LEFT,
        **extra,  # type: ignore[arg-type]
    )
    wrapped = wrap_photo(phone_jpeg(320, 240, seed=len(capture_id)), ctx)
    ref = InstanceRef(
        wrapped.study_instance_uid, wrapped.series_instance_uid, wrapped.sop_instance_uid
    )
    archive.store(wrapped.to_bytes(), ref)
    return wrapped.sop_instance_uid


def test_priors_and_lesions_of_clinical_and_dermoscopic_photos(archive: DicomWebArchive) -> None:
    clinical = _store(archive, "dw-les-xc", lesion=LESION)
    scope = _store(archive, "dw-les-dms", lesion=LESION, dermoscopy=Dermoscopy())
    plain = _store(archive, "dw-les-none")
    priors = archive.find_priors("MRN-DW-LES")
    modality = {p.ref.sop_instance_uid: p.modality for p in priors}
    assert modality == {clinical: "XC", scope: "DMS", plain: "XC"}
    marks = archive.lesions([p.ref for p in priors])
    assert marks == {clinical: LESION, scope: LESION}  # the plain photo names no lesion
