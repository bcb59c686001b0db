"""The measured wound as a DICOM Structured Report: TID 1500 Measurement Report, via highdicom.

Content (PS3.16 TID 1500 "Measurement Report", TID 1410 "Planar ROI Measurements and
Qualitative Evaluations"):

* one Measurement Group for the wound, with the Tracking Identifier (112039, DCM) and
  Tracking Unique Identifier (112040, DCM) the caller keeps **stable for this wound across
  visits**, so archives and viewers can follow it over time;
* its Image Region (111030, DCM): the outline as a closed SCOORD ``POLYLINE`` (first point
  repeated last) in the photo's pixel coordinates, referencing the VL Photographic Image;
* finding type Wound (416462003, SCT); finding site from the photo's Anatomic Region Sequence
  and Image Laterality when it has them;
* measurements Area (42798000, SCT) in ``cm2``, Length (410668003, SCT), Width (103355008,
  SCT) and Perimeter (131191004, SCT) in ``mm`` (UCUM);
* Algorithm Identification (TID 4019) naming this code and its version, with the calibration
  quality as Algorithm Parameters (``calibration=marker-homography``, ``tilt_deg=...``,
  ``mm_per_px_at_wound=...``), so the numbers never travel without their pedigree.

The document is a Comprehensive SR (1.2.840.10008.5.1.4.1.1.88.33: SCOORD needs no 3D) in its
own series of the photo's study, for the same patient (highdicom copies the Patient and
Study modules from the photo; we add the patient attributes it does not copy). The photo's
private sensitivity block (creator ``CAPTURE SENSITIVITY 1``, confidentiality code N/R/V,
categories, level; see ``capture_api.encode.vl_photo``) is copied unchanged: a report about a
restricted photo is as restricted as the photo.
"""

from __future__ import annotations

import datetime as dt
import re

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import generate_uid

from capture_api import __version__
from capture_api.exceptions import InvalidMetadata
from capture_api.measure.wound import WoundMeasurement

__all__ = ["SENSITIVITY_CREATOR", "SENSITIVITY_GROUP", "WOUND", "build_measurement_sr"]

#: Must match capture_api.encode.vl_photo (a test holds them together); repeated here so the
#: measurement package does not import the encoder's context types.
SENSITIVITY_GROUP = 0x0011
SENSITIVITY_CREATOR = "CAPTURE SENSITIVITY 1"

WOUND = Code("416462003", "SCT", "Wound")
_ALGORITHM = "capture wound measurement"
_MANUFACTURER = "capture (open source)"
_LATERALITY = {"L": codes.SCT.Left, "R": codes.SCT.Right, "B": codes.SCT.Bilateral}
_PATIENT_EXTRAS = (
    "IssuerOfPatientID",
    "IssuerOfPatientIDQualifiersSequence",
    "OtherPatientIDsSequence",
    "TypeOfPatientID",
)
_UID_PATTERN = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))+")  # PS3.5 9.1
_TRACKING_ID_MAX = 64  # LO in a TEXT item is free text, but keep it a readable label


def build_measurement_sr(
    photo: Dataset,
    measurement: WoundMeasurement,
    *,
    tracking_id: str,
    tracking_uid: str,
    series_instance_uid: str | None = None,
    sop_instance_uid: str | None = None,
    series_number: int = 900,
    instance_number: int = 1,
    observer_name: str | None = None,
    now: dt.datetime | None = None,
) -> Dataset:
    """A TID 1500 Comprehensive SR about ``photo`` (the VL Photographic Image's dataset).

    ``tracking_id`` is a human-readable label ("wound 1, left heel") and ``tracking_uid`` a
    UID, both the same at every visit for the same wound. UIDs not given are generated.
    """
    _check_inputs(photo, measurement, tracking_id, tracking_uid)
    group = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=tracking_uid, identifier=tracking_id),
        referenced_region=_region(photo, measurement),
        finding_type=WOUND,
        finding_sites=_finding_sites(photo),
        algorithm_id=hd.sr.AlgorithmIdentification(
            name=_ALGORITHM, version=__version__, parameters=measurement.quality.parameters()
        ),
        measurements=_measurements(measurement),
    )
    report = hd.sr.MeasurementReport(
        observation_context=_observation_context(observer_name),
        procedure_reported=codes.SCT.PhotographyOfPatient,
        imaging_measurements=[group],
    )
    sr = hd.sr.ComprehensiveSR(
        evidence=[photo],
        content=report,
        series_instance_uid=series_instance_uid or generate_uid(),
        series_number=series_number,
        sop_instance_uid=sop_instance_uid or generate_uid(),
        instance_number=instance_number,
        manufacturer=_MANUFACTURER,
        is_complete=True,
        series_description="Wound measurement",
    )
    _add_patient_extras(sr, photo)
    _copy_sensitivity(photo, sr)
    _stamp(sr, now)
    return sr


