"""Which wound a measurement is about: a Tracking UID and label stable across visits.

TID 1500 follows one finding over time by its Tracking Unique Identifier (112040, DCM): the
same UID at every visit lets an archive or viewer line the measurements up. Here a wound is a
patient's site and side (the wound-care timeline's grouping), so the UID is derived from
those; a photo of a tracked lesion uses the lesion's own Tracking UID.
"""

from __future__ import annotations

from capture_api.capture.anatomy import get_site
from capture_api.encode import derived_uid
from capture_api.exceptions import InvalidMetadata

__all__ = ["tracking_id", "tracking_uid"]

_SIDES = {"L": "left", "R": "right", "B": "both sides"}
_MAX = 64


def tracking_uid(
    uid_root: str | None,
    patient_id: str,
    issuer: str,
    body_site_code: str | None,
    laterality: str | None,
    lesion_uid: str | None = None,
) -> str:
    """The wound's Tracking UID: the lesion's, else derived from patient, site and side."""
    if lesion_uid:
        return lesion_uid
    return derived_uid(
        uid_root, "wound", patient_id, issuer, body_site_code or "", laterality or ""
    )


def tracking_id(body_site_code: str | None, laterality: str | None) -> str:
    """A readable label ("wound, Heel, left"), at most 64 characters."""
    words = ["wound"]
    if body_site_code:
        try:
            words.append(get_site(body_site_code).meaning)
        except InvalidMetadata:
            words.append(body_site_code)
    side = _SIDES.get(laterality or "")
    if side:
        words.append(side)
    return ", ".join(words)[:_MAX]
