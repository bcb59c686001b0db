"""Wound measurement on a clinical photo (issue 16): calibration marker, numbers, SR and FHIR.

A self-contained library: it depends on OpenCV, highdicom, fpdf2, pydicom and
``capture_api.exceptions`` / the capture types, never on the API, the store or the outbox.
The method, the conventions and the measured accuracy are in docs/wound-measurement.md.

Typical use::

    calibration = calibrate_from_marker(bgr_pixels)          # or calibrate_from_ruler(...)
    measurement = measure_wound(tracing, calibration)        # area, length, width, perimeter
    sr = build_measurement_sr(photo_dataset, measurement, tracking_id=..., tracking_uid=...)
    observation = build_wound_size_observation(measurement, patient=..., media=..., ...)

Every refusal is a ``capture_api.exceptions.MeasurementRejected`` with a ``reason`` code.
"""

from capture_api.measure.calibration import (
    Calibration,
    CalibrationMethod,
    calibrate_from_marker,
    calibrate_from_ruler,
    focal_length_px_from_35mm,
)
from capture_api.measure.fhir import build_wound_size_observation
from capture_api.measure.healing import (
    HealingPoint,
    HealingTrend,
    WoundType,
    healing_trend,
    percent_reduction,
    wound_type_for_site,
)
from capture_api.measure.marker import MARKER_IDS, DetectedMarker, detect_marker
from capture_api.measure.outline import validate_outline
from capture_api.measure.snap import snap_outline
from capture_api.measure.sr import build_measurement_sr
from capture_api.measure.sticker import sticker_pdf, sticker_svg
from capture_api.measure.wound import CalibrationQuality, WoundMeasurement, measure_wound

__all__ = [
    "MARKER_IDS",
    "Calibration",
    "CalibrationMethod",
    "CalibrationQuality",
    "DetectedMarker",
    "HealingPoint",
    "HealingTrend",
    "WoundMeasurement",
    "WoundType",
    "build_measurement_sr",
    "build_wound_size_observation",
    "calibrate_from_marker",
    "calibrate_from_ruler",
    "detect_marker",
    "focal_length_px_from_35mm",
    "healing_trend",
    "measure_wound",
    "percent_reduction",
    "snap_outline",
    "sticker_pdf",
    "sticker_svg",
    "validate_outline",
    "wound_type_for_site",
]
