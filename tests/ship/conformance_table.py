"""The attribute table of docs/conformance.md, generated from real encoded objects.

Every attribute capture writes is found by encoding the whole sample corpus (every EXIF
variety, HEIC, rotations) with a context that fills every input, plus one photo with no body
site, and reading the Part 10 bytes back. Where each value comes from is written here, once,
in ``SOURCES``; the table in the doc is generated from both, so it cannot drift:
``tests/ship/test_conformance_doc.py`` fails when the encoder writes an attribute that has no
source here, when a source names an attribute the encoder no longer writes, or when the doc's
table differs from this output.

Regenerate the table after changing the encoder or a source::

    .venv/bin/python -m tests.ship.conformance_table --write
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pydicom
from pydicom.datadict import dictionary_description
from pydicom.dataset import Dataset

from capture_api.capture.anatomy import resolve
from capture_api.capture.lesions import LesionMark, LesionPin
from capture_api.capture.model import CaptureContext
from capture_api.capture.patient import Encounter, Issuer, Patient, PersonName, Sex
from capture_api.capture.patient import UniversalIdType as IdType
from capture_api.capture.sensitivity import Sensitivity
from capture_api.encode.pipeline import EncoderOptions, wrap_photo
from tests.conftest import well_formed_samples

DOC = Path(__file__).resolve().parents[2] / "docs" / "conformance.md"
BEGIN = "<!-- attribute-table:begin (generated: python -m tests.ship.conformance_table) -->"
END = "<!-- attribute-table:end -->"

# --- where every value comes from -------------------------------------------------------------
# path (keywords joined by ">" for sequence items; private elements as "(gggg,xxee)", their
# creator as "(gggg,00xx)") ->
# (module, source). Module names follow PS3.3 A.32.4 (VL Photographic Image IOD).

_PATIENT = "Patient (C.7.1.1)"
_STUDY = "General Study (C.7.2.1)"
_PSTUDY = "Patient Study (C.7.2.2)"
_SERIES = "General Series (C.7.3.1)"
_EQUIP = "General Equipment (C.7.5.1)"
_ACQ = "General Acquisition (C.7.10.1)"
_IMAGE = "General Image (C.7.6.1)"
_PIXEL = "Image Pixel (C.7.6.3)"
_CONTEXT = "Acquisition Context (C.7.6.14)"
_VL = "VL Image (C.8.12.1)"
_VLEQ = "VL Photographic Equipment (C.8.12.10)"
_VLACQ = "VL Photographic Acquisition (C.8.12.11)"
_ICC = "ICC Profile (C.11.15)"
_SOP = "SOP Common (C.12.1)"
_PRIVATE = "Private: sensitivity (PS3.5 7.8)"
_TRACKING = "Standard Extended: lesion tracking (as C.8.12.13)"
_LESION = "Private: lesion pin (PS3.5 7.8)"
_META = "File Meta Information (PS3.10 7.1)"

_EXIF = "EXIF {} of the photo, when present"
_CODE = "{}: Code Value, Coding Scheme Designator, Code Meaning"
_SITE = "the chosen body site (SNOMED CT, from pydicom's CID 4029 / CID 4031)"
_SIDE = "the chosen side as an SCT modifier: Left 7771000, Right 24028007, Both 51440002"

SOURCES: dict[str, tuple[str, str]] = {
    "PatientName": (_PATIENT, "FHIR Patient.name (official, else first), or the CLI option"),
    "PatientID": (_PATIENT, "the MRN: Patient.identifier with the registration's mrn_system"),
    "IssuerOfPatientID": (_PATIENT, "that identifier's system (urn:oid: -> bare OID)"),
    "IssuerOfPatientIDQualifiersSequence": (_PATIENT, "when the issuer is an OID or a URI"),
    "IssuerOfPatientIDQualifiersSequence>UniversalEntityID": (_PATIENT, "the OID or URI"),
    "IssuerOfPatientIDQualifiersSequence>UniversalEntityIDType": (_PATIENT, "`ISO` or `URI`"),
    "PatientBirthDate": (_PATIENT, "Patient.birthDate; empty when absent or partial"),
    "PatientSex": (_PATIENT, "Patient.gender male/female/other -> M/F/O; empty for unknown"),
    "StudyInstanceUID": (_STUDY, "the encounter session's study (one per launch/scan/claim)"),
    "StudyDate": (_STUDY, "Encounter.period.start, else the acquisition time"),
    "StudyTime": (_STUDY, "same as Study Date"),
    "ReferringPhysicianName": (_STUDY, "the encounter's referring physician, else empty"),
    "StudyID": (_STUDY, "Admission ID when it fits SH (16), else the tail of the Study UID"),
    "AccessionNumber": (_STUDY, "the order's accession number, else empty (IHE EBIW)"),
    "StudyDescription": (
        _STUDY,
        "Encounter serviceType/class/location, else `Clinical photography`",
    ),
    "AdmissionID": (_PSTUDY, "Encounter.identifier (visit number)"),
    "IssuerOfAdmissionIDSequence": (_PSTUDY, "that identifier's assigner (HL7 v2 HD)"),
    "IssuerOfAdmissionIDSequence>LocalNamespaceEntityID": (_PSTUDY, "the local namespace"),
    "IssuerOfAdmissionIDSequence>UniversalEntityID": (_PSTUDY, "the OID or URI"),
    "IssuerOfAdmissionIDSequence>UniversalEntityIDType": (_PSTUDY, "`ISO` or `URI`"),
    "Modality": (_SERIES, "`XC` (external-camera photography)"),
    "SeriesInstanceUID": (_SERIES, "derived from study + body site + side: one series per site"),
    "SeriesNumber": (_SERIES, "`1`, or the number the caller gave"),
    "SeriesDate": (_SERIES, "the acquisition date"),
    "SeriesTime": (_SERIES, "the acquisition time"),
    "SeriesDescription": (
        _SERIES,
        "body site and side, e.g. `Forearm, left`; else `Clinical photo`",
    ),
    "Laterality": (_SERIES, "empty, only when no body site is known (Type 2C)"),
    "OperatorsName": (_SERIES, "the signed-in user who took the photo (FHIR fhirUser name)"),
    "Manufacturer": (_EQUIP, "EXIF Make (the phone or camera); empty when absent"),
    "ManufacturerModelName": (_EQUIP, "EXIF Model"),
    "SoftwareVersions": (_EQUIP, "EXIF Software, then `capture-api <version>`"),
    "InstitutionName": (_EQUIP, "`CAPTURE_INSTITUTION_NAME`"),
    "StationName": (_EQUIP, "`CAPTURE_STATION_NAME`, else the device label if it fits SH (16)"),
    "AcquisitionDate": (_ACQ, "EXIF DateTimeOriginal, else the client's capture time"),
    "AcquisitionTime": (_ACQ, "same, with SubSecTimeOriginal"),
    "AcquisitionDateTime": (_ACQ, "same, with OffsetTimeOriginal as the offset when known"),
    "InstanceNumber": (_IMAGE, "order of the photo in its context (1, 2, ...)"),
    "PatientOrientation": (_IMAGE, "empty (Type 2C: a photo has no patient axes we know)"),
    "ContentDate": (_IMAGE, "the acquisition date"),
    "ContentTime": (_IMAGE, "the acquisition time"),
    "ImageType": (_IMAGE, "`ORIGINAL\\PRIMARY`; `DERIVED\\PRIMARY` after a re-encode/transcode"),
    "BurnedInAnnotation": (_IMAGE, "`NO`"),
    "RecognizableVisualFeatures": (_IMAGE, "`YES` for face/head sites, FACE category, no site"),
    "LossyImageCompression": (_IMAGE, "`01` (camera JPEG)"),
    "LossyImageCompressionRatio": (_IMAGE, "per lossy step: rows x columns x samples / bytes"),
    "LossyImageCompressionMethod": (_IMAGE, "`ISO_10918_1`; HEIC: `ISO_23008_2\\ISO_10918_1`"),
    "DerivationDescription": (_IMAGE, "what was done and why (rotation re-encode, HEIC)"),
    "ImageComments": (_IMAGE, "the clinician's note"),
    "SamplesPerPixel": (_PIXEL, "JPEG SOF component count (3, or 1 for greyscale)"),
    "PhotometricInterpretation": (_PIXEL, "`YBR_FULL_422` (any chroma subsampling, CP-1653)"),
    "Rows": (_PIXEL, "JPEG SOF height (after a lossless rotation)"),
    "Columns": (_PIXEL, "JPEG SOF width"),
    "BitsAllocated": (_PIXEL, "`8`"),
    "BitsStored": (_PIXEL, "`8`"),
    "HighBit": (_PIXEL, "`7`"),
    "PixelRepresentation": (_PIXEL, "`0`"),
    "PlanarConfiguration": (_PIXEL, "`0` (colour only)"),
    "PixelData": (_PIXEL, "the camera's JPEG, metadata segments removed, one fragment"),
    "AcquisitionContextSequence": (_CONTEXT, "empty (Type 2)"),
    "AcquisitionContextDescription": (_CONTEXT, "the free-text view chosen in the app"),
    "ImageLaterality": (_VL, "`L`, `R`, `B` as chosen; `U` for an unpaired site"),
    "AnatomicRegionSequence": (_VL, _SITE),
    "AnatomicRegionSequence>CodeValue": (_VL, _CODE.format("the site's SNOMED CT code")),
    "AnatomicRegionSequence>CodingSchemeDesignator": (_VL, "`SCT`"),
    "AnatomicRegionSequence>CodeMeaning": (_VL, "the site's name in the context group"),
    "AnatomicRegionSequence>ContextUID": (_VL, "the context group's UID (CID 4029 or 4031)"),
    "AnatomicRegionSequence>AnatomicRegionModifierSequence": (_VL, _SIDE),
    "AnatomicRegionSequence>AnatomicRegionModifierSequence>CodeValue": (_VL, "laterality code"),
    "AnatomicRegionSequence>AnatomicRegionModifierSequence>CodingSchemeDesignator": (_VL, "`SCT`"),
    "AnatomicRegionSequence>AnatomicRegionModifierSequence>CodeMeaning": (_VL, "e.g. `Left`"),
    "LensMake": (_VLEQ, _EXIF.format("LensMake")),
    "LensModel": (_VLEQ, _EXIF.format("LensModel")),
    "LensSpecification": (_VLEQ, _EXIF.format("LensSpecification")),
    "ExposureTimeInSeconds": (_VLACQ, _EXIF.format("ExposureTime")),
    "FNumber": (_VLACQ, _EXIF.format("FNumber")),
    "PhotographicSensitivity": (_VLACQ, _EXIF.format("ISOSpeedRatings")),
    "FocalLength": (_VLACQ, _EXIF.format("FocalLength")),
    "FocalLengthIn35mmFilm": (_VLACQ, _EXIF.format("FocalLengthIn35mmFilm")),
    "ExposureBiasValue": (_VLACQ, _EXIF.format("ExposureBiasValue")),
    "ExposureProgram": (_VLACQ, _EXIF.format("ExposureProgram")),
    "MeteringMode": (_VLACQ, _EXIF.format("MeteringMode")),
    "LightSource": (_VLACQ, _EXIF.format("LightSource")),
    "ExposureMode": (_VLACQ, _EXIF.format("ExposureMode")),
    "WhiteBalance": (_VLACQ, _EXIF.format("WhiteBalance")),
    "DigitalZoomRatio": (_VLACQ, _EXIF.format("DigitalZoomRatio")),
    "SceneCaptureType": (_VLACQ, _EXIF.format("SceneCaptureType")),
    "EXIFVersion": (_VLACQ, _EXIF.format("ExifVersion")),
    "FlashFiringStatus": (_VLACQ, "EXIF Flash bit 0"),
    "FlashReturnStatus": (_VLACQ, "EXIF Flash bits 1-2"),
    "FlashMode": (_VLACQ, "EXIF Flash bits 3-4"),
    "FlashFunctionPresent": (_VLACQ, "EXIF Flash bit 5"),
    "FlashRedEyeMode": (_VLACQ, "EXIF Flash bit 6"),
    "ICCProfile": (_ICC, "the JPEG's APP2 ICC profile (reassembled) or the HEIF colour profile"),
    "SpecificCharacterSet": (_SOP, "`ISO_IR 192` (UTF-8) when any text is not ASCII, else absent"),
    "SOPClassUID": (_SOP, "`1.2.840.10008.5.1.4.1.1.77.1.4` (VL Photographic Image Storage)"),
    "SOPInstanceUID": (_SOP, "derived from the client's capture id (same id, same UID)"),
    "InstanceCreationDate": (_SOP, "when the object was built"),
    "InstanceCreationTime": (_SOP, "when the object was built"),
    "TimezoneOffsetFromUTC": (_SOP, "EXIF OffsetTimeOriginal, else the client's, else server's"),
    "ContributingEquipmentSequence": (_SOP, "capture itself, as processing equipment"),
    "ContributingEquipmentSequence>PurposeOfReferenceCodeSequence": (
        _SOP,
        "(109102, DCM, Processing Equipment)",
    ),
    "ContributingEquipmentSequence>PurposeOfReferenceCodeSequence>CodeValue": (_SOP, "`109102`"),
    "ContributingEquipmentSequence>PurposeOfReferenceCodeSequence>CodingSchemeDesignator": (
        _SOP,
        "`DCM`",
    ),
    "ContributingEquipmentSequence>PurposeOfReferenceCodeSequence>CodeMeaning": (
        _SOP,
        "`Processing Equipment`",
    ),
    "ContributingEquipmentSequence>Manufacturer": (_SOP, "`capture (open source)`"),
    "ContributingEquipmentSequence>ManufacturerModelName": (_SOP, "`capture-api`"),
    "ContributingEquipmentSequence>SoftwareVersions": (_SOP, "the capture-api version"),
    "ContributingEquipmentSequence>ContributionDateTime": (_SOP, "when the object was built"),
    "ContributingEquipmentSequence>ContributionDescription": (_SOP, "what capture did"),
    "(0011,0010)": (_PRIVATE, "private creator `CAPTURE SENSITIVITY 1` (block xx = 10)"),
    "(0011,xx10)": (_PRIVATE, "HL7 v3 Confidentiality: `N`, `R` or `V`"),
    "(0011,xx11)": (_PRIVATE, "categories: ActCode `SEX`, `SDV`, `ADOL`; ours `BREAST`, `FACE`"),
    "(0011,xx12)": (_PRIVATE, "`normal`, `restricted` or `very-restricted`"),
    "TrackingID": (_TRACKING, "the lesion's label `L1`, `L2`, ... (a photo of a pinned lesion)"),
    "TrackingUID": (_TRACKING, "the lesion's UID, the same in every photo of it (a 2.25 UID)"),
    "(0013,0010)": (_LESION, "private creator `CAPTURE LESION 1` (a photo of a pinned lesion)"),
    "(0013,xx10)": (_LESION, "the body map's view of the pin: `front`, `back`, `head`, ..."),
    "(0013,xx11)": (_LESION, "the pin's x on that view, 0..1 from its left"),
    "(0013,xx12)": (_LESION, "the pin's y on that view, 0..1 from its top"),
    "(0013,xx13)": (_LESION, "the lesion's description, as the nurse typed it"),
    "FileMetaInformationGroupLength": (_META, "computed on writing"),
    "FileMetaInformationVersion": (_META, "`00\\01`"),
    "MediaStorageSOPClassUID": (_META, "= SOP Class UID"),
    "MediaStorageSOPInstanceUID": (_META, "= SOP Instance UID"),
    "TransferSyntaxUID": (_META, "`1.2.840.10008.1.2.4.50`; `.51` for an 8-bit SOF1 stream"),
    "ImplementationClassUID": (_META, "capture's implementation class UID (a 2.25 UID)"),
    "ImplementationVersionName": (_META, "`CAPTURE_0_1`"),
}

_PRIVATE_NAMES = {
    "(0011,xx10)": "Confidentiality (private)",
    "(0011,xx11)": "Sensitivity Categories (private)",
    "(0011,xx12)": "Sensitivity Level (private)",
    "(0013,xx10)": "Lesion Map View (private)",
    "(0013,xx11)": "Lesion Pin X (private)",
    "(0013,xx12)": "Lesion Pin Y (private)",
    "(0013,xx13)": "Lesion Description (private)",
}
_MODULE_ORDER = list(dict.fromkeys(module for module, _ in SOURCES.values()))


# --- the encoded objects ----------------------------------------------------------------------


def _full_context(capture_id: str) -> CaptureContext:
    """A context filling every input the encoder has: what an EHR launch gives, and more."""
    site, side = resolve("left forearm")
    hospital = Issuer("HOSP", "1.2.826.0.1.3680043.10.1", IdType.ISO)
    return CaptureContext(
        capture_id=capture_id,
        patient=Patient(
            "MRN-0001",
            Issuer(None, "1.2.826.0.1.3680043.10.2", IdType.ISO),
            PersonName("Müller", "Zoë"),  # non-ASCII: Specific Character Set
            dt.date(1970, 1, 31),
            Sex.FEMALE,
        ),
        encounter=Encounter(
            "V-1", hospital, "Wound clinic", dt.datetime(2026, 1, 5, 9, tzinfo=dt.UTC), "A-1"
        ),
        body_site=site,
        laterality=side,
        view="close-up with ruler",
        note="wound edge",
        sensitivity=Sensitivity.parse("restricted", ["SEX"]),
        operator=PersonName("Nurse", "Ann"),
        device="PHONE-01",
        lesion=LesionMark("2.25.1234", "L3", "pigmented", LesionPin("front", 0.21, 0.45)),
    )


def encoded_datasets() -> Iterator[Dataset]:
    """Every well-formed sample, wrapped with the full context, plus one with no site."""
    options = EncoderOptions(institution_name="Example Hospital", station_name="CAPTURE-01")
    samples = well_formed_samples()
    for i, path in enumerate(samples):
        yield _read_back(wrap_photo(path.read_bytes(), _full_context(f"doc-{i}"), options))
    bare = CaptureContext(capture_id="doc-no-site", patient=Patient("MRN-0002"))
    yield _read_back(wrap_photo(samples[0].read_bytes(), bare))


def _read_back(wrapped: object) -> Dataset:
    """The Part 10 bytes as any reader sees them (File Meta group length included)."""
    data: bytes = wrapped.to_bytes()  # type: ignore[attr-defined]
    return pydicom.dcmread(io.BytesIO(data))


@dataclass(frozen=True)
class Written:
    """One attribute as written: its path, tag and VR."""

    path: str
    tag: str
    vr: str


@cache
def written_attributes() -> dict[str, Written]:
    """The union, over every encoded dataset, of the attributes written (nested included)."""
    found: dict[str, Written] = {}
    for ds in encoded_datasets():
        for dataset in (ds.file_meta, ds):
            _walk(dataset, "", found)
    return found


def _walk(ds: Dataset, prefix: str, found: dict[str, Written]) -> None:
    for elem in ds:
        group, element = elem.tag.group, elem.tag.element
        if elem.tag.is_private_creator:
            name = tag = f"({group:04X},{element:04X})"
        elif elem.tag.is_private:  # the block byte depends on the creator's slot
            name = tag = f"({group:04X},xx{element & 0xFF:02X})"
        else:
            name, tag = elem.keyword, f"({group:04X},{element:04X})"
        path = prefix + name
        found.setdefault(path, Written(path, tag, elem.VR))
        if elem.VR == "SQ":
            for item in elem.value:
                _walk(item, path + ">", found)


# --- the table --------------------------------------------------------------------------------


def _display(path: str) -> str:
    *parents, last = path.split(">")
    if last.startswith("("):
        label = _PRIVATE_NAMES.get(last, "Private Creator")
    else:
        label = dictionary_description(last)
    return ">" * len(parents) + label


def table() -> str:
    """The Markdown table of every written attribute, in IOD module order."""
    written = written_attributes()
    ordered = sorted(
        (p for p in written if p in SOURCES),
        key=lambda p: (_MODULE_ORDER.index(SOURCES[p][0]), list(SOURCES).index(p)),
    )
    lines = [
        "| module | attribute | tag | VR | value and where it comes from |",
        "|---|---|---|---|---|",
    ]
    for path in ordered:
        module, source = SOURCES[path]
        attr = written[path]
        lines.append(f"| {module} | {_display(path)} | {attr.tag} | {attr.vr} | {source} |")
    return "\n".join(lines)


def documented_block(text: str) -> str:
    """The generated part of ``text`` (between the markers)."""
    match = re.search(re.escape(BEGIN) + r"\n(.*?)\n" + re.escape(END), text, re.DOTALL)
    if match is None:
        raise ValueError(f"{DOC.name} has no attribute table markers")
    return match.group(1)


def write_doc() -> None:
    text = DOC.read_text()
    DOC.write_text(text.replace(documented_block(text), table()))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help=f"rewrite the table in {DOC.name}")
    if parser.parse_args().write:
        write_doc()
    else:
        print(table())
