"""Opening a patient's capture context, and finishing the encounter.

``EhrContexts`` (``ehr_context``) opens contexts from a SMART launch, a wristband scan or a
worklist claim, and holds the safety rule: a session launched for one patient never
captures another (``PatientMismatch``). ``WorklistCompletion`` (``worklist_completion``)
completes a claimed workitem once every photo of its encounter is in the archive.
``QueueCustody`` (``queue_custody``) keeps the phone's offline queue openable by its user
only, across reloads and sign-ins, and hands that user's earlier contexts to a later session
so that photos queued for them are sent there, never elsewhere.
"""

from capture_api.encounters.ehr_context import EhrContexts
from capture_api.encounters.queue_custody import (
    NoQueueUser,
    PurgeReason,
    QueueCustody,
    QueueKey,
    QueueKeyGone,
    QueueNotYours,
    QueueTooOld,
)
from capture_api.encounters.worklist_completion import (
    Completion,
    CompletionRefused,
    WorklistCompletion,
)

__all__ = [
    "Completion",
    "CompletionRefused",
    "EhrContexts",
    "NoQueueUser",
    "PurgeReason",
    "QueueCustody",
    "QueueKey",
    "QueueKeyGone",
    "QueueNotYours",
    "QueueTooOld",
    "WorklistCompletion",
]
