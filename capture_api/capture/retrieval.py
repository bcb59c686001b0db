"""Where other systems retrieve the instances capture stored (a value, no I/O).

An archive says how it can be reached (``capture_api.deliver.Archive.retrieval``); whoever
references its instances -- a worklist item's Output Information Sequence (PS3.4 Table
CC.2.5-3) -- writes the retrieval sequences of PS3.3 Table 10-3b from it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Retrieval:
    """How another system retrieves what this archive holds: the retrieval sequences of a
    reference to its instances (PS3.3 Table 10-3b "Referenced Instances and Access Macro",
    e.g. a worklist item's Output Information Sequence, PS3.4 Table CC.2.5-3).

    ``wado_rs_base``: WADO-RS Retrieval Sequence (0040,E025) > Retrieve URL (0008,1190) is
    ``{base}/studies/{study}/series/{series}``. ``ae_title``: DICOM Retrieval Sequence
    (0040,E021) > Retrieve AE Title (0008,0054), for C-MOVE/C-GET. ``file_set_id`` and
    ``file_set_uid``: DICOM Media Retrieval Sequence (0040,E022) > Storage Media File-Set ID
    (0088,0130) and UID (0088,0140), an archive that is a File-set on a disk, not a server.
    """

    wado_rs_base: str | None = None
    ae_title: str | None = None
    file_set_id: str | None = None
    file_set_uid: str | None = None

    @property
    def offered(self) -> bool:
        """At least one way to retrieve (Table 10-3b requires one of the sequences)."""
        return bool(self.wado_rs_base or self.ae_title or self.file_set_uid)
