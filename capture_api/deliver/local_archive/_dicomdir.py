"""Directory records and the DICOMDIR file (Basic Directory IOD, PS3.3 F.3), made from parts.

Why the DICOMDIR's bytes are put together here and not by pydicom's ``FileSet``: the
DICOMDIR is rewritten from the index after changes, and ``FileSet`` re-creates and
re-encodes every directory record on every write. Measured on this project's 2-core machine
with pydicom 3.0.2: ``FileSet._write_dicomdir`` takes 0.7 s for 2,000 instances and 4 to 6 s
for 10,000, loading a DICOMDIR of 10,000 another 4 s, and ``FileSet.add`` is quadratic (19 s
to add 2,000). A 10,000-instance rewrite every couple of seconds would keep a core busy.
Here every record is encoded once, by pydicom (``write_dataset``, Explicit VR Little
Endian), when its instance is stored, and kept in the index; a rewrite only lays the
records out and patches two offsets in each: about 40 ms for 10,000 instances, 1 % of
pydicom's time (``make bench`` prints both).

The layout, PS3.10 7.1 and 8, PS3.3 F.3 (Table F.3-3) and PS3.5 7.5::

    128-byte preamble, "DICM", File Meta Information (group 0002, pydicom encodes it)
    (0004,1130) File-set ID
    (0004,1200) UL  offset of the first root record      } pydicom encodes these too
    (0004,1202) UL  offset of the last root record       }
    (0004,1212) US  File-set Consistency Flag 0000H      }
    (0004,1220) SQ  Directory Record Sequence, defined length:
                    (FFFE,E000) item tag + UL item length, then one record per item,
                    PATIENT, its STUDY records, each one's SERIES, each one's IMAGE
                    records (pre-order, as pydicom and DCMTK write them)

Every offset is the number of bytes from the first byte of the file (the preamble belongs
to the File Meta Information, PS3.10 7.1) to the record's item tag. In each record,
(0004,1400) Offset of the Next Directory Record points to the next record on the same
level (0 for the last), and (0004,1420) Offset of Referenced Lower-Level Directory Entity
to the first record one level down (0 for a leaf). A record is encoded with its elements
in tag order, and group 0004's first three are always (0004,1400) UL, (0004,1410) US
Record In-use Flag, (0004,1420) UL, so the two offsets sit at fixed places in the record:
``_NEXT_AT`` and ``_LOWER_AT`` (checked when a record is encoded).

The result is byte for byte what pydicom writes for the same records (a test loads ours
with ``FileSet``, writes it back with pydicom and compares), and DCMTK's ``dcmdump`` and
dicom3tools' ``dciodvfy`` read it without a complaint.
"""

from __future__ import annotations

import struct
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.fileset import DIRECTORY_RECORDERS, _four_level_record_type, _single_level_record_type
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import UID, ExplicitVRLittleEndian, MediaStorageDirectoryStorage

from capture_api.encode.uids import IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION_NAME
from capture_api.exceptions import ArchiveRejected
from capture_api.store.archive_index import Tree

#: File-set ID (0004,1130): CS, at most 16 characters (PS3.3 F.3.2.1).
FILE_SET_ID = "CAPTURE"

_ITEM = b"\xfe\xff\x00\xe0"  # (FFFE,E000) Item, little endian
_SEQUENCE = b"\x04\x00\x20\x12SQ\x00\x00"  # (0004,1220) SQ, 2 reserved bytes, then UL length
_NEXT_TAG, _LOWER_TAG = b"\x04\x00\x00\x14", b"\x04\x00\x20\x14"  # (0004,1400), (0004,1420)
_NEXT_AT = 8  # tag 4 + VR 2 + length 2
_LOWER_AT = 30  # (0004,1400) 12 bytes + (0004,1410) US 10 bytes + 8
_UL = struct.Struct("<I")


# --- records ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Records:
    """An instance's PATIENT, STUDY, SERIES and leaf records (PS3.3 F.5), not yet encoded
    (most instances belong to a patient, study and series the index already has)."""

    patient: Dataset
    study: Dataset
    series: Dataset
    leaf: Dataset  # Referenced File ID (0004,1500) is set by ``leaf_record``

    def upper(self, level: int) -> bytes:
        """The encoded PATIENT (0), STUDY (1) or SERIES (2) record."""
        return encode_record((self.patient, self.study, self.series)[level])

    def leaf_record(self, file_id: Sequence[str]) -> bytes:
        self.leaf.ReferencedFileID = list(file_id)
        return encode_record(self.leaf)


def directory_records(ds: Dataset) -> Records:
    """The records pydicom's ``FileSet.add`` would make for ``ds`` (``DIRECTORY_RECORDERS``).

    ``DIRECTORY_RECORDERS`` is public; the two record-type rules are pydicom-internal
    (pinned by ``pydicom<4``, and a test compares our DICOMDIR with the one ``FileSet``
    writes for the same records).

    Raises ``ArchiveRejected`` for an instance without a patient (hanging protocols,
    palettes: single-level records this archive does not keep) or without a Type 1 key.
    """
    if _single_level_record_type(ds) != "PATIENT":
        raise ArchiveRejected("the instance has no patient level; the archive keeps patients' data")
    kinds = ("PATIENT", "STUDY", "SERIES", _four_level_record_type(ds))
    records = [_record(ds, kind) for kind in kinds]
    leaf = records[3]
    leaf.ReferencedFileID = None
    leaf.ReferencedSOPClassUIDInFile = ds.SOPClassUID
    leaf.ReferencedSOPInstanceUIDInFile = ds.SOPInstanceUID
    leaf.ReferencedTransferSyntaxUIDInFile = ds.file_meta.TransferSyntaxUID
    return Records(*records)


