"""The archive as a DICOMweb origin server: STOW-RS, QIDO-RS and WADO-RS (PS3.18).

``DicomWebArchive`` implements ``Archive`` over HTTP with httpx:

- ``store``: STOW-RS Store Instances (PS3.18 10.5), one Part 10 file per request;
- ``is_visible`` and ``find_priors``: QIDO-RS Search (PS3.18 10.6);
- ``thumbnail``: WADO-RS Retrieve of the rendered resource (PS3.18 10.4), else the raw frame;
- ``labels``: WADO-RS Retrieve of each series' metadata (PS3.18 10.4): the sensitivity
  private block and the encounter of instances this service did not capture.

Errors come out as the capture exception tree, decided in one place per kind: transport and
timeout failures in ``_send``; HTTP status codes in ``_raise_for_status`` (401/403 ->
``ArchiveAuthFailed``, 408/429/5xx -> ``ArchiveUnavailable``), so the outbox can tell "retry
later" from "fix something first".
"""

from __future__ import annotations

import io
import re
import secrets
from collections.abc import Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any

import httpx
from PIL import Image, UnidentifiedImageError

from capture_api.capture.lesions import LesionMark
from capture_api.capture.retrieval import Retrieval
from capture_api.config import ArchiveAuthKind, Settings
from capture_api.deliver.archive import (
    PHOTO_MODALITIES,
    InstanceRef,
    Part10,
    PriorImage,
    StoreResult,
)
from capture_api.deliver.archive_auth import auth_from_settings, credentials_hint
from capture_api.deliver.instance_labels import InstanceLabels, json_text, labels_from_json
from capture_api.deliver.stow_response import (
    StoreResponse,
    failure_reason_text,
    is_duplicate,
    parse_store_response,
    warning_reason_text,
)
from capture_api.encode.lesion_block import lesion_from_json
from capture_api.exceptions import (
    ArchiveAuthFailed,
    ArchiveError,
    ArchiveRejected,
    ArchiveUnavailable,
)

__all__ = ["DicomWebArchive"]

_DICOM_JSON = "application/dicom+json"
_MESSAGE_MAX = 200
_THUMBNAIL_QUALITY = 80

# DICOM JSON keys (PS3.18 Annex F) of the attributes we read.
_SOP_INSTANCE_UID = "00080018"
_STUDY_UID = "0020000D"
_SERIES_UID = "0020000E"
_PATIENT_ID = "00100020"
_ISSUER_OF_PATIENT_ID = "00100021"
_ANATOMIC_REGION_SEQUENCE = "00082218"
_CODE_VALUE = "00080100"
_CODE_MEANING = "00080104"
_IMAGE_LATERALITY = "00200062"
_ACQUISITION_DATETIME = "0008002A"
_CONTENT_DATE = "00080023"
_CONTENT_TIME = "00080033"
_STUDY_DATE = "00080020"
_STUDY_TIME = "00080030"
_SERIES_DESCRIPTION = "0008103E"
_IMAGE_COMMENTS = "00204000"
_ROWS = "00280010"
_MODALITY = "00080060"
_COLUMNS = "00280011"

#: What find_priors asks for beyond the QIDO-RS defaults (PS3.18 10.6 ``includefield``).
_PRIOR_FIELDS: tuple[str, ...] = (
    _ANATOMIC_REGION_SEQUENCE,
    _IMAGE_LATERALITY,
    _ACQUISITION_DATETIME,
    _CONTENT_DATE,
    _CONTENT_TIME,
    _SERIES_DESCRIPTION,
    _IMAGE_COMMENTS,
    _ISSUER_OF_PATIENT_ID,
)
#: Instances named in one verification search: 32 UIDs of up to 64 characters keep the URL
#: under 2.1 KB, within what every HTTP server and proxy accepts.
_UID_LIST_MAX = 32
#: Answers meaning "this server does not offer that resource or media type": try another way.
_UNSUPPORTED = frozenset({400, 404, 405, 406, 415, 501})


