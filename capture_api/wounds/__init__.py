"""Wound measurement in the product (issue 16): a photo's wound measured, archived and charted.

``WoundService`` (``service``) joins the measurement library (``capture_api.measure``) to the
rest of capture: it reads the photo back as archived (``photo``), calibrates and measures on
the server, queues the TID 1500 SR on the photos' outbox, and records the numbers
(``store.measurements``) with the WoundSize Observation the notifier sends. ``tracking``
names the wound across visits. The healing trend is the review's (``review.healing``).
"""

from capture_api.wounds.photo import WoundPhoto, load_photo
from capture_api.wounds.service import MEDIA_PLACEHOLDER, MeasureRequest, Ruler, WoundService
from capture_api.wounds.tracking import tracking_id, tracking_uid

__all__ = [
    "MEDIA_PLACEHOLDER",
    "MeasureRequest",
    "Ruler",
    "WoundPhoto",
    "WoundService",
    "load_photo",
    "tracking_id",
    "tracking_uid",
]
