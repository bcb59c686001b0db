"""Build a DICOM VL Photographic Image (PS3.3 A.32.4) around a prepared JPEG stream.

Modelled on highdicom's builders: one ``_add_<module>`` function per IOD module, in the
order of the IOD table, each citing its section. ``build_photo`` writes every module the
photo IODs share; what one IOD adds or changes is its ``PhotoIod`` (the Dermoscopic
Photography Image: ``capture_api.encode.dermoscopy``). A photo of a tracked lesion also
carries Tracking ID/UID and the map pin (``capture_api.encode.lesion_block``). The pixel
data is the JPEG stream as prepared, encapsulated unchanged in one fragment (PS3.5 A.4, Annex F).

Where the value of an attribute comes from is documented in docs/conformance.md; the
sensitivity mapping (a private block, since DICOM has no image-level sensitivity attribute,
STANDARDS.md 5.5) is described beside ``_add_sensitivity``.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code
from pydicom.uid import UID, JPEGBaseline8Bit, JPEGExtended12Bit, VLPhotographicImageStorage
from pydicom.valuerep import DSfloat

from capture_api import __version__
from capture_api.capture.anatomy import BodySite, Laterality
from capture_api.capture.model import CaptureContext
from capture_api.capture.patient import Issuer, Patient
from capture_api.capture.sensitivity import SensitivityCategory
from capture_api.encode.jpeg.markers import ColorTransform, Process
from capture_api.encode.lesion_block import add_lesion
from capture_api.encode.prepare import PreparedPhoto
from capture_api.encode.uids import (
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    derived_uid,
    instance_uid,
)

PRODUCT_MANUFACTURER = "capture (open source)"
PRODUCT_MODEL = "capture-api"

#: Private block for sensitivity (PS3.5 7.8): creator, then element offsets within the block.
SENSITIVITY_GROUP = 0x0011
SENSITIVITY_CREATOR = "CAPTURE SENSITIVITY 1"
CONFIDENTIALITY_ELEMENT = 0x10  # CS: HL7 v3 Confidentiality code N | R | V
CATEGORY_ELEMENT = 0x11  # CS 1-n: HL7 ActCode (SEX, SDV, ADOL) or ours (BREAST, FACE)
LEVEL_ELEMENT = 0x12  # LO: normal | restricted | very-restricted

#: Sites whose photos show a face (Recognizable Visual Features YES, PS3.3 C.7.6.1.1.7).
_TEXT_VRS = {"PN", "LO", "SH", "ST", "LT", "UT", "UC"}
_FACE_WORDS = frozenset(
    {"face", "facial", "head", "eye", "eyes", "eyelid", "nose", "nasal", "lip", "lips", "cheek"}
    | {"chin", "forehead", "ear", "auricle", "mouth", "perioral", "periorbital", "eyebrow"}
)


@dataclass(frozen=True)
class PhotoIod:
    """What differs between the photo IODs capture writes; every module they share is here.

    ``modality`` and ``sop_class_uid`` (General Series, SOP Common); ``series_key``: a part of
    the derived Series Instance UID (a series holds one modality, so a dermoscopic image of a
    site never joins the clinical photos of it); ``extra``: the IOD's own modules, added last.
    """

    modality: str
    sop_class_uid: str
    series_key: tuple[str, ...] = ()
    extra: Callable[[Dataset, PreparedPhoto, CaptureContext, str | None], None] | None = None


#: The VL Photographic Image IOD (PS3.3 A.32.4): its modules are the shared ones.
VL_PHOTOGRAPHIC = PhotoIod(modality="XC", sop_class_uid=VLPhotographicImageStorage)


def build_vl_photo(
    photo: PreparedPhoto,
    ctx: CaptureContext,
    *,
    uid_root: str | None = None,
    institution_name: str | None = None,
    station_name: str | None = None,
    now: dt.datetime | None = None,
) -> Dataset:
    """Return the complete Part 10 dataset (with File Meta) for one photo."""
    ds = build_photo(
        photo,
        ctx,
        VL_PHOTOGRAPHIC,
        uid_root=uid_root,
        institution_name=institution_name,
        station_name=station_name,
        now=now,
    )
    add_pixel_data(ds, photo)
    return ds


def build_photo(
    photo: PreparedPhoto,
    ctx: CaptureContext,
    iod: PhotoIod,
    *,
    uid_root: str | None = None,
    institution_name: str | None = None,
    station_name: str | None = None,
    now: dt.datetime | None = None,
) -> Dataset:
    """The dataset of ``iod`` for one photo: the shared modules, then the IOD's own.

    Everything but Pixel Data: ``encode.part10`` appends the JPEG to the file as it is
    (``add_pixel_data`` puts it in the dataset, for a caller that wants the whole object).
    """
    clock = _Clock.for_capture(photo, ctx, now)
    ds = Dataset()
    study_uid = ctx.study_uid or derived_uid(uid_root, "study", ctx.capture_id)
    _add_patient(ds, ctx.patient)
    _add_general_study(ds, ctx, study_uid, clock)
    _add_patient_study(ds, ctx)
    _add_general_series(ds, ctx, study_uid, uid_root, clock, iod)
    _add_general_equipment(ds, photo, institution_name, station_name or ctx.device)
    _add_general_acquisition(ds, clock)
    _add_general_image(ds, photo, ctx, clock)
    _add_image_pixel(ds, photo)
    _add_acquisition_context(ds, ctx)
    _add_vl_image(ds, photo, ctx)
    _add_vl_photographic_equipment(ds, photo)
    _add_vl_photographic_acquisition(ds, photo)
    _add_icc_profile(ds, photo)
    if ctx.lesion is not None:
        add_lesion(ds, ctx.lesion)
    if iod.extra is not None:
        iod.extra(ds, photo, ctx, uid_root)
    _add_sop_common(ds, photo, ctx, uid_root, clock, iod)
    _add_sensitivity(ds, ctx)
    _add_file_meta(ds, photo)
    return ds


# --- time -----------------------------------------------------------------------------------


class _Clock:
    """Every date and time in one instance shares one UTC offset (Timezone Offset From UTC)."""

    def __init__(self, acquired: dt.datetime, offset_known: bool, now: dt.datetime) -> None:
        self.tz = acquired.tzinfo or now.tzinfo or dt.UTC
        self.acquired = acquired if acquired.tzinfo else acquired.replace(tzinfo=self.tz)
        self.offset_known = offset_known
        self.now = now.astimezone(self.tz)

    @classmethod
    def for_capture(
        cls, photo: PreparedPhoto, ctx: CaptureContext, now: dt.datetime | None
    ) -> _Clock:
        current = (now or dt.datetime.now()).astimezone()
        taken = photo.exif.taken_at or ctx.captured_at or current
        if taken.tzinfo is None and ctx.captured_at and ctx.captured_at.tzinfo:
            taken = taken.replace(tzinfo=ctx.captured_at.tzinfo)
        return cls(taken, taken.tzinfo is not None, current)

    def local(self, moment: dt.datetime) -> dt.datetime:
        return moment.astimezone(self.tz) if moment.tzinfo else moment.replace(tzinfo=self.tz)

    @property
    def offset(self) -> str:
        """Timezone Offset From UTC (0008,0201) as ``+HHMM``."""
        return self.acquired.strftime("%z") or "+0000"


def _da(moment: dt.datetime) -> str:
    return moment.strftime("%Y%m%d")


def _tm(moment: dt.datetime) -> str:
    return moment.strftime("%H%M%S.%f") if moment.microsecond else moment.strftime("%H%M%S")


# --- Patient IE -----------------------------------------------------------------------------


def _add_patient(ds: Dataset, patient: Patient) -> None:
    """Patient Module (C.7.1.1): from the EHR context, never typed by the clinician."""
    ds.PatientName = patient.name.dicom() if patient.name else ""
    ds.PatientID = patient.patient_id
    if patient.issuer:
        _add_issuer_of_patient_id(ds, patient.issuer)
    ds.PatientBirthDate = patient.birth_date.strftime("%Y%m%d") if patient.birth_date else ""
    ds.PatientSex = patient.sex.value if patient.sex else ""


def _add_issuer_of_patient_id(ds: Dataset, issuer: Issuer) -> None:
    ds.IssuerOfPatientID = issuer.local_namespace or issuer.universal_id or ""
    if issuer.universal_id and issuer.universal_id_type:
        qualifiers = Dataset()
        qualifiers.UniversalEntityID = issuer.universal_id
        qualifiers.UniversalEntityIDType = issuer.universal_id_type.value
        ds.IssuerOfPatientIDQualifiersSequence = [qualifiers]


def _issuer_item(issuer: Issuer) -> Dataset:
    """An HL7 v2 HD triplet item (PS3.3 Table 10-17, HL7v2 Hierarchic Designator Macro)."""
    item = Dataset()
    if issuer.local_namespace:
        item.LocalNamespaceEntityID = issuer.local_namespace
    if issuer.universal_id and issuer.universal_id_type:
        item.UniversalEntityID = issuer.universal_id
        item.UniversalEntityIDType = issuer.universal_id_type.value
    return item


# --- Study IE -------------------------------------------------------------------------------


def _add_general_study(ds: Dataset, ctx: CaptureContext, study_uid: str, clock: _Clock) -> None:
    """General Study Module (C.7.2.1). Encounter-based imaging: accession may be empty."""
    encounter = ctx.encounter
    started = clock.local(encounter.started_at) if encounter and encounter.started_at else None
    study_time = started or clock.acquired
    ds.StudyInstanceUID = study_uid
    ds.StudyDate = _da(study_time)
    ds.StudyTime = _tm(study_time)
    referring = encounter.referring_physician if encounter else None
    ds.ReferringPhysicianName = referring.dicom() if referring else ""
    ds.StudyID = _study_id(ctx, study_uid)
    ds.AccessionNumber = (encounter.accession_number if encounter else None) or ""
    ds.StudyDescription = (encounter.description if encounter else None) or "Clinical photography"


def _study_id(ctx: CaptureContext, study_uid: str) -> str:
    """Study ID (SH, 16): the admission ID when it fits, else the tail of the Study UID.

    Type 2, but DICOMDIR study records need a value, and the local archive writes one.
    """
    admission = ctx.encounter.admission_id if ctx.encounter else None
    if admission and len(admission) <= 16:
        return admission
    return study_uid[-16:].strip(".")


def _add_patient_study(ds: Dataset, ctx: CaptureContext) -> None:
    """Patient Study Module (C.7.2.2): the encounter as Admission ID + issuer (IHE EBIW)."""
    encounter = ctx.encounter
    if encounter and encounter.admission_id:
        ds.AdmissionID = encounter.admission_id
        if encounter.issuer:
            ds.IssuerOfAdmissionIDSequence = [_issuer_item(encounter.issuer)]


# --- Series and Equipment IEs ---------------------------------------------------------------


def _add_general_series(
    ds: Dataset,
    ctx: CaptureContext,
    study_uid: str,
    uid_root: str | None,
    clock: _Clock,
    iod: PhotoIod,
) -> None:
    """General Series Module (C.7.3.1). Laterality goes per image (0020,0062), not here."""
    site = ctx.body_site.code_value if ctx.body_site else "no-site"
    side = ctx.laterality.value if ctx.laterality else "-"
    ds.Modality = iod.modality
    ds.SeriesInstanceUID = ctx.series_uid or derived_uid(
        uid_root, "series", study_uid, site, side, *iod.series_key
    )
    ds.SeriesNumber = ctx.series_number if ctx.series_number is not None else 1
    ds.SeriesDate = _da(clock.acquired)
    ds.SeriesTime = _tm(clock.acquired)
    ds.SeriesDescription = _site_text(ctx.body_site, ctx.laterality) or "Clinical photo"
    if _image_laterality(ctx) is None:
        ds.Laterality = ""  # Type 2C: side unknown (no coded site); empty is the honest value
    if ctx.operator:
        ds.OperatorsName = ctx.operator.dicom()


def _site_text(site: BodySite | None, laterality: Laterality | None) -> str:
    """The site's one display name (the phone shows the same), cut to LO's 64 characters."""
    return "" if site is None else site.display_name(laterality)[:64]


def _add_general_equipment(
    ds: Dataset, photo: PreparedPhoto, institution: str | None, station: str | None
) -> None:
    """General Equipment Module (C.7.5.1): the camera from EXIF; our software beside it."""
    ds.Manufacturer = photo.exif.make or ""
    if photo.exif.model:
        ds.ManufacturerModelName = photo.exif.model
    versions = [v for v in (photo.exif.software, f"{PRODUCT_MODEL} {__version__}") if v]
    ds.SoftwareVersions = versions if len(versions) > 1 else versions[0]
    if institution:
        ds.InstitutionName = institution
    if station and len(station) <= 16:  # SH: a longer device label is not cut, just not sent
        ds.StationName = station


def _add_general_acquisition(ds: Dataset, clock: _Clock) -> None:
    """General Acquisition Module (C.7.10.1): when the shutter fired (EXIF DateTimeOriginal)."""
    ds.AcquisitionDate = _da(clock.acquired)
    ds.AcquisitionTime = _tm(clock.acquired)
    suffix = clock.acquired.strftime("%z") if clock.offset_known else ""
    ds.AcquisitionDateTime = clock.acquired.strftime("%Y%m%d%H%M%S.%f") + suffix


# --- Image IE -------------------------------------------------------------------------------


def _add_general_image(
    ds: Dataset, photo: PreparedPhoto, ctx: CaptureContext, clock: _Clock
) -> None:
    """General Image Module (C.7.6.1), with the honest lossy-compression history."""
    ds.InstanceNumber = ctx.instance_number if ctx.instance_number is not None else 1
    ds.PatientOrientation = ""
    ds.ContentDate = _da(clock.acquired)
    ds.ContentTime = _tm(clock.acquired)
    ds.ImageType = ["DERIVED" if photo.derived else "ORIGINAL", "PRIMARY"]
    ds.BurnedInAnnotation = "NO"
    ds.RecognizableVisualFeatures = "YES" if _recognizable(ctx) else "NO"
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionRatio = [DSfloat(s.ratio, auto_format=True) for s in photo.lossy_steps]
    ds.LossyImageCompressionMethod = [s.method for s in photo.lossy_steps]
    if photo.derivation:
        ds.DerivationDescription = f"Camera image {photo.derivation}."
    if ctx.note:
        ds.ImageComments = ctx.note


def _recognizable(ctx: CaptureContext) -> bool:
    """YES when told so, for face sites and the FACE category, and when the site is unknown."""
    if ctx.recognizable_features is not None:
        return ctx.recognizable_features
    if SensitivityCategory.IDENTIFIABLE_FACE in ctx.sensitivity.categories:
        return True
    if ctx.body_site is None:
        return True  # nothing says what the photo shows: assume it could identify the patient
    words = set(re.findall(r"[a-z]+", ctx.body_site.meaning.lower()))
    return not words.isdisjoint(_FACE_WORDS)  # whole words: "forearm" is not an "ear"


def _add_image_pixel(ds: Dataset, photo: PreparedPhoto) -> None:
    """Image Pixel Module (C.7.6.3): every value read from the JPEG's own markers (PS3.5 8.2.1)."""
    frame = photo.frame
    ds.SamplesPerPixel = frame.samples_per_pixel
    ds.PhotometricInterpretation = _photometric(frame.color)
    ds.Rows = frame.rows
    ds.Columns = frame.columns
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    if frame.samples_per_pixel > 1:
        ds.PlanarConfiguration = 0


