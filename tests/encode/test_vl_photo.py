"""Where each attribute's value comes from: context, EXIF, the JPEG stream, our policy."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import numpy as np
import pillow_heif
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.uid import UID

from capture_api.capture.anatomy import Laterality, resolve
from capture_api.capture.model import CaptureContext
from capture_api.capture.patient import Encounter, Issuer, Patient, PersonName, Sex
from capture_api.capture.sensitivity import Sensitivity
from capture_api.encode.pipeline import EncoderOptions, WrappedPhoto, wrap_photo
from capture_api.encode.vl_photo import SENSITIVITY_CREATOR, SENSITIVITY_GROUP
from capture_api.exceptions import InvalidMetadata
from tests.conftest import SAMPLES, dciodvfy_errors, phone_jpeg, pydicom_rgb

NOKIA = SAMPLES / "mobile" / "HMD_Nokia_8.3_5G.jpg"  # EXIF with OffsetTimeOriginal +03:00
IPHONE = SAMPLES / "hdr" / "iphone_hdr_YES.jpg"  # EXIF with SubSecTimeOriginal
CANON = SAMPLES / "camera" / "Canon_40D.jpg"  # 4:4:4 with an ICC profile
HEIC = SAMPLES / "heic" / "IMG_5195.HEIC"
SMALL = phone_jpeg(64, 48)


def _ctx(capture_id: str = "c-1", **kwargs: object) -> CaptureContext:
    fields: dict[str, object] = {"capture_id": capture_id, "patient": Patient(patient_id="MRN-1")}
    fields.update(kwargs)
    return CaptureContext(**fields)  # type: ignore[arg-type]


def _roundtrip(wrapped: WrappedPhoto) -> Dataset:
    return pydicom.dcmread(io.BytesIO(wrapped.to_bytes()))


# --- UIDs ------------------------------------------------------------------------------------


def test_the_same_capture_id_always_gives_the_same_instance_uid() -> None:
    first = wrap_photo(SMALL, _ctx("capture-42"))
    again = wrap_photo(SMALL, _ctx("capture-42"))
    other = wrap_photo(SMALL, _ctx("capture-43"))
    assert first.sop_instance_uid == again.sop_instance_uid
    assert first.study_instance_uid == again.study_instance_uid
    assert other.sop_instance_uid != first.sop_instance_uid
    assert first.sop_instance_uid.startswith("2.25.")
    assert UID(first.sop_instance_uid).is_valid


def test_uids_use_the_configured_root() -> None:
    wrapped = wrap_photo(SMALL, _ctx(), EncoderOptions(uid_root="1.2.826.0.1.3680043.10.1234"))
    for uid in (wrapped.sop_instance_uid, wrapped.study_instance_uid, wrapped.series_instance_uid):
        assert uid.startswith("1.2.826.0.1.3680043.10.1234.")
        assert len(uid) <= 64 and UID(uid).is_valid


def test_photos_of_one_site_and_side_share_a_series() -> None:
    site, side = resolve("left forearm")
    study = "1.2.3.4.5"
    a = wrap_photo(SMALL, _ctx("a", study_uid=study, body_site=site, laterality=side))
    b = wrap_photo(SMALL, _ctx("b", study_uid=study, body_site=site, laterality=side))
    right = wrap_photo(
        SMALL, _ctx("c", study_uid=study, body_site=site, laterality=Laterality.RIGHT)
    )
    assert a.series_instance_uid == b.series_instance_uid != right.series_instance_uid
    assert {a.study_instance_uid, right.study_instance_uid} == {study}


# --- EXIF -> DICOM ---------------------------------------------------------------------------


def test_exif_time_with_offset_sets_acquisition_datetime_and_timezone() -> None:
    ds = _roundtrip(wrap_photo(NOKIA.read_bytes(), _ctx()))
    assert ds.AcquisitionDateTime == "20220814141231.000000+0300"
    assert ds.TimezoneOffsetFromUTC == "+0300"
    assert (ds.ContentDate, ds.ContentTime) == ("20220814", "141231")
    assert ds.Manufacturer == "HMD Global"
    assert ds.ManufacturerModelName == "Nokia 8.3 5G"
    assert list(ds.SoftwareVersions) == ["00WW_3_380_SP02", "capture-api 0.1.0"]
    assert float(ds.FNumber) == pytest.approx(2.2)
    assert float(ds.ExposureTimeInSeconds) == pytest.approx(0.000541)
    assert ds.PhotographicSensitivity == 100


def test_exif_subseconds_reach_content_time() -> None:
    ds = _roundtrip(wrap_photo(IPHONE.read_bytes(), _ctx()))
    assert ds.AcquisitionDateTime.startswith("20150410201223.550000")
    assert ds.ContentTime == "201223.550000"
    assert ds.Manufacturer == "Apple" and ds.ManufacturerModelName == "iPhone 6"


def test_without_exif_time_the_capture_time_is_used() -> None:
    taken = dt.datetime(2026, 3, 4, 5, 6, 7, tzinfo=dt.timezone(dt.timedelta(hours=-4)))
    no_exif = SAMPLES / "invalid" / "image01137.jpg"
    ds = _roundtrip(wrap_photo(no_exif.read_bytes(), _ctx(captured_at=taken)))
    assert ds.AcquisitionDateTime == "20260304050607.000000-0400"
    assert ds.TimezoneOffsetFromUTC == "-0400"


def test_icc_profile_moves_from_app2_to_the_attribute() -> None:
    data = CANON.read_bytes()
    ds = _roundtrip(wrap_photo(data, _ctx()))
    assert ds.ICCProfile == Image.open(CANON).info["icc_profile"]
    assert b"ICC_PROFILE" not in ds.PixelData


# --- pixel description -------------------------------------------------------------------------


@pytest.mark.parametrize("subsampling", [0, 1, 2], ids=["4:4:4", "4:2:2", "4:2:0"])
def test_colour_jpeg_is_ybr_full_422_whatever_the_subsampling(subsampling: int) -> None:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 30, 90)).save(out, "JPEG", subsampling=subsampling)
    ds = _roundtrip(wrap_photo(out.getvalue(), _ctx()))
    assert ds.PhotometricInterpretation == "YBR_FULL_422"
    assert (ds.SamplesPerPixel, ds.PlanarConfiguration, ds.BitsStored) == (3, 0, 8)
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.50"


def test_grayscale_jpeg_is_monochrome2(tmp_path: Path) -> None:
    out = io.BytesIO()
    Image.new("L", (64, 48), 77).save(out, "JPEG")
    wrapped = wrap_photo(out.getvalue(), _ctx())
    wrapped.save(tmp_path / "gray.dcm")
    assert wrapped.dataset.PhotometricInterpretation == "MONOCHROME2"
    assert wrapped.dataset.SamplesPerPixel == 1
    assert dciodvfy_errors(tmp_path / "gray.dcm") == []


def test_extended_sof1_stream_uses_the_extended_transfer_syntax(tmp_path: Path) -> None:
    sof = SMALL.index(b"\xff\xc0")
    extended = SMALL[:sof] + b"\xff\xc1" + SMALL[sof + 2 :]
    wrapped = wrap_photo(extended, _ctx())
    wrapped.save(tmp_path / "ext.dcm")
    assert wrapped.dataset.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.51"
    assert dciodvfy_errors(tmp_path / "ext.dcm") == []


def test_lossy_history_of_an_untouched_photo() -> None:
    wrapped = wrap_photo(NOKIA.read_bytes(), _ctx())
    ds = wrapped.dataset
    assert ds.LossyImageCompression == "01"
    assert list(ds.ImageType) == ["ORIGINAL", "PRIMARY"]
    assert ds.LossyImageCompressionMethod == "ISO_10918_1"
    expected = ds.Rows * ds.Columns * 3 / len(wrapped.photo.jpeg)
    assert float(ds.LossyImageCompressionRatio) == pytest.approx(expected, rel=1e-3)
    assert "DerivationDescription" not in ds


def test_heic_is_transcoded_once_and_says_so(tmp_path: Path) -> None:
    wrapped = wrap_photo(HEIC.read_bytes(), _ctx())
    ds = wrapped.dataset
    wrapped.save(tmp_path / "heic.dcm")
    assert list(ds.ImageType) == ["DERIVED", "PRIMARY"]
    assert list(ds.LossyImageCompressionMethod) == ["ISO_23008_2", "ISO_10918_1"]
    assert "HEIC" in ds.DerivationDescription
    assert ds.Manufacturer == "Apple"
    assert len(ds.ICCProfile) > 0
    reference = np.asarray(pillow_heif.open_heif(HEIC).to_pillow().convert("RGB"), dtype=np.int16)
    decoded = pydicom_rgb(tmp_path / "heic.dcm")
    assert decoded.shape == reference.shape
    assert float(np.abs(decoded - reference).mean()) < 3.0


# --- patient, encounter, text ----------------------------------------------------------------


def test_patient_and_issuer_with_non_ascii_name() -> None:
    patient = Patient(
        patient_id="12345",
        issuer=Issuer.parse("2.16.840.1.113883.3.1234"),
        name=PersonName("Øster-Núñez", "Zoë"),
        birth_date=dt.date(1950, 2, 28),
        sex=Sex.FEMALE,
    )
    ds = _roundtrip(wrap_photo(SMALL, _ctx(patient=patient)))
    assert ds.SpecificCharacterSet == "ISO_IR 192"
    assert str(ds.PatientName) == "Øster-Núñez^Zoë"
    assert (ds.PatientID, ds.PatientBirthDate, ds.PatientSex) == ("12345", "19500228", "F")
    assert ds.IssuerOfPatientID == "2.16.840.1.113883.3.1234"
    qualifiers = ds.IssuerOfPatientIDQualifiersSequence[0]
    assert (qualifiers.UniversalEntityID, qualifiers.UniversalEntityIDType) == (
        "2.16.840.1.113883.3.1234",
        "ISO",
    )


def test_ascii_only_objects_declare_no_character_set() -> None:
    ds = _roundtrip(wrap_photo(SMALL, _ctx(patient=Patient("1", name=PersonName("Doe", "J")))))
    assert "SpecificCharacterSet" not in ds


def test_encounter_becomes_admission_id_and_study_attributes() -> None:
    encounter = Encounter(
        admission_id="V-778899",
        issuer=Issuer(local_namespace="HOSP", universal_id="urn:oid:1.2.3"),
        description="Wound clinic visit",
        started_at=dt.datetime(2026, 11, 2, 8, 30, tzinfo=dt.UTC),
        accession_number="ACC1",
        referring_physician=PersonName("House", "Greg"),
    )
    ds = _roundtrip(wrap_photo(SMALL, _ctx(encounter=encounter)))
    assert ds.AdmissionID == "V-778899"
    item = ds.IssuerOfAdmissionIDSequence[0]
    assert item.LocalNamespaceEntityID == "HOSP"
    assert (item.UniversalEntityID, item.UniversalEntityIDType) == ("urn:oid:1.2.3", "URI")
    assert ds.StudyDescription == "Wound clinic visit"
    assert ds.AccessionNumber == "ACC1"
    assert str(ds.ReferringPhysicianName) == "House^Greg"
    assert ds.StudyID == "V-778899"


def test_note_view_and_operator() -> None:
    ctx = _ctx(
        note="after debridement", view="close-up with ruler", operator=PersonName("Nurse", "N")
    )
    ds = _roundtrip(wrap_photo(SMALL, ctx))
    assert ds.ImageComments == "after debridement"
    assert ds.AcquisitionContextDescription == "close-up with ruler"
    assert str(ds.OperatorsName) == "Nurse^N"
    assert ds.AcquisitionContextSequence == []


# --- anatomy, laterality, sensitivity --------------------------------------------------------


def test_paired_site_gets_image_laterality_and_modifier() -> None:
    site, side = resolve("left forearm")
    ds = _roundtrip(wrap_photo(SMALL, _ctx(body_site=site, laterality=side)))
    region = ds.AnatomicRegionSequence[0]
    assert (region.CodeValue, region.CodingSchemeDesignator) == (site.code_value, "SCT")
    assert region.ContextUID == site.context_uid
    assert region.AnatomicRegionModifierSequence[0].CodeValue == "7771000"
    assert ds.ImageLaterality == "L"
    assert "Laterality" not in ds
    assert ds.SeriesDescription.lower().startswith("forearm, left")


def test_unpaired_site_is_laterality_u_and_unknown_site_is_empty_series_laterality() -> None:
    sacrum, _ = resolve("sacrum")
    ds = _roundtrip(wrap_photo(SMALL, _ctx(body_site=sacrum)))
    assert ds.ImageLaterality == "U"
    assert "AnatomicRegionModifierSequence" not in ds.AnatomicRegionSequence[0]
    unknown = _roundtrip(wrap_photo(SMALL, _ctx()))
    assert "ImageLaterality" not in unknown and unknown.Laterality == ""


def test_paired_site_without_side_is_refused() -> None:
    forearm, _ = resolve("left forearm")
    with pytest.raises(InvalidMetadata, match="left, right or both"):
        _ctx(body_site=forearm)


@pytest.mark.parametrize(
    ("query", "flag", "expected"),
    [
        ("face", None, "YES"),
        ("left forearm", None, "NO"),
        (None, None, "YES"),
        ("face", False, "NO"),
    ],
)
def test_recognizable_visual_features(query: str | None, flag: bool | None, expected: str) -> None:
    site, side = resolve(query) if query else (None, None)
    ctx = _ctx(body_site=site, laterality=side, recognizable_features=flag)
    assert wrap_photo(SMALL, ctx).dataset.RecognizableVisualFeatures == expected


def test_sensitivity_is_written_to_the_documented_private_block() -> None:
    sensitivity = Sensitivity.parse("very-restricted", ["SDV", "SEX"])
    ds = _roundtrip(wrap_photo(SMALL, _ctx(sensitivity=sensitivity)))
    block = ds.private_block(SENSITIVITY_GROUP, SENSITIVITY_CREATOR)
    assert block[0x10].value == "V"
    assert list(block[0x11].value) == ["SDV", "SEX"]
    assert block[0x12].value == "very-restricted"
    normal = _roundtrip(wrap_photo(SMALL, _ctx()))
    assert normal.private_block(SENSITIVITY_GROUP, SENSITIVITY_CREATOR)[0x10].value == "N"


def test_sensitivity_parse_names_the_allowed_values() -> None:
    with pytest.raises(InvalidMetadata, match="normal, restricted, very-restricted"):
        Sensitivity.parse("secret")


@pytest.mark.parametrize(
    "bad",
    [
        {"patient": "x" * 65},
        {"name": "Doe^John^A^B^C^D"},
        {"admission": "a\\b"},
    ],
)
def test_values_dicom_cannot_hold_are_refused_not_truncated(bad: dict[str, str]) -> None:
    with pytest.raises(InvalidMetadata):
        if "patient" in bad:
            Patient(patient_id=bad["patient"])
        elif "name" in bad:
            PersonName.parse(bad["name"])
        else:
            Encounter(admission_id=bad["admission"])


def test_device_label_is_the_station_name_only_when_it_fits() -> None:
    short = wrap_photo(SMALL, _ctx(device="WARD7-PHONE3")).dataset
    long = wrap_photo(SMALL, _ctx(device="Samsung Galaxy S24 Ultra of ward 7")).dataset
    assert short.StationName == "WARD7-PHONE3"
    assert "StationName" not in long


# --- Contributing Equipment: what capture did, and only that -------------------------------


def _contribution(photo: bytes) -> str:
    ds = _roundtrip(wrap_photo(photo, _ctx()))
    return str(ds.ContributingEquipmentSequence[0].ContributionDescription)


def test_an_untouched_photo_says_it_was_wrapped_without_re_encoding() -> None:
    said = _contribution(phone_jpeg(64, 48))
    assert said.startswith("wrapped the camera JPEG without re-encoding")
    assert "re-encode " not in said


def test_a_losslessly_rotated_photo_says_how_it_was_turned() -> None:
    said = _contribution(phone_jpeg(64, 48, orientation=6))
    assert "without re-encoding" in said and "losslessly in the DCT domain" in said


def test_a_re_encoded_photo_never_also_claims_it_was_not_re_encoded() -> None:
    # 100x75 is not a multiple of the 16x16 block of 4:2:0: the rotation needs a re-encode.
    said = _contribution(phone_jpeg(100, 75, orientation=6))
    assert "by one JPEG re-encode" in said
    assert "without re-encoding" not in said
    assert "removed EXIF, GPS and other metadata" in said
