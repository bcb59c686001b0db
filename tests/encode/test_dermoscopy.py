"""A photo taken through a dermatoscope is a Dermoscopic Photography Image, and a photo of a
tracked lesion carries the lesion's identity and pin: checked with dciodvfy (dicom3tools,
which knows the SOP class) and DCMTK's dcmdump, not only our own reader."""

from __future__ import annotations

import io
import subprocess
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import VLPhotographicImageStorage

from capture_api.capture.anatomy import Laterality, get_site
from capture_api.capture.lesions import (
    ContactMethod,
    Dermoscopy,
    ImageReference,
    LesionMark,
    LesionPin,
    Polarization,
)
from capture_api.capture.model import CaptureContext
from capture_api.capture.patient import Patient
from capture_api.encode.dermoscopy import DERMOSCOPIC_PHOTOGRAPHY_IMAGE_STORAGE
from capture_api.encode.lesion_block import (
    LESION_CREATOR,
    LESION_GROUP,
    lesion_from_dataset,
    lesion_from_json,
)
from capture_api.encode.pipeline import WrappedPhoto, wrap_photo
from capture_api.exceptions import InvalidMetadata
from tests.conftest import SAMPLES, dciodvfy_errors, phone_jpeg, require_tool

CHEEK = get_site("36141000")  # Skin of cheek (CID 4029)
LESION = LesionMark(
    tracking_uid="2.25.123456789",
    tracking_id="L3",
    description="pigmented, irregular border",
    pin=LesionPin("head", 0.31, 0.52),
)
OVERVIEW = ImageReference(VLPhotographicImageStorage, "2.25.1", "overview")
CLOSE_UP = ImageReference(VLPhotographicImageStorage, "2.25.2", "close-up")


def _ctx(capture_id: str, **kwargs: object) -> CaptureContext:
    fields: dict[str, object] = {
        "capture_id": capture_id,
        "patient": Patient(patient_id="MRN-7"),
        "study_uid": "1.2.3.4.7",
        "body_site": CHEEK,
        "laterality": Laterality.LEFT,
        "lesion": LESION,
    }
    fields.update(kwargs)
    return CaptureContext(**fields)  # type: ignore[arg-type]


def _roundtrip(wrapped: WrappedPhoto) -> Dataset:
    return pydicom.dcmread(io.BytesIO(wrapped.to_bytes()))


def _dermoscopic(tmp_path: Path, **dermoscopy: object) -> tuple[WrappedPhoto, Path]:
    scope = Dermoscopy(**dermoscopy)  # type: ignore[arg-type]
    ctx = _ctx("derm-1", dermoscopy=scope, references=(OVERVIEW, CLOSE_UP), view="dermoscopy")
    wrapped = wrap_photo(phone_jpeg(640, 480), ctx)
    path = tmp_path / "derm.dcm"
    wrapped.save(path)
    return wrapped, path


def test_a_dermoscopic_photo_is_its_own_sop_class_and_dciodvfy_finds_no_error(
    tmp_path: Path,
) -> None:
    wrapped, path = _dermoscopic(
        tmp_path,
        polarization=Polarization.POLARIZED,
        contact=ContactMethod.CONTACT,
        immersion="ALCOHOL",
    )
    assert dciodvfy_errors(path) == []
    result = subprocess.run(
        [require_tool("dciodvfy"), str(path)], capture_output=True, text=True, check=False
    )
    assert "Dermoscopic" in result.stdout + result.stderr  # it validated that IOD, no other
    ds = _roundtrip(wrapped)
    assert (
        ds.SOPClassUID
        == DERMOSCOPIC_PHOTOGRAPHY_IMAGE_STORAGE
        == ds.file_meta.MediaStorageSOPClassUID
    )
    assert ds.Modality == "DMS"
    assert (ds.LightSourcePolarization, ds.ContactMethod, ds.ImmersionMedia) == (
        "POLARIZED",
        "CONTACT",
        "ALCOHOL",
    )
    assert ds.DeviceSerialNumber and ds.Manufacturer and ds.ManufacturerModelName
    assert (ds.TrackingID, ds.TrackingUID) == ("L3", "2.25.123456789")
    refs = [
        (r.ReferencedSOPInstanceUID, r.PurposeOfReferenceCodeSequence[0].CodeValue)
        for r in ds.ReferencedImageSequence
    ]
    assert refs == [("2.25.1", "121311"), ("2.25.2", "121313")]  # Localizer, Other partial views


