"""DICOM UIDs that are stable for the same input, so a retried capture is the same instance.

Without a configured root we use the ``2.25.`` form (PS3.5 B.2, ISO/IEC 9834-8) with a
name-based RFC 4122 version-5 UUID, so the UID is a function of its inputs. (pydicom's
``generate_uid(prefix=None)`` ignores ``entropy_srcs`` and is random, which would turn a
retry into a duplicate.) With a root, pydicom hashes the inputs into a suffix under it.
"""

from __future__ import annotations

import uuid

from pydicom.uid import UID, generate_uid

#: Namespace of capture's name-based UUIDs (itself uuid5(NAMESPACE_URL, project URL)).
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/capture-api/capture")
#: Separates the parts before hashing, so ("ab", "c") and ("a", "bc") differ.
_SEPARATOR = "\x1f"

IMPLEMENTATION_VERSION_NAME = "CAPTURE_0_1"


def derived_uid(root: str | None, *parts: str) -> str:
    """The UID for ``parts`` under ``root`` (or 2.25 when no root is configured)."""
    name = _SEPARATOR.join(parts)
    if root is None:
        return f"2.25.{uuid.uuid5(_NAMESPACE, name).int}"
    return str(generate_uid(prefix=f"{root}.", entropy_srcs=[name]))


def instance_uid(root: str | None, capture_id: str) -> str:
    """SOP Instance UID of a capture: the same capture id always gives the same UID."""
    return derived_uid(root, "sop-instance", capture_id)


def is_valid_uid(value: str) -> bool:
    """A syntactically valid UID of at most 64 characters (PS3.5 9.1)."""
    return bool(value) and UID(value).is_valid


#: Identifies this implementation in File Meta (0002,0012); fixed across releases.
IMPLEMENTATION_CLASS_UID = derived_uid(None, "implementation-class", "capture-api")
