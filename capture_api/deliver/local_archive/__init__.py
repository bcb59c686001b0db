"""The archive that needs no server: DICOM Part 10 files, an index and a DICOMDIR in a folder.

The folder is a DICOM File-set (PS3.10 8, PS3.3 Annex F): every delivered photo is written as
the Part 10 file the encoder produced, unchanged, under a File ID ``PTnnnnnn/STnnnnnn/
SEnnnnnn/IMnnnnnn``, and the DICOMDIR (Basic Directory IOD, PS3.3 F.3) lists it under
PATIENT / STUDY / SERIES / IMAGE records (PS3.3 F.5), so any DICOM viewer can open the folder.

Beside them, ``.capture-index.sqlite`` (``capture_api.store.archive_index``) indexes every
instance, so that storing, checking and querying cost the same with 10 or 10,000 photos
held. The DICOMDIR is made from the index, debounced: at once when the archive was idle,
then at most about once a second while photos keep arriving (an interval that follows the
rewrite's cost, at most 2 s), and when the service stops. An
instance is "visible" (verified) once the DICOMDIR names it. ``.lock`` serialises DICOMDIR
writers and rebuilds between processes. ``capture-api archive rebuild`` recreates the index
and the DICOMDIR from the files.

Modules: ``_archive`` (``LocalArchive``), ``_describe`` (what the index keeps of a header),
``_dicomdir`` (directory records and the DICOMDIR's bytes), ``_writer`` (the debounced
rewrite), ``_files`` (atomic writes, the folder lock), ``_rebuild``.
"""

from capture_api.deliver.local_archive._archive import (
    DICOMDIR_NAME,
    PHOTO_MODALITY,
    LocalArchive,
)
from capture_api.deliver.local_archive._dicomdir import FILE_SET_ID
from capture_api.deliver.local_archive._files import LOCK_NAME
from capture_api.deliver.local_archive._rebuild import RebuildReport
from capture_api.store.archive_index import INDEX_NAME

__all__ = [
    "DICOMDIR_NAME",
    "FILE_SET_ID",
    "INDEX_NAME",
    "LOCK_NAME",
    "PHOTO_MODALITY",
    "LocalArchive",
    "RebuildReport",
]
