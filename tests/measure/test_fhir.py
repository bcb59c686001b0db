"""The WoundSize Observation: valid R4 (fhir.resources R4B), the IG's codes and units."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fhir.resources.R4B.observation import Observation

from capture_api.capture.anatomy import resolve
from capture_api.capture.sensitivity import Sensitivity
from capture_api.measure import build_wound_size_observation, calibrate_from_marker, measure_wound
from capture_api.measure import fhir as measure_fhir
from capture_api.measure.calibration import calibrate_from_ruler
from capture_api.measure.wound import WoundMeasurement
from capture_api.notify import resources
from tests.measure.phantom import Phantom

WHEN = dt.datetime(2026, 12, 1, 10, 30, tzinfo=dt.timezone(dt.timedelta(hours=1)))


@pytest.fixture(scope="module")
def measurement(square_on: Phantom) -> WoundMeasurement:
    return measure_wound(square_on.tracing_px, calibrate_from_marker(square_on.image))


def _observation(measurement: WoundMeasurement, **kwargs: Any) -> dict[str, Any]:
    site, side = resolve("left heel")
    fields: dict[str, Any] = {
        "patient": "Patient/p-16",
        "media": "Media/photo-1",
        "effective": WHEN,
        "encounter": "Encounter/e-1",
        "body_site": site,
        "laterality": side,
        "sensitivity": Sensitivity.parse("restricted", ["SDV", "BREAST"]),
        "identifier_uid": "1.2.826.0.1.3680043.10.543.16.9",
        "report": "ImagingStudy/study-1",
    }
    fields.update(kwargs)
    return build_wound_size_observation(measurement, **fields)


def _component(resource: dict[str, Any], code: str) -> dict[str, Any]:
    match: dict[str, Any]
    (match,) = [c for c in resource["component"] if c["code"]["coding"][0]["code"] == code]
    return match


def test_it_is_a_valid_r4_observation(measurement: WoundMeasurement) -> None:
    resource = _observation(measurement)
    parsed = Observation.model_validate(resource)
    assert parsed.status == "final"
    assert resource["meta"]["profile"] == [measure_fhir.WOUND_SIZE_PROFILE]
    assert not any(key.startswith("value") for key in resource)  # WoundSize: value[x] 0..0


def test_the_panel_and_its_components(measurement: WoundMeasurement) -> None:
    resource = _observation(measurement)
    assert resource["code"]["coding"] == [
        {"system": "http://loinc.org", "code": "72287-6", "display": "Wound size panel"}
    ]
    length = _component(resource, "39126-8")["valueQuantity"]
    width = _component(resource, "39125-0")["valueQuantity"]
    area = _component(resource, "89260-4")["valueQuantity"]
    assert length == {
        "value": round(measurement.length_mm / 10, 2),
        "unit": "cm",
        "system": "http://unitsofmeasure.org",
        "code": "cm",
    }
    assert width["code"] == "cm" and width["value"] == round(measurement.width_mm / 10, 2)
    assert area["code"] == "cm2" and area["value"] == round(measurement.area_cm2, 2)
    displays = {c["code"]["coding"][0]["display"] for c in resource["component"]}
    assert displays == {"Length of Wound", "Width of Wound", "Area of wound"}


def test_references_body_site_and_security(measurement: WoundMeasurement) -> None:
    resource = _observation(measurement)
    assert resource["subject"] == {"reference": "Patient/p-16"}
    assert resource["encounter"] == {"reference": "Encounter/e-1"}
    assert resource["derivedFrom"] == [
        {"reference": "Media/photo-1"},
        {"reference": "ImagingStudy/study-1"},
    ]
    site = resource["bodySite"]
    assert site["coding"][0]["code"] == resolve("left heel")[0].code_value
    assert site["text"].endswith(", left")
    (extension,) = site["extension"]
    assert extension["url"] == resources.LATERALITY_EXTENSION == measure_fhir.LATERALITY_EXTENSION
    assert extension["valueCoding"]["code"] == "7771000"
    codes = [
        (label["system"].rsplit("/", 1)[-1], label["code"])
        for label in resource["meta"]["security"]
    ]
    assert codes == [("v3-Confidentiality", "R"), ("v3-ActCode", "SDV")]  # BREAST is ours: not sent
    assert resource["identifier"] == [
        {"system": "urn:dicom:uid", "value": "urn:oid:1.2.826.0.1.3680043.10.543.16.9"}
    ]
    assert resource["effectiveDateTime"] == "2026-12-01T10:30:00+01:00"


def test_the_method_says_how_it_was_calibrated(measurement: WoundMeasurement) -> None:
    marker = _observation(measurement)
    assert "perspective-corrected with a 30 mm printed marker" in marker["method"]["text"]
    assert "calibration=marker-homography" in marker["note"][0]["text"]
    ruler_calibration = calibrate_from_ruler((100, 100), (500, 100), 40.0, (4032, 3024))
    ruler = measure_wound(measurement.outline_px, ruler_calibration)
    resource = _observation(ruler, body_site=None, laterality=None, sensitivity=None)
    Observation.model_validate(resource)
    assert "NOT corrected for camera tilt" in resource["method"]["text"]
    assert "bodySite" not in resource and "security" not in resource["meta"]


def test_a_naive_time_is_refused(measurement: WoundMeasurement) -> None:
    with pytest.raises(ValueError, match="UTC offset"):
        _observation(measurement, effective=dt.datetime(2026, 12, 1, 10, 30))
