"""The phone's offline queue: its key, its earlier patients, what it deleted (issue 20).

* ``POST /api/v1/queue/keys`` -- a new queue key for the signed-in user on a phone that holds
  none of theirs (201);
* ``GET /api/v1/queue/keys/{key_id}`` -- the key again, after a reload or a restart, or for
  the service worker's background delivery: only to a session of the user it belongs to
  (same EHR ``iss`` and fhirUser), else 403; 404 once destroyed;
* ``DELETE /api/v1/queue/keys/{key_id}`` -- the phone's queue is empty at sign-out: the key
  goes (204);
* ``POST /api/v1/queue/handoffs`` -- send photos queued in an earlier session of this user to
  that session's context (201: the context, to name its patient); another user's, 403;
* ``POST /api/v1/queue/reports`` -- photos the phone deleted unsent (retention limit, the
  user's choice, a damaged record, a key gone): audited (204).

Every answer is ``no-store`` (a key, a patient); every POST and DELETE needs the session's
``X-CSRF-Token``, like any unsafe request with the session cookie. Integration mode has no
user to keep a key for: 409 (the phone then keeps its queue in the page's memory only).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Path, Response, status
from pydantic import BaseModel, Field

from capture_api.api.access import AccessDep
from capture_api.api.errors import responses
from capture_api.api.no_store import NoStoreRoute
from capture_api.api.routes.contexts import ContextOut, context_out
from capture_api.encounters.queue_custody import (
    NoQueueUser,
    PurgeReason,
    QueueKey,
    QueueKeyGone,
    QueueNotYours,
    QueueTooOld,
)
from capture_api.exceptions import NotSignedIn, UnknownContext

router = APIRouter(prefix="/queue", tags=["queue"], route_class=NoStoreRoute)

_ID = r"^[A-Za-z0-9_-]{1,64}$"
KeyId = Annotated[str, Path(pattern=_ID, description="The queue key's id")]
_USER_ERRORS = (NotSignedIn, (NoQueueUser, "No user to keep a queue key for (integration mode)"))


class QueueKeyOut(BaseModel):
    """The key that wraps the phone's device key: kept by the page in memory only."""

    key_id: str
    key: str = Field(description="32 random bytes, base64url: an AES-KW key (RFC 3394)")
    algorithm: str = Field(default="AES-KW", description="What the phone imports the key as")
    retention_hours: float = Field(description="How long a photo may wait on the phone")
    expires_at: dt.datetime = Field(
        description="When capture destroys the key unless the phone uses it again"
    )


class HandoffIn(BaseModel):
    """An earlier context of the same user whose queued photos are to be sent now."""

    context_id: str = Field(min_length=1, max_length=64)


class PurgeReportIn(BaseModel):
    """Photos the phone deleted without sending them, and why."""

    key_id: str = Field(pattern=_ID)
    reason: PurgeReason
    count: int = Field(ge=1, le=10_000)
    context_ids: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="The contexts they were taken for, where the phone still knows them",
    )


def _key_out(key: QueueKey) -> QueueKeyOut:
    return QueueKeyOut(
        key_id=key.key_id,
        key=key.key_b64,
        retention_hours=key.retention.total_seconds() / 3600,
        expires_at=key.expires_at,
    )


@router.post(
    "/keys",
    status_code=status.HTTP_201_CREATED,
    response_model=QueueKeyOut,
    responses=responses(*_USER_ERRORS),
)
def create_key(access: AccessDep) -> QueueKeyOut:
    """A new queue key for this user on this phone; audited."""
    return _key_out(access.queue.create_key(access.session))


@router.get(
    "/keys/{key_id}",
    response_model=QueueKeyOut,
    responses=responses(
        *_USER_ERRORS,
        (QueueNotYours, "The key belongs to another user"),
        (QueueKeyGone, "Unknown or destroyed: what it protected cannot be opened"),
    ),
)
def read_key(key_id: KeyId, access: AccessDep) -> QueueKeyOut:
    """The queue key, for a session of the user it belongs to; audited."""
    return _key_out(access.queue.read_key(access.session, key_id))


@router.delete(
    "/keys/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(*_USER_ERRORS, (QueueNotYours, "The key belongs to another user")),
)
def destroy_key(key_id: KeyId, access: AccessDep) -> Response:
    """The phone's queue is empty: destroy its key (a key already gone is fine); audited."""
    access.queue.destroy_key(access.session, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/handoffs",
    status_code=status.HTTP_201_CREATED,
    response_model=ContextOut,
    responses=responses(
        *_USER_ERRORS,
        (QueueNotYours, "The context was not opened by a session of this user"),
        (UnknownContext, "No such context"),
        (QueueTooOld, "The context is older than the queue's retention limit"),
    ),
)
def hand_over(body: HandoffIn, access: AccessDep) -> ContextOut:
    """Let this session send the photos queued for an earlier context of the same user (upload
    and status for that context only); audited. Answers the context, to name its patient."""
    return context_out(access.queue.hand_over(access.session, body.context_id))


@router.post(
    "/reports",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(*_USER_ERRORS),
)
def report(body: PurgeReportIn, access: AccessDep) -> Response:
    """Record photos the phone deleted unsent (``queue-purge`` in the audit trail)."""
    access.queue.report(access.session, body.key_id, body.reason, body.count, body.context_ids)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