def add_pixel_data(ds: Dataset, photo: PreparedPhoto) -> None:
    """Pixel Data (7FE0,0010): the JPEG as the one fragment of encapsulated data (PS3.5 A.4)."""
    ds.PixelData = encapsulate([photo.jpeg])
    ds["PixelData"].VR = "OB"


def _photometric(color: ColorTransform) -> str:
    """YBR_FULL_422 for every colour JPEG whatever its subsampling (CP-1653, STANDARDS.md box).

    RGB-coded JPEGs never get here: ``prepare`` re-encodes them to YCbCr once.
    """
    return "MONOCHROME2" if color is ColorTransform.GRAY else "YBR_FULL_422"


def _add_acquisition_context(ds: Dataset, ctx: CaptureContext) -> None:
    """Acquisition Context Module (C.7.6.14): Type 2 sequence, empty; the view as text."""
    ds.AcquisitionContextSequence = []
    if ctx.view:
        ds.AcquisitionContextDescription = ctx.view


def _add_vl_image(ds: Dataset, photo: PreparedPhoto, ctx: CaptureContext) -> None:
    """VL Image Module (C.8.12.1): coded anatomy and Image Laterality (PS3.3 10.5)."""
    laterality = _image_laterality(ctx)
    if laterality:
        ds.ImageLaterality = laterality.value
    if ctx.body_site:
        ds.AnatomicRegionSequence = [_anatomic_region(ctx.body_site, ctx.laterality)]


