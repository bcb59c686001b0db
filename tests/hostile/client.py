"""What the hostile tests say to the API and read back from the archive.

``upload`` sends one photo with any form fields; ``assert_actionable`` is the rule every
refusal must meet (one sentence naming the problem, no Python internals); ``archived_bytes``
reads the stored Part 10 file through Orthanc's own REST API, independent of our DICOMweb code.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from tests.deliver.service_process import ServiceProcess
from tests.orthanc import OrthancServer

#: What must never appear in a message meant for a person.
_INTERNALS = ("Traceback", "b'\\x", 'b"\\x', "<class", "Error:", "Exception", "\n")


def upload(
    api: ServiceProcess,
    photo: bytes,
    fields: Mapping[str, str | list[str]],
    *,
    filename: str = "photo.jpg",
    content_type: str = "image/jpeg",
) -> httpx.Response:
    """POST /api/v1/captures with ``fields`` and the photo as the ``photo`` file part."""
    return api.client.post(
        "/api/v1/captures",
        data=dict(fields),
        files={"photo": (filename, photo, content_type)},
    )


def detail_of(response: httpx.Response) -> str:
    """The ``detail`` of an error answer as one string (FastAPI's field errors joined)."""
    detail: Any = response.json()["detail"]
    if isinstance(detail, list):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in detail)
    return str(detail)


def assert_actionable(
    response: httpx.Response, status: int, *words: str, echoed: str | None = None
) -> str:
    """The answer has ``status`` and a detail a person can act on, containing ``words``.

    ``echoed``: a value the sender sent, which the detail may quote back as it was sent.
    """
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json"), response.headers
    detail = detail_of(response)
    assert detail.strip() and len(detail) < 600, detail
    prose = detail.replace(repr(echoed), "").replace(echoed, "") if echoed else detail
    for noise in _INTERNALS:
        assert noise not in prose, f"{noise!r} in {detail!r}"
    for word in words:
        assert word.lower() in detail.lower(), f"{word!r} not in {detail!r}"
    return detail


def archived_bytes(orthanc: OrthancServer, sop_instance_uid: str) -> bytes:
    """The Part 10 bytes Orthanc stored for this SOP Instance UID."""
    found: list[dict[str, Any]] = httpx.post(
        f"{orthanc.rest_url}/tools/lookup", content=sop_instance_uid, timeout=10
    ).json()
    (instance,) = [f["ID"] for f in found if f["Type"] == "Instance"]
    answer = httpx.get(f"{orthanc.rest_url}/instances/{instance}/file", timeout=30)
    answer.raise_for_status()
    return answer.content
