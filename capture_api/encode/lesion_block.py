"""The lesion a photo shows, in its DICOM header: Tracking ID/UID and the body-map pin.

* **Tracking ID (0062,0020)** = the lesion's label ("L3") and **Tracking UID (0062,0021)** =
  its UID, the same in every photo of it for years. They are the Dermoscopic Image Module's
  own attributes (PS3.3 C.8.12.13, Type 1C: each with the other); in a VL Photographic Image
  they are Standard Extended attributes (PS3.4 B.1.3: standard attributes of another IOD),
  declared in docs/conformance.md. Top-level in both, so an archive finds a lesion's photos
  with one attribute whatever their SOP class.
* **The pin** has no standard attribute (DICOM has no body-map coordinates for a photo), so it
  goes in a private block (PS3.5 7.8): group 0013, creator ``CAPTURE LESION 1``, elements
  ``xx10`` the map view (LO), ``xx11``/``xx12`` the position x/y from the view's top left,
  0..1 (DS), ``xx13`` the lesion's description (LO). capture reads it back to rebuild a
  patient's lesions from the archive (``capture_api.review.lesions``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydicom.dataset import Dataset
from pydicom.valuerep import DSfloat

from capture_api.capture.lesions import LesionMark, LesionPin
from capture_api.exceptions import InvalidMetadata

LESION_GROUP = 0x0013
LESION_CREATOR = "CAPTURE LESION 1"
VIEW_ELEMENT = 0x10  # LO: the map view (front, back, head, hand-palmar, ...)
X_ELEMENT = 0x11  # DS: 0..1 from the view's left
Y_ELEMENT = 0x12  # DS: 0..1 from the view's top
DESCRIPTION_ELEMENT = 0x13  # LO: the lesion's description

_TRACKING_ID = "00620020"
_TRACKING_UID = "00620021"
_CREATOR_SLOTS = range(0x10, 0x100)


def add_lesion(ds: Dataset, mark: LesionMark) -> None:
    """Tracking ID/UID, and the pin and description in capture's private block."""
    ds.TrackingID = mark.tracking_id
    ds.TrackingUID = mark.tracking_uid
    if mark.pin is None and not mark.description:
        return
    block = ds.private_block(LESION_GROUP, LESION_CREATOR, create=True)
    if mark.pin is not None:
        block.add_new(VIEW_ELEMENT, "LO", mark.pin.view)
        block.add_new(X_ELEMENT, "DS", DSfloat(round(mark.pin.x, 6), auto_format=True))
        block.add_new(Y_ELEMENT, "DS", DSfloat(round(mark.pin.y, 6), auto_format=True))
    if mark.description:
        block.add_new(DESCRIPTION_ELEMENT, "LO", mark.description)


def lesion_from_dataset(ds: Dataset) -> LesionMark | None:
    """The lesion an instance's header names (None without a Tracking UID)."""
    uid = str(ds.get("TrackingUID", "") or "").strip()
    label = str(ds.get("TrackingID", "") or "").strip()
    values: dict[int, str] = {}
    try:
        block = ds.private_block(LESION_GROUP, LESION_CREATOR)
    except KeyError:
        block = None
    if block is not None:
        for element in (VIEW_ELEMENT, X_ELEMENT, Y_ELEMENT, DESCRIPTION_ELEMENT):
            if element in block:
                values[element] = str(block[element].value).strip()
    return _mark(uid, label, values)


def lesion_from_json(attrs: Mapping[str, Any]) -> LesionMark | None:
    """The same from a DICOM JSON object (PS3.18 F.2), e.g. WADO-RS series metadata."""
    uid = _json_text(attrs, _TRACKING_UID) or ""
    label = _json_text(attrs, _TRACKING_ID) or ""
    values: dict[int, str] = {}
    for slot in _CREATOR_SLOTS:
        if _json_text(attrs, f"{LESION_GROUP:04X}{slot:04X}") != LESION_CREATOR:
            continue
        prefix = f"{LESION_GROUP:04X}{slot:02X}"
        for element in (VIEW_ELEMENT, X_ELEMENT, Y_ELEMENT, DESCRIPTION_ELEMENT):
            text = _json_text(attrs, f"{prefix}{element:02X}")
            if text is not None:
                values[element] = text
        break
    return _mark(uid, label, values)


def _mark(uid: str, label: str, values: Mapping[int, str]) -> LesionMark | None:
    if not uid:
        return None
    try:
        pin = LesionPin(values[VIEW_ELEMENT], float(values[X_ELEMENT]), float(values[Y_ELEMENT]))
    except (KeyError, ValueError, InvalidMetadata):
        pin = None  # another writer's block, or none: the lesion without its pin
    try:
        return LesionMark(uid, label or "L?", values.get(DESCRIPTION_ELEMENT) or None, pin)
    except InvalidMetadata:
        return None


def _json_text(attrs: Mapping[str, Any], tag: str) -> str | None:
    element = attrs.get(tag)
    values = element.get("Value") if isinstance(element, Mapping) else None
    if not isinstance(values, list) or not values or values[0] is None:
        return None
    return str(values[0]).strip() or None