def _image_laterality(ctx: CaptureContext) -> Laterality | None:
    """The chosen side; U (unpaired) for a coded site that has no sides."""
    if ctx.laterality is None and ctx.body_site is not None and not ctx.body_site.paired:
        return Laterality.UNPAIRED
    return ctx.laterality


def _anatomic_region(site: BodySite, laterality: Laterality | None) -> Dataset:
    item = code_item(site.code, context_uid=site.context_uid)
    modifier = laterality.modifier_code if laterality else None
    if modifier is not None:
        item.AnatomicRegionModifierSequence = [code_item(modifier)]
    return item


def code_item(code: Code, *, context_uid: str | None = None) -> Dataset:
    """A Code Sequence Macro item (PS3.3 Table 8.8-1).

    Context UID (Type 3) names the context group; Context Identifier is left out because
    it would require a Context Group Version, which pydicom's tables do not state.
    """
    item = Dataset()
    item.CodeValue = code.value
    item.CodingSchemeDesignator = code.scheme_designator
    item.CodeMeaning = code.meaning
    if context_uid:
        item.ContextUID = context_uid
    return item


def _add_vl_photographic_equipment(ds: Dataset, photo: PreparedPhoto) -> None:
    """VL Photographic Equipment Module (C.8.12.10): the lens, never owner or serial numbers."""
    exif = photo.exif
    if exif.lens_make:
        ds.LensMake = exif.lens_make
    if exif.lens_model:
        ds.LensModel = exif.lens_model
    if exif.lens_specification:
        ds.LensSpecification = [DSfloat(v, auto_format=True) for v in exif.lens_specification]


