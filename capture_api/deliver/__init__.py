"""Delivery: the outbox that takes each encoded photo to the archive, and the archives.

``Archive`` (``archive``) is everything the rest of capture asks of an archive: store an
instance, whether users can see it, the patient's earlier photos, a small image, an
instance's sensitivity labels, how others retrieve what it holds (``Retrieval``). Two
implementations: ``DicomWebArchive`` (STOW-RS, QIDO-RS, WADO-RS to a PACS/VNA, with
``archive_auth``) and ``LocalArchive`` (a DICOM File-set in a folder). Only the composition
root (``capture_api.runtime``) and the CLI choose between them; every other package holds an
``Archive``. ``OutboxWorker`` (``outbox``) delivers and verifies, retrying with backoff;
``thumbnails`` makes (and blurs) the small JPEGs. ``enqueue_object`` (``documents``) queues the
DICOM documents capture makes (SR, KOS) on the photos' road.
"""

from capture_api.capture.retrieval import Retrieval
from capture_api.deliver.archive import Archive, InstanceRef, PriorImage, StoreResult
from capture_api.deliver.archive_auth import auth_from_settings, credentials_hint
from capture_api.deliver.dicomweb import DicomWebArchive
from capture_api.deliver.documents import document_id, enqueue_object
from capture_api.deliver.instance_labels import InstanceLabels, labels_from_json
from capture_api.deliver.local_archive import LocalArchive
from capture_api.deliver.outbox import OutboxPolicy, OutboxWorker
from capture_api.deliver.thumbnails import blurred, thumbnail_from_part10

__all__ = [
    "Archive",
    "DicomWebArchive",
    "InstanceLabels",
    "InstanceRef",
    "LocalArchive",
    "OutboxPolicy",
    "OutboxWorker",
    "PriorImage",
    "Retrieval",
    "StoreResult",
    "auth_from_settings",
    "blurred",
    "credentials_hint",
    "document_id",
    "enqueue_object",
    "labels_from_json",
    "thumbnail_from_part10",
]
