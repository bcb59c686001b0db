"""The marker: found to sub-pixel precision, or refused for the reason a person can fix."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import pytest

from capture_api.exceptions import MeasurementRejected
from capture_api.measure import calibrate_from_marker, detect_marker
from capture_api.measure.calibration import focal_length_px_from_35mm
from capture_api.measure.marker import MARKER_IDS, marker_cells
from tests.measure.phantom import Phantom, focal_px, project


def _reason(image: np.ndarray) -> str:
    with pytest.raises(MeasurementRejected) as caught:
        calibrate_from_marker(image)
    return caught.value.reason


def test_corners_are_found_within_a_tenth_of_a_pixel(square_on: Phantom) -> None:
    marker = detect_marker(square_on.image)
    half = marker.spec.side_mm / 2
    truth = project(
        square_on.plane_to_image,
        np.array([[-half, half], [half, half], [half, -half], [-half, -half]]),
    )
    assert marker.spec.marker_id == 30
    assert np.abs(marker.corners - truth).max() < 0.1
    assert marker.edge_residual_px < 0.2


def test_the_marker_ids_are_their_sides_in_mm_and_distinct() -> None:
    assert MARKER_IDS == (20, 30, 40)
    patterns = {marker_cells(i).tobytes() for i in MARKER_IDS}
    assert len(patterns) == 3


def test_a_photo_without_a_marker(square_on: Phantom) -> None:
    """The half of the phantom photo away from the sticker: skin (and maybe wound), no marker."""
    centre = detect_marker(square_on.image).corners.mean(axis=0)
    width = square_on.image.shape[1]
    away = (
        square_on.image[:, : width // 2]
        if centre[0] > width / 2
        else square_on.image[:, width // 2 :]
    )
    assert _reason(np.ascontiguousarray(away)) == "no-marker"


def test_another_dictionary_id_is_not_our_marker() -> None:
    dictionary = cv2.aruco.getPredefinedDictionary(cv2.aruco.DICT_4X4_50)
    image = np.full((1200, 1600), 235, np.uint8)
    image[300:900, 500:1100] = cv2.aruco.generateImageMarker(dictionary, 7, 600, borderBits=1)
    image[300:900, 500:1100] = image[300:900, 500:1100] // 2 + 20  # ink and paper, not 0/255
    assert _reason(image) == "no-marker"
    image[300:900, 500:1100] = cv2.aruco.generateImageMarker(dictionary, 30, 600, borderBits=1)
    assert detect_marker(image).spec.side_mm == 30


def test_a_marker_too_small_says_move_closer(phantom: Callable[..., Phantom]) -> None:
    far = phantom(3, tilt_deg=5.0, area_cm2=2.0, distance_mm=1000.0, size=(2016, 1512))
    with pytest.raises(MeasurementRejected, match="move the phone closer") as caught:
        calibrate_from_marker(far.image)
    assert caught.value.reason == "marker-too-small"


def test_too_oblique_says_hold_the_phone_more_directly(phantom: Callable[..., Phantom]) -> None:
    oblique = phantom(4, tilt_deg=55.0, area_cm2=2.0, kind="convex")
    with pytest.raises(MeasurementRejected, match="55 degrees off square") as caught:
        calibrate_from_marker(oblique.image, focal_length_px=oblique.focal_px)
    assert caught.value.reason == "too-oblique"


@pytest.mark.parametrize(
    "finger",
    [(5.0, -4.0, 3.5), (-11.0, 11.0, 3.0), (16.5, 0.0, 4.0)],
    ids=["inside the marker", "on a corner cell", "on the white margin"],
)
def test_a_partly_hidden_marker_is_refused(
    phantom: Callable[..., Phantom], finger: tuple[float, float, float]
) -> None:
    hidden = phantom(5, tilt_deg=12.0, area_cm2=3.0, occluder=finger)
    assert _reason(hidden.image) == "marker-hidden"


def test_focal_length_from_the_35mm_equivalent() -> None:
    assert focal_length_px_from_35mm(26.0, (4032, 3024)) == pytest.approx(focal_px((4032, 3024)))
    with pytest.raises(ValueError):
        focal_length_px_from_35mm(0, (4032, 3024))