def _add_vl_photographic_acquisition(ds: Dataset, photo: PreparedPhoto) -> None:
    """VL Photographic Acquisition Module (C.8.12.11): EXIF exposure values, one to one."""
    for keyword, value in photo.exif.acquisition.items():
        setattr(
            ds, keyword, DSfloat(value, auto_format=True) if isinstance(value, float) else value
        )


def _add_icc_profile(ds: Dataset, photo: PreparedPhoto) -> None:
    """ICC Profile Module (C.11.15): moved out of the JPEG's APP2 segments."""
    if photo.icc_profile:
        ds.ICCProfile = photo.icc_profile


def _add_sop_common(
    ds: Dataset,
    photo: PreparedPhoto,
    ctx: CaptureContext,
    uid_root: str | None,
    clock: _Clock,
    iod: PhotoIod,
) -> None:
    """SOP Common Module (C.12.1), with our product as contributing (processing) equipment."""
    ds.SOPClassUID = iod.sop_class_uid
    ds.SOPInstanceUID = instance_uid(uid_root, ctx.capture_id)
    ds.InstanceCreationDate = _da(clock.now)
    ds.InstanceCreationTime = _tm(clock.now)
    ds.TimezoneOffsetFromUTC = clock.offset
    ds.ContributingEquipmentSequence = [_contributing_equipment(photo, clock)]
    if not _all_ascii(ds):
        ds.SpecificCharacterSet = "ISO_IR 192"