def test_unknown_dermatoscope_settings_are_sent_empty_and_still_valid(tmp_path: Path) -> None:
    wrapped, path = _dermoscopic(tmp_path)
    assert dciodvfy_errors(path) == []
    ds = _roundtrip(wrapped)
    assert ds.LightSourcePolarization == "" and ds.ContactMethod == ""
    assert "ImmersionMedia" not in ds  # 2C: only for contact dermoscopy


def test_dermoscopic_images_have_their_own_series_beside_the_clinical_photos() -> None:
    clinical = wrap_photo(phone_jpeg(64, 48), _ctx("overview"))
    scope = wrap_photo(phone_jpeg(64, 48), _ctx("scope", dermoscopy=Dermoscopy()))
    assert clinical.dataset.SOPClassUID == VLPhotographicImageStorage
    assert clinical.dataset.Modality == "XC"
    assert clinical.study_instance_uid == scope.study_instance_uid
    assert clinical.series_instance_uid != scope.series_instance_uid  # one modality per series


def test_a_clinical_photo_of_a_lesion_carries_its_identity_and_pin(tmp_path: Path) -> None:
    wrapped = wrap_photo((SAMPLES / "mobile" / "jolla.jpg").read_bytes(), _ctx("overview"))
    path = tmp_path / "vl.dcm"
    wrapped.save(path)
    assert dciodvfy_errors(path) == []  # Standard Extended: Tracking ID/UID are not errors
    ds = _roundtrip(wrapped)
    assert ds.SOPClassUID == VLPhotographicImageStorage
    assert (ds.TrackingID, ds.TrackingUID) == ("L3", "2.25.123456789")
    block = ds.private_block(LESION_GROUP, LESION_CREATOR)
    assert block[0x10].value == "head" and float(block[0x11].value) == pytest.approx(0.31)
    assert lesion_from_dataset(ds) == LESION
    # DCMTK reads the same private creator and tags (an independent parser)
    dump = subprocess.run(
        [require_tool("dcmdump"), "+P", "0013,0010", str(path)], capture_output=True, text=True
    ).stdout
    assert LESION_CREATOR in dump


def test_the_lesion_reads_back_from_dicom_json_in_any_creator_slot() -> None:
    ds = Dataset()
    ds.private_block(LESION_GROUP, "SOMEONE ELSE", create=True).add_new(0x10, "LO", "x")
    ds.TrackingID, ds.TrackingUID = "L3", LESION.tracking_uid
    block = ds.private_block(LESION_GROUP, LESION_CREATOR, create=True)
    block.add_new(0x10, "LO", "head")
    block.add_new(0x11, "DS", "0.31")
    block.add_new(0x12, "DS", "0.52")
    block.add_new(0x13, "LO", LESION.description)
    assert lesion_from_json(ds.to_json_dict()) == LESION


def test_a_photo_without_a_lesion_has_no_tracking_attributes() -> None:
    ds = wrap_photo(phone_jpeg(64, 48), _ctx("plain", lesion=None)).dataset
    assert "TrackingUID" not in ds and "TrackingID" not in ds
    assert lesion_from_dataset(ds) is None


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: LesionPin("elbow", 0.5, 0.5), "map view"),
        (lambda: LesionPin("front", 1.5, 0.5), "between 0 and 1"),
        (lambda: Dermoscopy(immersion="WATER"), "only for contact"),
        (lambda: Dermoscopy(contact=ContactMethod.CONTACT, immersion="honey"), "immersion"),
        (lambda: LesionMark("2.25.1", "L1", "x" * 65), "longer than 64"),
    ],
)
def test_bad_lesion_or_dermoscopy_values_are_refused_with_a_reason(
    make: object, reason: str
) -> None:
    with pytest.raises(InvalidMetadata, match=reason):
        make()  # type: ignore[operator]
