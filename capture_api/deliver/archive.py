"""What the outbox and the review views need from an archive, whatever the archive is.

Two implementations: ``DicomWebArchive`` (STOW-RS/QIDO-RS/WADO-RS to a PACS/VNA, PS3.18) and
``LocalArchive`` (Part 10 files + DICOMDIR in a folder, so ``make run`` works with no server).
Everything above ``deliver`` asks an archive through this protocol only, never by its class
(only the composition root, ``capture_api.runtime``, and the CLI name the classes): a third
archive gets delivery, verification, the priors view and the timeline by implementing it.
All methods are synchronous: the outbox runs them in worker threads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from capture_api.capture.lesions import LesionMark
from capture_api.capture.retrieval import Retrieval
from capture_api.deliver.instance_labels import InstanceLabels
from capture_api.store.spool_source import SpoolSource

#: A Part 10 instance to store: in memory, or spooled (streamed to the archive in chunks).
Part10 = bytes | SpoolSource

#: The photo modalities the review views list: External-camera Photography (VL Photographic
#: Image) and Dermoscopy (Dermoscopic Photography Image), PS3.3 C.7.3.1.1.1.
PHOTO_MODALITIES: tuple[str, ...] = ("XC", "DMS")


@dataclass(frozen=True)
class InstanceRef:
    """The three UIDs that locate an instance (PS3.18 resource path)."""

    study_uid: str
    series_uid: str
    sop_instance_uid: str


@dataclass(frozen=True)
class StoreResult:
    """The archive has the instance (new, or an identical one it already held).

    ``warnings`` are the archive's warnings in words (PS3.18 202 / Warning Reason), recorded on
    the capture; ``duplicate`` says the archive already held this SOP Instance UID.
    """

    warnings: tuple[str, ...] = ()
    duplicate: bool = False
    retrieve_url: str | None = None
    #: The SOP Class UID the archive's Referenced SOP Sequence gives for it, when it says.
    sop_class_uid: str | None = None


@dataclass(frozen=True)
class PriorImage:
    """An earlier photo of the patient, as found in the archive (QIDO-RS attributes)."""

    ref: InstanceRef
    acquired: str | None  # DICOM DT or DA+TM, as the archive returned it
    body_site_code: str | None  # Anatomic Region Sequence > Code Value (SCT)
    body_site_meaning: str | None
    laterality: str | None  # Image Laterality (L, R, B, U)
    description: str | None  # Series Description
    comment: str | None  # Image Comments (the capture note)
    modality: str | None = None  # XC (VL Photographic) or DMS (Dermoscopic Photography)


class Archive(Protocol):
    """An archive the outbox can deliver to and the review views can read from."""

    def store(self, part10: Part10, ref: InstanceRef) -> StoreResult:
        """Store one Part 10 instance (bytes, or a spooled source read in chunks: an archive
        that sends it on streams it). Raise ArchiveUnavailable / ArchiveRejected."""
        ...

    def is_visible(self, ref: InstanceRef) -> bool:
        """Whether a query for the instance finds it (QIDO-RS), i.e. users can see it."""
        ...

    def visible(self, refs: Sequence[InstanceRef]) -> set[str]:
        """The SOP Instance UIDs of ``refs`` a query finds: one query per study, however many
        instances of it wait to be verified (the outbox verifies a study's photos together)."""
        ...

    def find_priors(
        self,
        patient_id: str,
        issuer: str | None = None,
        body_site_code: str | None = None,
        limit: int = 50,
    ) -> list[PriorImage]:
        """The patient's photos (XC and DMS), newest first, optionally of one coded site."""
        ...

    def thumbnail(self, ref: InstanceRef, max_size: int = 256) -> bytes:
        """A small upright JPEG of the instance (at most ``max_size`` px on the long side)."""
        ...

    def labels(self, refs: Sequence[InstanceRef]) -> dict[str, InstanceLabels | None]:
        """Each instance's sensitivity block and encounter, by SOP Instance UID.

        ``None`` for an instance the archive should hold but cannot answer for (not there
        under these UIDs, its file gone, its metadata request failing): the timeline shows
        it restricted. An instance left out of the answer is one the archive cannot say
        anything about (no metadata resource, or metadata without the instance).
        """
        ...

    def retrieval(self) -> Retrieval:
        """How others retrieve what this archive holds (no network call)."""
        ...

    def instance(self, ref: InstanceRef) -> bytes:
        """The stored Part 10 instance as it is (WADO-RS Retrieve Instance, PS3.18 10.4).

        For measuring a photo whose spooled bytes are gone. Raise ArchiveRejected when the
        archive does not hold it, ArchiveUnavailable when it cannot answer now.
        """
        ...

    def lesions(self, refs: Sequence[InstanceRef]) -> dict[str, LesionMark]:
        """The lesion each instance shows (Tracking ID/UID, pin), by SOP Instance UID.

        Instances that name no lesion, or that the archive cannot read, are left out.
        """
        ...

    def close(self) -> None:
        """Release connections."""
        ...