def _contributing_equipment(photo: PreparedPhoto, clock: _Clock) -> Dataset:
    item = Dataset()
    item.PurposeOfReferenceCodeSequence = [code_item(codes.DCM.ProcessingEquipment)]
    item.Manufacturer = PRODUCT_MANUFACTURER
    item.ManufacturerModelName = PRODUCT_MODEL
    item.SoftwareVersions = __version__
    item.ContributionDateTime = clock.now.strftime("%Y%m%d%H%M%S%z")
    item.ContributionDescription = contribution_description(photo)[:1024]
    return item


def contribution_description(photo: PreparedPhoto) -> str:
    """What capture did to the camera's image, and only that (C.12.1.1.4 Contributing Equipment).

    A photo that was re-encoded or transcoded (``derived``) must not also claim it was wrapped
    "without re-encoding": the derivation says what happened to the pixels.
    """
    removed = "removed EXIF, GPS and other metadata"
    if photo.derived:
        return f"{photo.derivation}; {removed}"
    done = f"wrapped the camera JPEG without re-encoding; {removed}"
    return f"{done}; {photo.derivation}" if photo.derivation else done


def _all_ascii(ds: Dataset) -> bool:
    """Whether every text value fits the default repertoire (else ISO_IR 192, UTF-8)."""
    for elem in ds.iterall():
        if elem.VR in _TEXT_VRS and elem.value is not None:
            values = elem.value if elem.VM > 1 else [elem.value]
            if not all(str(v).isascii() for v in values):
                return False
    return True


