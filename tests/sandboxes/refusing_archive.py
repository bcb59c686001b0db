"""A DICOMweb archive that refuses chosen instances: a STOW-RS-checking proxy to Orthanc.

Orthanc stores any SOP class it is sent and answers 409 only when the study UID of the URL does
not match the instance, so it cannot play an archive that refuses a valid instance. This
FastAPI app, run by uvicorn in a thread on a free port, forwards ``/dicom-web/*`` to an
upstream Orthanc, except a STOW-RS request (``POST .../studies``) carrying an instance whose
SOP Instance UID is configured to be refused. That request is answered as PS3.18 10.5.3 says
an origin server that stored none of the instances answers: the HTTP status (409 Conflict or
400 Bad Request) with a Store Instances Response (PS3.18 Annex I, Table I.1-1) in DICOM JSON,
whose Failed SOP Sequence (0008,1198) lists the instance with its Referenced SOP Class UID
(0008,1150), Referenced SOP Instance UID (0008,1155) and Failure Reason (0008,1197).

``stow_requests`` counts STOW-RS requests per SOP Instance UID (refused or forwarded).
"""

from __future__ import annotations

import asyncio
import io
import re
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import pydicom
from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from tests.sandboxes.threaded import ThreadedSandbox

_FORWARDED_REQUEST_HEADERS = ("content-type", "accept")
_FORWARDED_RESPONSE_HEADERS = ("content-type", "warning", "location", "content-location")
_STOW_PATH = re.compile(r"^studies(/[0-9.]+)?/?$")

#: PS3.18 Annex I: "Data Set does not match SOP Class" (A9xx) and "Cannot understand" (Cxxx).
DATA_SET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
CANNOT_UNDERSTAND = 0xC000


@dataclass(frozen=True)
class Refusal:
    """How to refuse one instance: an HTTP status and the Failure Reason to report."""

    status: int
    failure_reason: int


@dataclass(frozen=True)
class _Instance:
    sop_class_uid: str
    sop_instance_uid: str


class RefusingArchive(ThreadedSandbox):
    """A reverse proxy to ``upstream`` (Orthanc's root) that refuses configured instances."""

    label = "refusing archive"

    def __init__(self, upstream: str, refuse: Mapping[str, Refusal] | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.refuse: dict[str, Refusal] = dict(refuse or {})
        self.stow_requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._serve()

    # --- the app -------------------------------------------------------------------------------

    def _app(self) -> FastAPI:
        app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

        @app.api_route("/dicom-web/{path:path}", methods=["GET", "POST", "PUT", "DELETE"])
        async def dicomweb(path: str, request: Request) -> Response:
            body = await request.body()
            if request.method == "POST" and _STOW_PATH.match(path):
                instances = _instances(request.headers.get("content-type", ""), body)
                with self._lock:
                    for instance in instances:
                        self.stow_requests[instance.sop_instance_uid] += 1
                refused = [i for i in instances if i.sop_instance_uid in self.refuse]
                if refused:
                    return _store_failure(refused, self.refuse)
            upstream = await asyncio.to_thread(
                self._http.request,
                request.method,
                f"{self.upstream}/dicom-web/{path}",
                params=list(request.query_params.multi_items()),
                content=body,
                headers={
                    k: v for k, v in request.headers.items() if k in _FORWARDED_REQUEST_HEADERS
                },
            )
            headers = {
                k: v for k, v in upstream.headers.items() if k in _FORWARDED_RESPONSE_HEADERS
            }
            return Response(upstream.content, status_code=upstream.status_code, headers=headers)

        return app


def _store_failure(refused: list[_Instance], how: Mapping[str, Refusal]) -> Response:
    """The status of the first refused instance, and a Failed SOP Sequence item for each."""
    items = [
        {
            "00081150": {"vr": "UI", "Value": [i.sop_class_uid]},
            "00081155": {"vr": "UI", "Value": [i.sop_instance_uid]},
            "00081197": {"vr": "US", "Value": [how[i.sop_instance_uid].failure_reason]},
        }
        for i in refused
    ]
    return JSONResponse(
        {"00081198": {"vr": "SQ", "Value": items}},
        status_code=how[refused[0].sop_instance_uid].status,
        media_type="application/dicom+json",
    )


def _instances(content_type: str, body: bytes) -> list[_Instance]:
    """The SOP Class and Instance UIDs of each application/dicom part (RFC 2387 framing)."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if match is None:
        return []
    found = []
    for part in body.split(b"--" + match.group(1).encode())[1:]:
        head, _, data = part.partition(b"\r\n\r\n")
        if b"application/dicom" not in head.lower():
            continue
        if data.endswith(b"\r\n"):
            data = data[:-2]
        try:
            ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        except Exception:  # not a Part 10 file: Orthanc will answer for it
            continue
        found.append(_Instance(str(ds.SOPClassUID), str(ds.SOPInstanceUID)))
    return found
