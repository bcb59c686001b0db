"""The TID 1500 SR: valid for dciodvfy, parsed by DCMTK and read back by highdicom."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import highdicom as hd
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from capture_api.capture.anatomy import resolve
from capture_api.capture.model import CaptureContext
from capture_api.capture.patient import Issuer, Patient, PersonName
from capture_api.capture.sensitivity import Sensitivity
from capture_api.encode import vl_photo
from capture_api.encode.pipeline import wrap_photo
from capture_api.exceptions import InvalidMetadata
from capture_api.measure import build_measurement_sr, calibrate_from_marker, measure_wound
from capture_api.measure import sr as sr_module
from capture_api.measure.wound import WoundMeasurement
from tests.conftest import dciodvfy_errors, require_tool
from tests.measure.phantom import Phantom

TRACKING_UID = "1.2.826.0.1.3680043.10.543.16.1"


@pytest.fixture(scope="module")
def photo_and_measurement(square_on: Phantom) -> tuple[Dataset, WoundMeasurement]:
    site, side = resolve("left heel")
    ctx = CaptureContext(
        capture_id="wound-photo-1",
        patient=Patient(
            patient_id="MRN-16",
            name=PersonName(family="Müller", given="Jürgen"),
            issuer=Issuer(local_namespace="HOSP"),
        ),
        body_site=site,
        laterality=side,
        sensitivity=Sensitivity.parse("restricted", ["SDV"]),
    )
    photo = wrap_photo(square_on.jpeg, ctx).dataset
    measurement = measure_wound(square_on.tracing_px, calibrate_from_marker(square_on.image))
    return photo, measurement


@pytest.fixture(scope="module")
def sr_file(
    photo_and_measurement: tuple[Dataset, WoundMeasurement],
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    photo, measurement = photo_and_measurement
    report = build_measurement_sr(
        photo,
        measurement,
        tracking_id="wound 1, left heel",
        tracking_uid=TRACKING_UID,
        observer_name="Nurse^Nora",
        now=dt.datetime(2026, 12, 1, 10, 30),
    )
    path = tmp_path_factory.mktemp("sr") / "wound-sr.dcm"
    report.save_as(path, enforce_file_format=True)
    return path


def test_dciodvfy_reports_no_errors(sr_file: Path) -> None:
    assert dciodvfy_errors(sr_file) == []


def test_dcmtk_dsrdump_parses_the_document(sr_file: Path) -> None:
    result = subprocess.run(
        [require_tool("dsrdump"), str(sr_file)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    for text in ("Imaging Measurement Report", '"Area"', "cm2", "POLYLINE", "416462003"):
        assert text in result.stdout


def test_highdicom_reads_back_the_numbers_and_the_outline(
    sr_file: Path, photo_and_measurement: tuple[Dataset, WoundMeasurement]
) -> None:
    photo, measurement = photo_and_measurement
    document = hd.sr.srread(sr_file)
    assert isinstance(document.content, hd.sr.MeasurementReport)
    (group,) = document.content.get_planar_roi_measurement_groups()
    assert group.tracking_uid == TRACKING_UID
    assert group.tracking_identifier == "wound 1, left heel"
    values = {m.name.value: (m.value, m.unit.value) for m in group.get_measurements()}
    assert values["42798000"] == pytest.approx((measurement.area_cm2, "cm2"), abs=1e-4)
    assert values["410668003"] == pytest.approx((measurement.length_mm, "mm"), abs=1e-4)
    assert values["103355008"] == pytest.approx((measurement.width_mm, "mm"), abs=1e-4)
    assert values["131191004"] == pytest.approx((measurement.perimeter_mm, "mm"), abs=1e-4)
    region = group.roi
    assert region is not None
    assert region.graphic_type == hd.sr.GraphicTypeValues.POLYLINE
    polyline = region.value
    assert np.array_equal(polyline[0], polyline[-1]), "closed: the last point repeats the first"
    assert np.allclose(polyline[:-1], measurement.outline_px, atol=1e-3)
    reference = region.ContentSequence[0].ReferencedSOPSequence[0]
    assert reference.ReferencedSOPInstanceUID == photo.SOPInstanceUID
    assert reference.ReferencedSOPClassUID == photo.SOPClassUID


def test_same_patient_and_study_own_series(
    sr_file: Path, photo_and_measurement: tuple[Dataset, WoundMeasurement]
) -> None:
    photo, _ = photo_and_measurement
    report = pydicom.dcmread(sr_file)
    for keyword in ("PatientID", "PatientName", "IssuerOfPatientID", "StudyInstanceUID"):
        assert report[keyword].value == photo[keyword].value, keyword
    assert report.SeriesInstanceUID != photo.SeriesInstanceUID
    assert report.Modality == "SR"
    assert report.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.33"
    assert report.ContentDate == "20261201"


def test_the_photos_sensitivity_block_is_copied(
    sr_file: Path, photo_and_measurement: tuple[Dataset, WoundMeasurement]
) -> None:
    photo, _ = photo_and_measurement
    report = pydicom.dcmread(sr_file)
    source = photo.private_block(vl_photo.SENSITIVITY_GROUP, vl_photo.SENSITIVITY_CREATOR)
    copied = report.private_block(vl_photo.SENSITIVITY_GROUP, vl_photo.SENSITIVITY_CREATOR)
    for offset in (
        vl_photo.CONFIDENTIALITY_ELEMENT,
        vl_photo.CATEGORY_ELEMENT,
        vl_photo.LEVEL_ELEMENT,
    ):
        assert copied[offset].value == source[offset].value
    assert copied[vl_photo.CONFIDENTIALITY_ELEMENT].value == "R"
    assert (sr_module.SENSITIVITY_GROUP, sr_module.SENSITIVITY_CREATOR) == (
        vl_photo.SENSITIVITY_GROUP,
        vl_photo.SENSITIVITY_CREATOR,
    )


def test_the_finding_site_and_calibration_travel_with_the_numbers(sr_file: Path) -> None:
    document = hd.sr.srread(sr_file)
    assert isinstance(document.content, hd.sr.MeasurementReport)
    (group,) = document.content.get_planar_roi_measurement_groups()
    assert group.finding_type is not None
    assert group.finding_type.value == "416462003"
    (site,) = group.finding_sites
    assert site.value.value == resolve("left heel")[0].code_value
    assert site.laterality is not None
    assert site.laterality.value == "7771000"
    texts = {str(e.value) for e in document.iterall() if e.keyword == "TextValue"}
    assert {"calibration=marker-homography", "perspective_corrected=yes"} <= texts


def test_inputs_are_checked(photo_and_measurement: tuple[Dataset, WoundMeasurement]) -> None:
    photo, measurement = photo_and_measurement
    with pytest.raises(InvalidMetadata, match="tracking UID"):
        build_measurement_sr(photo, measurement, tracking_id="w", tracking_uid="not a uid")
    with pytest.raises(InvalidMetadata, match="tracking id"):
        build_measurement_sr(photo, measurement, tracking_id="", tracking_uid=generate_uid())
    smaller = Dataset()
    smaller.update(photo)
    smaller.Columns = 100
    with pytest.raises(InvalidMetadata, match="archived photo"):
        build_measurement_sr(smaller, measurement, tracking_id="w", tracking_uid=generate_uid())