def _add_sensitivity(ds: Dataset, ctx: CaptureContext) -> None:
    """The clinician's sensitivity choice, in a documented private block.

    DICOM has no image-level confidentiality attribute (STANDARDS.md 5.5); archives that
    filter on it read ``(0011,xx10)`` under creator ``CAPTURE SENSITIVITY 1``. The FHIR side
    carries the same codes in ``meta.security``.
    """
    block = ds.private_block(SENSITIVITY_GROUP, SENSITIVITY_CREATOR, create=True)
    block.add_new(CONFIDENTIALITY_ELEMENT, "CS", ctx.sensitivity.level.confidentiality_code)
    categories = sorted(c.value for c in ctx.sensitivity.categories)
    if categories:
        block.add_new(CATEGORY_ELEMENT, "CS", categories)
    block.add_new(LEVEL_ELEMENT, "LO", ctx.sensitivity.level.value)


def _add_file_meta(ds: Dataset, photo: PreparedPhoto) -> None:
    """File Meta Information (PS3.10 7.1): JPEG Baseline, or Extended for an SOF1 stream."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    extended = photo.frame.process is Process.EXTENDED
    meta.TransferSyntaxUID = UID(JPEGExtended12Bit if extended else JPEGBaseline8Bit)
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    ds.file_meta = meta
    ds.preamble = b"\x00" * 128
