"""The Dermoscopic Photography Image (PS3.3 A.32.x, Sup 221; SOP Class ...77.1.7).

A photo taken through a dermatoscope shares every module of the VL Photographic Image
(``capture_api.encode.vl_photo.build_photo``) except what this IOD changes, isolated here
(STANDARDS.md 1.2, dicom3tools ``iodcomp/vl.tpl``):

* Modality **DMS** (General Series), its own SOP Class, and its own series: a series holds
  one modality, so dermoscopic images of a site never join the clinical photos of it;
* **Enhanced General Equipment (M)** (C.7.5.2): Manufacturer, Manufacturer's Model Name,
  Device Serial Number and Software Versions, all Type 1;
* **Dermoscopic Image (M)** (C.8.12.13): Recognizable Visual Features (written by the General
  Image code), Light Source Polarization, Emitter Color Temperature, Contact Method,
  Immersion Media (only for contact), Optical Magnification Factor, and Tracking ID/UID of
  the lesion (``lesion_block``);
* **Frame of Reference (U)** (C.7.4.1): Debian's dciodvfy (2022) checks this U module on
  every instance, so each image gets a Frame of Reference UID of its own (derived from the
  capture id, like the SOP Instance UID) and an empty Position Reference Indicator: it
  relates the image to no other, which is the truth for a hand-held dermatoscope;
* **General Reference (U)** (C.12.4): the overview and close-up photos of the same lesion in
  Referenced Image Sequence (0008,1140), each with its Purpose of Reference from CID 7201.

The IOD has no Device, Specimen, VL Photographic Geolocation or Overlay Plane module: the
shared builder writes none of them either.
"""

from __future__ import annotations

import datetime as dt

from pydicom.dataset import Dataset
from pydicom.sr.coding import Code
from pydicom.uid import UID

from capture_api.capture.lesions import ImageReference
from capture_api.capture.model import CaptureContext
from capture_api.encode.prepare import PreparedPhoto
from capture_api.encode.uids import derived_uid
from capture_api.encode.vl_photo import (
    PRODUCT_MANUFACTURER,
    PRODUCT_MODEL,
    PhotoIod,
    add_pixel_data,
    build_photo,
    code_item,
)

#: Dermoscopic Photography Image Storage (PS3.4 B.5; pydicom's UID dictionary).
DERMOSCOPIC_PHOTOGRAPHY_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.77.1.7")
DERMOSCOPY_MODALITY = "DMS"

#: Purpose of Reference (CID 7201): an overview photo shows where the lesion is (Localizer);
#: a close-up is another view of the same lesion (Other partial views).
LOCALIZER = Code("121311", "DCM", "Localizer")
OTHER_PARTIAL_VIEWS = Code("121313", "DCM", "Other partial views")
#: Device Serial Number is Type 1, but capture never sends the phone's serial (EXIF
#: BodySerialNumber is stripped): the deployment's device label, else this word.
UNKNOWN_SERIAL = "UNKNOWN"


def _add_enhanced_general_equipment(ds: Dataset, photo: PreparedPhoto, ctx: CaptureContext) -> None:
    """Enhanced General Equipment Module (C.7.5.2): every attribute Type 1, never empty."""
    if not ds.get("Manufacturer"):
        ds.Manufacturer = photo.exif.make or PRODUCT_MANUFACTURER
    if not ds.get("ManufacturerModelName"):
        ds.ManufacturerModelName = photo.exif.model or PRODUCT_MODEL
    ds.DeviceSerialNumber = ctx.device or UNKNOWN_SERIAL


def _add_frame_of_reference(ds: Dataset, ctx: CaptureContext, uid_root: str | None) -> None:
    """Frame of Reference Module (C.7.4.1): one of its own per image (see the docstring)."""
    ds.FrameOfReferenceUID = derived_uid(uid_root, "frame-of-reference", ctx.capture_id)
    ds.PositionReferenceIndicator = ""


def _add_dermoscopic_image(ds: Dataset, ctx: CaptureContext) -> None:
    """Dermoscopic Image Module (C.8.12.13); Type 2 values empty when the nurse did not say."""
    scope = ctx.dermoscopy
    ds.LightSourcePolarization = scope.polarization.value if scope and scope.polarization else ""
    ds.EmitterColorTemperature = None
    ds.ContactMethod = scope.contact.value if scope and scope.contact else ""
    if ds.ContactMethod == "CONTACT":
        ds.ImmersionMedia = (scope.immersion if scope else None) or ""
    ds.OpticalMagnificationFactor = None


def _add_general_reference(ds: Dataset, references: tuple[ImageReference, ...]) -> None:
    """General Reference Module (C.12.4): the lesion's other photos, with their purpose."""
    if not references:
        return
    items = []
    for ref in references:
        item = Dataset()
        item.ReferencedSOPClassUID = ref.sop_class_uid
        item.ReferencedSOPInstanceUID = ref.sop_instance_uid
        purpose = LOCALIZER if ref.purpose == "overview" else OTHER_PARTIAL_VIEWS
        item.PurposeOfReferenceCodeSequence = [code_item(purpose)]
        items.append(item)
    ds.ReferencedImageSequence = items


def _dermoscopic_modules(
    ds: Dataset, photo: PreparedPhoto, ctx: CaptureContext, uid_root: str | None
) -> None:
    _add_frame_of_reference(ds, ctx, uid_root)
    _add_enhanced_general_equipment(ds, photo, ctx)
    _add_dermoscopic_image(ds, ctx)
    _add_general_reference(ds, ctx.references)


DERMOSCOPIC = PhotoIod(
    modality=DERMOSCOPY_MODALITY,
    sop_class_uid=DERMOSCOPIC_PHOTOGRAPHY_IMAGE_STORAGE,
    series_key=(DERMOSCOPY_MODALITY,),
    extra=_dermoscopic_modules,
)


def build_dermoscopic(
    photo: PreparedPhoto,
    ctx: CaptureContext,
    *,
    uid_root: str | None = None,
    institution_name: str | None = None,
    station_name: str | None = None,
    now: dt.datetime | None = None,
) -> Dataset:
    """The Part 10 dataset (with File Meta) of one dermoscopic photo."""
    ds = build_photo(
        photo,
        ctx,
        DERMOSCOPIC,
        uid_root=uid_root,
        institution_name=institution_name,
        station_name=station_name,
        now=now,
    )
    add_pixel_data(ds, photo)
    return ds
