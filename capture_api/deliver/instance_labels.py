"""What an archive can say about an instance's sensitivity and encounter from its own index.

The timeline needs, for photos this service did not capture, the sensitivity private block
(group 0011, creator ``CAPTURE SENSITIVITY 1``, see ``capture_api.encode.vl_photo``), the
Admission ID (0038,0010) and the Study Description (0008,1030). An archive that keeps them
in an index answers for many instances at once without reading a header per instance:
``LocalArchive`` does; ``capture_api.review.timeline`` asks any archive that has the
method (a ``runtime_checkable`` protocol, so the ``Archive`` protocol itself is unchanged).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from capture_api.deliver.archive import InstanceRef


@dataclass(frozen=True)
class InstanceLabels:
    """An instance's sensitivity block and encounter, as text from its header."""

    marked: bool  # the instance carries the sensitivity block (else nobody marked it)
    confidentiality: str | None  # HL7 v3 Confidentiality code in the block (N, R, V, ...)
    level: str | None  # the block's level text (normal, restricted, very-restricted)
    admission_id: str | None
    study_description: str | None


@runtime_checkable
class LabelledArchive(Protocol):
    """An archive that answers ``labels`` from its index."""

    def labels(self, refs: Sequence[InstanceRef]) -> dict[str, InstanceLabels | None]:
        """By SOP Instance UID: the labels, or None when the archive should hold the instance
        but cannot say (not there under these UIDs, file gone). A ref left out of the answer
        is one the archive cannot say anything about."""
        ...