def _check_inputs(
    photo: Dataset, measurement: WoundMeasurement, tracking_id: str, tracking_uid: str
) -> None:
    if not tracking_id or len(tracking_id) > _TRACKING_ID_MAX:
        raise InvalidMetadata(
            f"a wound tracking id of 1 to {_TRACKING_ID_MAX} characters is needed"
        )
    if len(tracking_uid) > 64 or not _UID_PATTERN.fullmatch(tracking_uid):
        raise InvalidMetadata(f"the wound tracking UID {tracking_uid!r} is not a valid DICOM UID")
    columns, rows = measurement.calibration.image_size
    if (int(photo.Columns), int(photo.Rows)) != (columns, rows):
        raise InvalidMetadata(
            f"the measurement was made on a {columns} x {rows} image but the photo is "
            f"{photo.Columns} x {photo.Rows}: measure on the archived photo's pixels"
        )


def _region(photo: Dataset, measurement: WoundMeasurement) -> hd.sr.ImageRegion:
    """The outline as a closed POLYLINE (PS3.3 C.18.6.1.1: closed when last == first)."""
    points = np.vstack([measurement.outline_px, measurement.outline_px[:1]]).astype(np.float32)
    return hd.sr.ImageRegion(
        graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
        graphic_data=points,
        source_image=hd.sr.SourceImageForRegion.from_source_image(photo),
    )


def _finding_sites(photo: Dataset) -> list[hd.sr.FindingSite] | None:
    regions = photo.get("AnatomicRegionSequence")
    if not regions:
        return None
    region = regions[0]
    site = Code(str(region.CodeValue), str(region.CodingSchemeDesignator), str(region.CodeMeaning))
    side = _LATERALITY.get(str(photo.get("ImageLaterality", "")))
    return [hd.sr.FindingSite(anatomic_location=site, laterality=side)]


def _measurements(measurement: WoundMeasurement) -> list[hd.sr.Measurement]:
    values = [
        (codes.SCT.Area, measurement.area_cm2, codes.UCUM.SquareCentimeter),
        (codes.SCT.Length, measurement.length_mm, codes.UCUM.Millimeter),
        (codes.SCT.Width, measurement.width_mm, codes.UCUM.Millimeter),
        (codes.SCT.Perimeter, measurement.perimeter_mm, codes.UCUM.Millimeter),
    ]
    return [
        hd.sr.Measurement(name=name, value=round(float(value), 4), unit=unit)
        for name, value, unit in values
    ]


def _observation_context(observer_name: str | None) -> hd.sr.ObservationContext:
    device = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(
            uid=generate_uid(prefix=None, entropy_srcs=[_ALGORITHM, __version__]),
            name=_ALGORITHM,
            manufacturer_name=_MANUFACTURER,
        ),
    )
    person = None
    if observer_name:
        person = hd.sr.ObserverContext(
            observer_type=codes.DCM.Person,
            observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(
                name=observer_name
            ),
        )
    return hd.sr.ObservationContext(observer_person_context=person, observer_device_context=device)


def _add_patient_extras(sr: Dataset, photo: Dataset) -> None:
    """Patient module attributes highdicom does not copy (issuer, other ids), and the charset."""
    for keyword in _PATIENT_EXTRAS:
        if keyword in photo:
            sr[keyword] = photo[keyword]
    if "SpecificCharacterSet" in photo:
        sr.SpecificCharacterSet = photo.SpecificCharacterSet


def _copy_sensitivity(photo: Dataset, sr: Dataset) -> None:
    """The photo's private sensitivity block, element for element, under the same creator."""
    try:
        source = photo.private_block(SENSITIVITY_GROUP, SENSITIVITY_CREATOR)
    except KeyError:
        return
    target = sr.private_block(SENSITIVITY_GROUP, SENSITIVITY_CREATOR, create=True)
    for offset in range(0x100):
        if source.get_tag(offset) in photo:
            element = source[offset]
            target.add_new(offset, element.VR, element.value)


def _stamp(sr: Dataset, now: dt.datetime | None) -> None:
    """Content Date/Time = when the measurement was made (highdicom uses the wall clock)."""
    if now is None:
        return
    sr.ContentDate = now.strftime("%Y%m%d")
    sr.ContentTime = now.strftime("%H%M%S")
