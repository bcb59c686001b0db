"""Accepting a photo: spool it durably, record it, encode it, answer.

``CaptureService`` (``service``) holds the use cases behind the upload route and the
workers: contexts, ``accept`` (idempotent by capture id: a re-sent photo is the same
capture), ``encode``, and the failed captures an administrator may re-queue. ``refusal``
gives back the error a refused upload answers with; ``request_of`` a kept capture's metadata.
"""

from capture_api.intake.service import CaptureRequest, CaptureService, refusal, request_of

__all__ = [
    "CaptureRequest",
    "CaptureService",
    "refusal",
    "request_of",
]