def _record(ds: Dataset, kind: str) -> Dataset:
    try:
        record = DIRECTORY_RECORDERS[kind](ds)
    except ValueError as exc:  # a Type 1 record key is missing (PS3.3 F.5)
        raise ArchiveRejected(f"the instance cannot be indexed in a DICOMDIR: {exc}") from exc
    record.OffsetOfTheNextDirectoryRecord = 0
    record.RecordInUseFlag = 0xFFFF
    record.OffsetOfReferencedLowerLevelDirectoryEntity = 0
    record.DirectoryRecordType = kind
    if "SpecificCharacterSet" in ds:
        record.SpecificCharacterSet = ds.SpecificCharacterSet
    return record


def encode_record(record: Dataset) -> bytes:
    """The record's elements, Explicit VR Little Endian, as one item holds them."""
    fp = DicomBytesIO()
    fp.is_little_endian, fp.is_implicit_VR = True, False
    write_dataset(fp, record)
    data = fp.getvalue()
    if data[:4] != _NEXT_TAG or data[_LOWER_AT - 8 : _LOWER_AT - 4] != _LOWER_TAG:
        raise ValueError("a directory record must start with (0004,1400), (0004,1410), (0004,1420)")
    return data


# --- the file ---------------------------------------------------------------------------------


@dataclass
class _Layout:
    """Records in file order, with the index of each one's next sibling and first child."""

    records: list[bytes]
    next: list[int]
    lower: list[int]


def dicomdir_bytes(tree: Tree, fileset_id: str = FILE_SET_ID) -> bytes:
    """The complete DICOMDIR file for ``tree`` (records without instances are left out)."""
    layout = _layout(tree)
    head_size = len(_head(tree.fileset_uid, fileset_id, 0, 0))
    items_start = head_size + len(_SEQUENCE) + 4
    offsets, position = [], items_start
    for record in layout.records:
        offsets.append(position)
        position += 8 + len(record)
    body = bytearray(b"".join(_ITEM + _UL.pack(len(r)) + r for r in layout.records))
    for i, start in enumerate(offsets):
        at = start - items_start + 8
        if layout.next[i] >= 0:
            _UL.pack_into(body, at + _NEXT_AT, offsets[layout.next[i]])
        if layout.lower[i] >= 0:
            _UL.pack_into(body, at + _LOWER_AT, offsets[layout.lower[i]])
    first = last = 0
    if offsets:  # the root level is record 0 and the records its ``next`` chain reaches
        root = 0
        while layout.next[root] >= 0:
            root = layout.next[root]
        first, last = offsets[0], offsets[root]
    head = _head(tree.fileset_uid, fileset_id, first, last)
    return b"".join((head, _SEQUENCE, _UL.pack(len(body)), body))


def _head(fileset_uid: str, fileset_id: str, first: int, last: int) -> bytes:
    """Preamble, File Meta Information and the elements before the record sequence."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MediaStorageDirectoryStorage
    meta.MediaStorageSOPInstanceUID = UID(fileset_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID(IMPLEMENTATION_CLASS_UID)
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    ds = Dataset()
    ds.FileSetID = fileset_id
    ds.OffsetOfTheFirstDirectoryRecordOfTheRootDirectoryEntity = first
    ds.OffsetOfTheLastDirectoryRecordOfTheRootDirectoryEntity = last
    ds.FileSetConsistencyFlag = 0
    fp = DicomBytesIO()
    fp.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(fp, meta, enforce_standard=True)
    fp.is_little_endian, fp.is_implicit_VR = True, False
    write_dataset(fp, ds)
    return bytes(fp.getvalue())


def _layout(tree: Tree) -> _Layout:
    """Pre-order: each patient, then its studies, each with its series and their images."""
    images = _children((s, r) for s, r in tree.images)
    series = _children((st, (i, r)) for i, st, r in tree.series if i in images)
    studies = _children((p, (i, r)) for i, p, r in tree.studies if i in series)
    layout = _Layout([], [], [])
    patients = [(r, _study_nodes(studies.get(i, []), series, images)) for i, r in tree.patients]
    _emit([p for p in patients if p[1]], layout)
    return layout


_Node = tuple[bytes, list["_Node"]]


def _study_nodes(
    studies: list[tuple[int, bytes]],
    series: dict[int, list[tuple[int, bytes]]],
    images: dict[int, list[bytes]],
) -> list[_Node]:
    return [
        (record, [(r, [(leaf, []) for leaf in images[s]]) for s, r in series[study]])
        for study, record in studies
    ]


_K = TypeVar("_K")
_V = TypeVar("_V")


def _children(pairs: Iterable[tuple[_K, _V]]) -> dict[_K, list[_V]]:
    grouped: dict[_K, list[_V]] = defaultdict(list)
    for parent, child in pairs:
        grouped[parent].append(child)
    return grouped


def _emit(siblings: list[_Node], layout: _Layout) -> int:
    """Append ``siblings`` (and their subtrees) to ``layout``; returns the first's index."""
    first = previous = -1
    for record, children in siblings:
        index = len(layout.records)
        layout.records.append(record)
        layout.next.append(-1)
        layout.lower.append(-1)
        if previous >= 0:
            layout.next[previous] = index
        else:
            first = index
        previous = index
        if children:
            layout.lower[index] = _emit(children, layout)
    return first