class DicomWebArchive:
    """A PACS/VNA reached through its DICOMweb base URL (the part before ``/studies``)."""

    def __init__(
        self,
        base_url: str,
        *,
        auth: httpx.Auth | None = None,
        timeout: float = 30.0,
        client: httpx.Client | None = None,
        auth_hint: str = "check CAPTURE_ARCHIVE_AUTH and its credentials",
        retrieve_base: str | None = None,
        retrieve_aet: str | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        # What others retrieve from: the WADO-RS base the EHR links to, when not this one.
        self._retrieval = Retrieval(
            wado_rs_base=(retrieve_base or base_url).rstrip("/"), ae_title=retrieve_aet or None
        )
        self._auth = auth
        self._timeout = timeout
        self._client = client or httpx.Client(timeout=timeout, headers={"User-Agent": "capture"})
        self._owns_client = client is None
        self._hint = auth_hint

    @classmethod
    def from_settings(cls, settings: Settings) -> DicomWebArchive:
        """The archive of ``CAPTURE_DICOMWEB_URL`` with ``CAPTURE_ARCHIVE_*`` credentials."""
        if not settings.dicomweb_url:
            raise ValueError("CAPTURE_DICOMWEB_URL is required for the DICOMweb archive")
        kind = ArchiveAuthKind(settings.archive_auth)
        return cls(
            settings.dicomweb_url,
            auth=auth_from_settings(settings),
            timeout=settings.archive_timeout_seconds,
            auth_hint=credentials_hint(kind),
            retrieve_base=settings.wado_url,
            retrieve_aet=settings.archive_retrieve_aet,
        )

    def retrieval(self) -> Retrieval:
        """WADO-RS at ``CAPTURE_WADO_URL`` (else the STOW base), and the archive's Retrieve AE
        Title when ``CAPTURE_ARCHIVE_RETRIEVE_AET`` names one (DIMSE C-MOVE/C-GET)."""
        return self._retrieval

    # --- STOW-RS -------------------------------------------------------------------------------

    def store(self, part10: Part10, ref: InstanceRef) -> StoreResult:
        """Store one instance (PS3.18 10.5) and read the answer per its Table 10.5.3-1.

        A spooled instance is streamed: the multipart body is produced chunk by chunk from the
        spool, with its Content-Length computed beforehand, never read whole nor joined.
        An instance the archive already holds counts as stored (``duplicate=True`` when the
        archive says so or a QIDO-RS check finds it in the same study and series): the outbox
        re-sends after crashes, and the SOP Instance UID is derived from the capture id.
        """
        body = MultipartBody(part10)
        headers = {
            "Content-Type": body.content_type,
            "Content-Length": str(body.length),
            "Accept": _DICOM_JSON,
        }
        response = self._send("POST", "/studies", content=body, headers=headers)
        return self._store_result(response, ref)

    def _store_result(self, response: httpx.Response, ref: InstanceRef) -> StoreResult:
        """Read a STOW-RS answer for our instance (PS3.18 10.5.3 and Annex I)."""
        self._raise_for_transient_or_auth(response, "store the photo")
        answer = parse_store_response(response.content)
        ours = ref.sop_instance_uid
        failed = answer.failed_for(ours)
        status = response.status_code
        # 200: all stored (the body may be empty); 202: only what Referenced SOP Sequence lists.
        if failed is None and (
            status == 200 or (status == 202 and answer.referenced_for(ours) is not None)
        ):
            return _stored(response, answer, ours)
        if failed is not None or status in (202, 409):
            return self._failed_store(ref, failed.failure_reason if failed else None, response)
        raise ArchiveRejected(f"the archive refused the photo {_http_detail(response)}")

    def _failed_store(
        self, ref: InstanceRef, reason: int | None, response: httpx.Response
    ) -> StoreResult:
        """A failure for our instance: fine if the archive already has it, else a rejection.

        Archives answer a re-sent instance in different ways (0111H, 0110H, 409 with no body,
        or 200 as Orthanc does), so we ask QIDO-RS whether the instance is there, in the study
        and series we sent, before calling it a failure.
        """
        if is_duplicate(reason):
            return StoreResult(duplicate=True)
        answered = (
            failure_reason_text(reason) if reason is not None else _http_detail(response)[1:-1]
        )
        if self._lookup(ref) is not None:
            note = f"the archive answered {answered} but already holds the photo"
            return StoreResult(warnings=(note,), duplicate=True)
        if reason is not None:
            raise ArchiveRejected(f"the archive refused the photo: {answered}")
        raise ArchiveRejected(f"the archive refused the photo ({answered})")

    # --- QIDO-RS -------------------------------------------------------------------------------

    def is_visible(self, ref: InstanceRef) -> bool:
        """Whether a QIDO-RS search in the instance's study and series finds it (PS3.18 10.6)."""
        return self._lookup(ref) is not None

    def visible(self, refs: Sequence[InstanceRef]) -> set[str]:
        """The instances of ``refs`` the archive shows: one QIDO-RS Search for Instances of a
        Study (``/studies/{uid}/instances``, PS3.18 10.6.1) per study and up to
        ``_UID_LIST_MAX`` instances, matched on their series too.

        The search names the instances it looks for (UID list matching, PS3.18 8.3.4.1,
        ``SOPInstanceUID=uid1,uid2``): an unfiltered study search makes the archive describe
        every instance of the study, which grows with the study (34 ms of Orthanc CPU for 48
        photos, against 1 ms per named instance; issue 13). A server that answers a list with
        nothing (it may not support list matching) is asked the unfiltered way; a server
        without the resource, instance by instance.
        """
        found: set[str] = set()
        by_study: dict[str, list[InstanceRef]] = {}
        for ref in refs:
            by_study.setdefault(ref.study_uid, []).append(ref)
        for study_uid, members in by_study.items():
            for start in range(0, len(members), _UID_LIST_MAX):
                found |= self._visible_in_study(study_uid, members[start : start + _UID_LIST_MAX])
        return found

    def _visible_in_study(self, study_uid: str, members: Sequence[InstanceRef]) -> set[str]:
        path = f"/studies/{study_uid}/instances"
        uids = ",".join(ref.sop_instance_uid for ref in members)
        listed = self._search(path, [("SOPInstanceUID", uids), ("includefield", _SERIES_UID)])
        if listed == [] and len(members) > 1:
            listed = self._search(path, [("includefield", _SERIES_UID)])
        if listed is None:
            return {ref.sop_instance_uid for ref in members if self.is_visible(ref)}
        shown = {
            (_text(attrs, _SERIES_UID), _text(attrs, _SOP_INSTANCE_UID))
            for attrs in listed
            if _text(attrs, _STUDY_UID) in (None, study_uid)
        }
        return {
            ref.sop_instance_uid
            for ref in members
            if (ref.series_uid, ref.sop_instance_uid) in shown
            or (None, ref.sop_instance_uid) in shown
        }

    def _lookup(self, ref: InstanceRef) -> dict[str, Any] | None:
        """The QIDO-RS attributes of the instance, if it is in the study and series of ``ref``."""
        found = self._search(
            f"/studies/{ref.study_uid}/series/{ref.series_uid}/instances",
            [("SOPInstanceUID", ref.sop_instance_uid)],
        )
        for attrs in found or ():
            if (
                _text(attrs, _SOP_INSTANCE_UID) == ref.sop_instance_uid
                and _text(attrs, _STUDY_UID) in (None, ref.study_uid)
                and _text(attrs, _SERIES_UID) in (None, ref.series_uid)
            ):
                return attrs
        return None

    def find_priors(
        self,
        patient_id: str,
        issuer: str | None = None,
        body_site_code: str | None = None,
        limit: int = 50,
    ) -> list[PriorImage]:
        """The patient's photos (XC and DMS), newest first, via QIDO-RS (PS3.18 10.6).

        Servers may not match inside sequences (Orthanc does not) nor return sequences from a
        search, so the body site, and the issuer, are checked here; missing attributes are read
        from the series' WADO-RS metadata (PS3.18 10.4, one request per series).
        """
        candidates = [
            attrs
            for attrs in self._patient_instances(patient_id)
            if _text(attrs, _PATIENT_ID) == patient_id  # no wildcard surprises (PS3.4 C.2.2.2.4)
        ]
        candidates.sort(key=_acquired_sort_key, reverse=True)
        wanted = [_ANATOMIC_REGION_SEQUENCE, _IMAGE_COMMENTS]
        if issuer is not None:
            wanted.append(_ISSUER_OF_PATIENT_ID)
        series_cache: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        priors: list[PriorImage] = []
        for attrs in candidates:
            if len(priors) >= limit:
                break
            full = self._complete(attrs, wanted, series_cache)
            if issuer is not None and _text(full, _ISSUER_OF_PATIENT_ID) != issuer:
                continue
            prior = _prior_image(full)
            if body_site_code is None or prior.body_site_code == body_site_code:
                priors.append(prior)
        return priors

    def _patient_instances(self, patient_id: str) -> list[dict[str, Any]]:
        """The patient's photos of every photo modality (one search per modality)."""
        found: list[dict[str, Any]] = []
        for modality in PHOTO_MODALITIES:
            for attrs in self._modality_instances(patient_id, modality):
                attrs.setdefault(_MODALITY, {"vr": "CS", "Value": [modality]})
                found.append(attrs)
        return found

    def _modality_instances(self, patient_id: str, modality: str) -> list[dict[str, Any]]:
        """All-instances search; if the server has none, studies then each study's instances.

        The issuer is not a search key: Orthanc 1.10 matches nothing for an Issuer of Patient
        ID with a space in it ("Sandbox General Hospital"), so ``find_priors`` checks it.
        """
        keys = [("PatientID", patient_id), ("Modality", modality)]
        keys += [("includefield", tag) for tag in _PRIOR_FIELDS]
        found = self._search("/instances", keys)
        if found is not None:
            return found
        studies = self._search("/studies", [("PatientID", patient_id)]) or []
        instances: list[dict[str, Any]] = []
        for study in studies:
            study_uid = _text(study, _STUDY_UID)
            if study_uid:
                instances += self._search(f"/studies/{study_uid}/instances", keys[1:]) or []
        return instances

    def _search(self, path: str, params: Sequence[tuple[str, str]]) -> list[dict[str, Any]] | None:
        """A QIDO-RS search: its results, [] for no match, None if the server lacks the path."""
        response = self._send("GET", path, params=list(params), headers={"Accept": _DICOM_JSON})
        self._raise_for_transient_or_auth(response, "search the archive")
        if response.status_code == 204 or (response.status_code == 200 and not response.content):
            return []
        if response.status_code in _UNSUPPORTED:
            return None
        if response.status_code not in (200, 206):
            raise ArchiveRejected(f"the archive refused a search {_http_detail(response)}")
        return _json_objects(response)

    def _complete(
        self,
        attrs: dict[str, Any],
        wanted: Sequence[str],
        cache: dict[tuple[str, str], dict[str, dict[str, Any]]],
    ) -> dict[str, Any]:
        """``attrs`` plus the ``wanted`` attributes the search left out, from series metadata."""
        missing = [tag for tag in wanted if tag not in attrs]
        key = (_text(attrs, _STUDY_UID) or "", _text(attrs, _SERIES_UID) or "")
        if not missing or not all(key):
            return attrs
        if key not in cache:
            cache[key] = {
                _text(item, _SOP_INSTANCE_UID) or "": item for item in self.series_metadata(*key)
            }
        full = cache[key].get(_text(attrs, _SOP_INSTANCE_UID) or "", {})
        return {**attrs, **{tag: full[tag] for tag in missing if tag in full}}

    def series_metadata(self, study_uid: str, series_uid: str) -> list[dict[str, Any]]:
        """WADO-RS Retrieve of a series' metadata resource (PS3.18 10.4): every attribute.

        DICOM JSON objects, one per instance, private attributes included (the timeline reads
        the sensitivity block from them); [] when the server has no metadata resource.
        """
        response = self._send(
            "GET",
            f"/studies/{study_uid}/series/{series_uid}/metadata",
            headers={"Accept": _DICOM_JSON},
        )
        self._raise_for_transient_or_auth(response, "read the archive's metadata")
        return _json_objects(response) if response.status_code == 200 else []

    def labels(self, refs: Sequence[InstanceRef]) -> dict[str, InstanceLabels | None]:
        """Sensitivity block and encounter per instance: one series metadata request each.

        A request that fails (unreachable, refused, not DICOM JSON) answers None for the
        series' instances, which the timeline shows restricted; a server without the
        metadata resource, or metadata without the instance, cannot say: left out.
        """
        found: dict[str, InstanceLabels | None] = {}
        by_series: dict[tuple[str, str], list[InstanceRef]] = {}
        for ref in refs:
            by_series.setdefault((ref.study_uid, ref.series_uid), []).append(ref)
        for (study_uid, series_uid), members in by_series.items():
            try:
                items = self.series_metadata(study_uid, series_uid)
            except ArchiveError:
                found |= dict.fromkeys((ref.sop_instance_uid for ref in members), None)
                continue
            metadata = {json_text(item, _SOP_INSTANCE_UID): item for item in items}
            for ref in members:
                attrs = metadata.get(ref.sop_instance_uid)
                if attrs is not None:
                    found[ref.sop_instance_uid] = labels_from_json(attrs)
        return found

    def lesions(self, refs: Sequence[InstanceRef]) -> dict[str, LesionMark]:
        """The lesion of each instance, from its series' metadata (one request per series).

        A series whose metadata cannot be read is left out (its photos show no lesion): the
        lesions the database already knows are unaffected.
        """
        found: dict[str, LesionMark] = {}
        by_series: dict[tuple[str, str], set[str]] = {}
        for ref in refs:
            by_series.setdefault((ref.study_uid, ref.series_uid), set()).add(ref.sop_instance_uid)
        for (study_uid, series_uid), members in by_series.items():
            try:
                items = self.series_metadata(study_uid, series_uid)
            except ArchiveError:
                continue
            for item in items:
                uid = json_text(item, _SOP_INSTANCE_UID)
                mark = lesion_from_json(item) if uid in members else None
                if uid and mark is not None:
                    found[uid] = mark
        return found

    # --- WADO-RS -------------------------------------------------------------------------------

    def thumbnail(self, ref: InstanceRef, max_size: int = 256) -> bytes:
        """A JPEG of at most ``max_size`` px on its long side, for the priors view.

        Asks for a server-side render at thumbnail size (``viewport``, a parameter of PS3.18
        rendered resources, sized to the image's aspect ratio because Orthanc pads a square
        viewport with black). When the server has no rendered resource, fetches the stored
        frame unchanged (``transfer-syntax=*``, PS3.18 8.7.3.5.2) and decodes it here. Either
        way Pillow makes the final size, so the bound holds whatever the server sent.
        """
        path = f"/studies/{ref.study_uid}/series/{ref.series_uid}/instances/{ref.sop_instance_uid}"
        image = self._rendered(path, self._viewport(ref, max_size))
        if image is None:
            image = self._first_frame(path)
        return _shrink(image, max_size)

    def instance(self, ref: InstanceRef) -> bytes:
        """WADO-RS Retrieve Instance (PS3.18 10.4.1) in its stored transfer syntax."""
        path = f"/studies/{ref.study_uid}/series/{ref.series_uid}/instances/{ref.sop_instance_uid}"
        response = self._send(
            "GET",
            path,
            headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
        )
        self._raise_for_transient_or_auth(response, "retrieve the instance")
        if response.status_code != 200:
            raise ArchiveRejected(f"the archive has no such instance {_http_detail(response)}")
        return _first_part(response)

    def _viewport(self, ref: InstanceRef, max_size: int) -> str | None:
        attrs = self._lookup(ref) or {}
        rows, columns = _number(attrs, _ROWS), _number(attrs, _COLUMNS)
        if not rows or not columns:
            return None
        scale = min(1.0, max_size / max(rows, columns))
        return f"{max(1, round(columns * scale))},{max(1, round(rows * scale))}"

    def _rendered(self, path: str, viewport: str | None) -> bytes | None:
        """WADO-RS Retrieve Rendered Instance (PS3.18 10.4, rendered resource) as JPEG, or None."""
        response = self._send(
            "GET",
            f"{path}/rendered",
            params={"viewport": viewport} if viewport else None,
            headers={"Accept": "image/jpeg"},
        )
        self._raise_for_transient_or_auth(response, "render the photo")
        if response.status_code == 200:
            return response.content
        if response.status_code in _UNSUPPORTED:
            return None
        raise ArchiveRejected(f"the archive could not render the photo {_http_detail(response)}")

    def _first_frame(self, path: str) -> bytes:
        """Frame 1 as stored (PS3.18 10.4 frames resource), when there is no rendered resource."""
        response = self._send(
            "GET",
            f"{path}/frames/1",
            headers={
                "Accept": 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
            },
        )
        self._raise_for_transient_or_auth(response, "fetch the photo")
        if response.status_code != 200:
            raise ArchiveRejected(
                f"the archive has no image for the photo {_http_detail(response)}"
            )
        return _first_part(response)

    # --- HTTP: the one place httpx exceptions become ours ----------------------------------------

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        url = f"{self._base}{path}"
        try:
            return self._client.request(
                method,
                url,
                auth=self._auth or httpx.USE_CLIENT_DEFAULT,
                timeout=self._timeout,
                **kwargs,
            )
        except httpx.TimeoutException as exc:
            raise ArchiveUnavailable(
                f"the archive did not answer within {self._timeout:g} s ({method} {path})"
            ) from exc
        except httpx.RequestError as exc:  # connection refused/reset, DNS, TLS, bad encoding
            raise ArchiveUnavailable(f"cannot reach the archive at {self._base}: {exc}") from exc

    def _raise_for_transient_or_auth(self, response: httpx.Response, doing: str) -> None:
        """Statuses that mean the same for every transaction (RFC 9110 section 15)."""
        status = response.status_code
        if status in (401, 403):
            raise ArchiveAuthFailed(
                f"the archive refused our credentials (HTTP {status}): {self._hint}"
            )
        if status in (408, 429) or status >= 500:
            retry = response.headers.get("Retry-After")
            after = f", retry after {retry}" if retry else ""
            raise ArchiveUnavailable(
                f"the archive could not {doing} now {_http_detail(response)}{after}"
            )
        if 300 <= status < 400:
            raise ArchiveRejected(
                f"the archive redirected us to {response.headers.get('Location')!r}: "
                "set CAPTURE_DICOMWEB_URL to the address it names"
            )

    # --- lifecycle -----------------------------------------------------------------------------

    def close(self) -> None:
        """Release the connection pool (and the token client of an OAuth2 auth we made)."""
        if self._owns_client:
            self._client.close()
        closer = getattr(self._auth, "close", None)
        if callable(closer):
            closer()

    def __enter__(self) -> DicomWebArchive:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# --- STOW-RS helpers --------------------------------------------------------------------------


class MultipartBody:
    """A one-part ``multipart/related; type="application/dicom"`` body (PS3.18 8.6.1.2),
    produced in chunks: the head, the instance as the spool gives it, the tail.

    Built by hand: httpx only builds multipart/form-data, and one binary part of RFC 2387
    (RFC 2046 5.1.1 framing) is a few lines. The boundary is 128 random bits; an instance in
    memory is checked not to contain it, a spooled one cannot be checked without reading it
    first (what streaming avoids): it was written before the boundary was drawn, so it holds
    it with probability 2^-128 per position. Iterating again starts again (an auth flow that
    re-sends the request sends the whole body), so this is an iterable, not a generator.
    """

    def __init__(self, part10: Part10) -> None:
        self._part10 = part10
        boundary = secrets.token_hex(16)
        while isinstance(part10, bytes) and boundary.encode() in part10:
            boundary = secrets.token_hex(16)
        self._head = f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        self._tail = f"\r\n--{boundary}--\r\n".encode()
        self.content_type = f'multipart/related; type="application/dicom"; boundary={boundary}'
        size = len(part10) if isinstance(part10, bytes) else part10.size
        self.length = len(self._head) + size + len(self._tail)

    def __iter__(self) -> Iterator[bytes]:
        yield self._head
        if isinstance(self._part10, bytes):
            yield self._part10
        else:
            yield from self._part10.chunks()
        yield self._tail


def _stored(response: httpx.Response, answer: StoreResponse, sop_uid: str) -> StoreResult:
    """A 200/202 that stored our instance: its retrieve URL and warnings in words."""
    mine = answer.referenced_for(sop_uid)
    warnings: list[str] = []
    if mine is not None and mine.warning_reason is not None:
        warnings.append(
            f"the archive stored the photo with {warning_reason_text(mine.warning_reason)}"
        )
    warnings += [f"the archive warned: {text}" for text in _warning_headers(response)]
    warnings += [
        f"the archive reported another failure: {failure_reason_text(code)}"
        for code in answer.other_failures
    ]
    retrieve_url = (mine.retrieve_url if mine else None) or answer.retrieve_url
    return StoreResult(
        warnings=tuple(warnings),
        duplicate=False,
        retrieve_url=retrieve_url,
        sop_class_uid=mine.sop_class_uid if mine else None,
    )


_WARNING_HEADER = re.compile(r'^\s*(\d{3})\s+(\S+)\s+"?(.*?)"?\s*$')


def _warning_headers(response: httpx.Response) -> list[str]:
    """The text of each ``Warning`` header (RFC 7234 5.5: code, agent, quoted text)."""
    texts = []
    for value in response.headers.get_list("Warning"):
        match = _WARNING_HEADER.match(value)
        texts.append(f"{match.group(1)} {match.group(3)}" if match else value.strip())
    return texts


def _http_detail(response: httpx.Response) -> str:
    """``(HTTP 415: Unsupported media type)``: the status and a short archive message."""
    message = _short_message(response)
    return f"(HTTP {response.status_code}{': ' + message if message else ''})"


def _short_message(response: httpx.Response) -> str:
    content_type = response.headers.get("Content-Type", "")
    text = ""
    if "json" in content_type or response.content[:1] in (b"{", b"["):
        payload = _json(response)
        if isinstance(payload, dict):
            text = str(
                payload.get("Details") or payload.get("Message") or payload.get("error") or ""
            )
    elif content_type.startswith("text/plain"):
        text = response.text
    text = " ".join(text.split())
    return text if len(text) <= _MESSAGE_MAX else text[: _MESSAGE_MAX - 1] + "…"


# --- DICOM JSON helpers (PS3.18 Annex F) ------------------------------------------------------


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _json_objects(response: httpx.Response) -> list[dict[str, Any]]:
    payload = _json(response)
    if not isinstance(payload, list):
        raise ArchiveUnavailable(
            f"the archive answered a search with something other than DICOM JSON "
            f"({response.headers.get('Content-Type', 'no Content-Type')})"
        )
    return [item for item in payload if isinstance(item, dict)]


def _values(attrs: Mapping[str, Any], tag: str) -> list[Any]:
    element = attrs.get(tag)
    values = element.get("Value") if isinstance(element, Mapping) else None
    return values if isinstance(values, list) else []


def _text(attrs: Mapping[str, Any], tag: str) -> str | None:
    values = _values(attrs, tag)
    if not values or values[0] is None:
        return None
    first = values[0]
    if isinstance(first, Mapping):  # PN: {"Alphabetic": ...}
        return str(first.get("Alphabetic", "")) or None
    return str(first)


def _number(attrs: Mapping[str, Any], tag: str) -> int | None:
    try:
        return int(_values(attrs, tag)[0])
    except (IndexError, TypeError, ValueError):
        return None


def _acquired(attrs: Mapping[str, Any]) -> str | None:
    """Acquisition DateTime, else Content Date+Time, else Study Date+Time (as returned)."""
    if value := _text(attrs, _ACQUISITION_DATETIME):
        return value
    for date_tag, time_tag in ((_CONTENT_DATE, _CONTENT_TIME), (_STUDY_DATE, _STUDY_TIME)):
        if date := _text(attrs, date_tag):
            return date + (_text(attrs, time_tag) or "")
    return None


def _acquired_sort_key(attrs: Mapping[str, Any]) -> str:
    """Digits of the local date-time (DT without its offset): sorts newest last as strings."""
    value = _acquired(attrs) or ""
    return re.split(r"[+-]", value, maxsplit=1)[0]


def _prior_image(attrs: Mapping[str, Any]) -> PriorImage:
    region = _values(attrs, _ANATOMIC_REGION_SEQUENCE)
    item: Mapping[str, Any] = region[0] if region and isinstance(region[0], Mapping) else {}
    return PriorImage(
        ref=InstanceRef(
            study_uid=_text(attrs, _STUDY_UID) or "",
            series_uid=_text(attrs, _SERIES_UID) or "",
            sop_instance_uid=_text(attrs, _SOP_INSTANCE_UID) or "",
        ),
        acquired=_acquired(attrs),
        body_site_code=_text(item, _CODE_VALUE),
        body_site_meaning=_text(item, _CODE_MEANING),
        laterality=_text(attrs, _IMAGE_LATERALITY),
        description=_text(attrs, _SERIES_DESCRIPTION),
        comment=_text(attrs, _IMAGE_COMMENTS),
        modality=_text(attrs, _MODALITY),
    )


# --- image helpers ----------------------------------------------------------------------------


def _first_part(response: httpx.Response) -> bytes:
    """The body of the first part of a multipart/related answer (RFC 2046 5.1.1)."""
    content_type = response.headers.get("Content-Type", "")
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.startswith("multipart/") or match is None:
        return response.content  # a single-part answer: the frame itself
    delimiter = b"--" + match.group(1).encode()
    parts = response.content.split(delimiter)
    if len(parts) < 3:
        raise ArchiveRejected("the archive sent a multipart answer with no parts")
    _, _, body = parts[1].partition(b"\r\n\r\n")
    return body[:-2] if body.endswith(b"\r\n") else body


def _shrink(data: bytes, max_size: int) -> bytes:
    """Decode (DCT-scaled when the source is JPEG), fit into ``max_size``, re-encode JPEG."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (max_size, max_size))  # libjpeg scales by 1/2..1/8 while decoding
            small = image.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ArchiveRejected(
            "the archive's image of the photo could not be decoded (not a baseline JPEG frame?)"
        ) from exc
    small.thumbnail((max_size, max_size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    small.save(out, "JPEG", quality=_THUMBNAIL_QUALITY)
    return out.getvalue()
