"""Opening a patient's capture context, and finishing the encounter.

``EhrContexts`` (``ehr_context``) opens contexts from a SMART launch, a wristband scan or a
worklist claim, and holds the safety rule: a session launched for one patient never
captures another (``PatientMismatch``). ``WorklistCompletion`` (``worklist_completion``)
completes a claimed workitem once every photo of its encounter is in the archive.
"""

from capture_api.encounters.ehr_context import EhrContexts
from capture_api.encounters.worklist_completion import (
    Completion,
    CompletionRefused,
    WorklistCompletion,
)

__all__ = [
    "Completion",
    "CompletionRefused",
    "EhrContexts",
    "WorklistCompletion",
]
