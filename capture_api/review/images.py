"""A photo of the review views as a JPEG: blurred unless normal, clear only by breaking the glass.

The priors view and the timeline serve a photo's image the same way, and share one
break-the-glass door; this module is that one way, so both views make the same decision for
the same photo:

1. find the photo as the view lists it (``View``: the priors list any photo of the patient,
   the timeline only photos of a coded site), for this user's roles (``Timeline``); a photo
   that is not listed (another patient's, very-restricted for a user without the
   ``sensitive-viewer`` role, unknown) is ``NotFound``, in the same words as an unknown one;
2. ask the archive for its rendering at the size asked (``Archive.thumbnail``);
3. blur it here, on the server, unless the photo is normal: the clear pixels of a restricted
   photo never leave the service, except through ``unblurred``, which checks the user's role
   and typed reason and audits the view (``capture_api.privacy.break_glass``).

The blur radius grows with the size, so a 1024 px preview is as unreadable as a thumbnail.
"""

from __future__ import annotations

import enum

from capture_api.deliver.archive import InstanceRef
from capture_api.deliver.thumbnails import blurred
from capture_api.exceptions import NotFound
from capture_api.privacy.break_glass import BreakGlass
from capture_api.review.timeline import Timeline, TimelineItem

#: The timeline's two renderings (long side, px): a thumbnail for the strip, a preview for
#: side by side (the largest size any view serves, the unblurred image included).
THUMBNAIL_SIZE = 256
PREVIEW_SIZE = 1024
#: The blur radius is this fraction of the image size, and at least ``_MIN_BLUR_RADIUS``.
_BLUR_FRACTION = 20
_MIN_BLUR_RADIUS = 12


class View(enum.Enum):
    """Which view asks, and so which photos it can serve (the value is its access action)."""

    PRIORS = "priors"  # any listed photo of the patient, coded site or not
    TIMELINE = "timeline"  # a listed photo of a coded site: one that is on a timeline


#: What a photo that cannot be served is called, per view (the same for unknown and hidden).
NOT_FOUND = {
    View.PRIORS: "no such photo for this patient",
    View.TIMELINE: "no such photo on this patient's timeline",
}


def find(photos: Timeline, ref: InstanceRef, view: View) -> TimelineItem:
    """The photo, if ``view`` lists it for this user; else ``NotFound``."""
    if view is View.PRIORS:
        item = photos.locate(ref)
    else:
        (item,) = photos.find([ref])
    if item is None:
        raise NotFound(NOT_FOUND[view])
    return item


def image(photos: Timeline, ref: InstanceRef, size: int, view: View) -> bytes:
    """A JPEG of at most ``size`` px of a photo ``view`` lists: blurred unless it is normal."""
    item = find(photos, ref, view)
    jpeg = photos.archive.thumbnail(item.ref, size)
    if item.blurred:
        return blurred(jpeg, max(_MIN_BLUR_RADIUS, size // _BLUR_FRACTION))
    return jpeg


def unblurred(
    photos: Timeline, glass: BreakGlass, ref: InstanceRef, reason: str | None, size: int
) -> bytes:
    """The clear JPEG of one of the patient's photos, for a sensitive viewer's typed reason.

    Every outcome is one audit event (``glass``): no role (``RoleRequired``), no usable reason
    (``InputRejected``), a photo this user is not shown (``NotFound``), or the view. The view
    is recorded after the archive answered and before the image is returned; if it cannot be
    recorded, ``AuditUnavailable`` and nothing is shown.
    """
    text = glass.check(reason)
    item = photos.locate(ref)
    if item is None:
        glass.refused("no such photo", text)
        raise NotFound(NOT_FOUND[View.PRIORS])
    jpeg = photos.archive.thumbnail(item.ref, size)
    glass.granted(text)
    return jpeg
