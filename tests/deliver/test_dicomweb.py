"""DicomWebArchive against a real Orthanc over real HTTP (STOW-RS, QIDO-RS, WADO-RS).

What Orthanc 1.10 / DICOMweb plugin 1.7 really answers (observed, and asserted below):

- STOW of an instance it already holds: 200 with the instance in Referenced SOP Sequence (it
  keeps the first copy; no duplicate flag), so a re-send is a plain success.
- garbage bytes: 400 with empty sequences; a Part 10 file without Study Instance UID: 400 with
  Failed SOP Sequence, Failure Reason 0xC000; an instance outside the study named in
  ``POST /studies/{study}``: 409 with Failure Reason 0x0110.
- it never answers 202, a Warning Reason, a Warning header, 0xA9xx or 0x0111: those paths are
  tested with Orthanc-shaped JSON through ``httpx.MockTransport`` (see the end of the file).
- QIDO-RS ignores matching inside sequences and never returns Anatomic Region Sequence, so
  ``find_priors`` reads it from WADO-RS series metadata.
"""

from __future__ import annotations

import io
import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pydicom
import pytest
from PIL import Image

from capture_api.capture.anatomy import resolve
from capture_api.capture.model import CaptureContext
from capture_api.capture.patient import Issuer, Patient
from capture_api.config import Settings
from capture_api.deliver.archive import Archive, InstanceRef
from capture_api.deliver.archive_auth import auth_from_settings
from capture_api.deliver.dicomweb import DicomWebArchive
from capture_api.deliver.instance_labels import InstanceLabels
from capture_api.deliver.stow_response import (
    failure_reason_text,
    parse_store_response,
    warning_reason_text,
)
from capture_api.encode.pipeline import WrappedPhoto, wrap_photo
from capture_api.encode.vl_photo import (
    CONFIDENTIALITY_ELEMENT,
    LEVEL_ELEMENT,
    SENSITIVITY_CREATOR,
    SENSITIVITY_GROUP,
)
from capture_api.exceptions import ArchiveAuthFailed, ArchiveRejected, ArchiveUnavailable
from tests.conftest import phone_jpeg
from tests.orthanc import OrthancServer
from tests.sandboxes.oauth_proxy import OAuthProxy

# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    with OrthancServer(tmp_path_factory.mktemp("orthanc")) as server:
        yield server


@pytest.fixture(scope="module")
def orthanc_with_users(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    with OrthancServer(tmp_path_factory.mktemp("orthanc-auth"), users={"u": "p"}) as server:
        yield server


@pytest.fixture
def archive(orthanc: OrthancServer) -> Iterator[DicomWebArchive]:
    with DicomWebArchive(orthanc.base_url, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def oauth_proxy(orthanc: OrthancServer) -> Iterator[OAuthProxy]:
    with OAuthProxy(orthanc.rest_url, static_tokens=frozenset({"static-token"})) as proxy:
        yield proxy


_counter = iter(range(1_000_000))


def photo(
    site: str = "left forearm",
    *,
    patient: str = "P1",
    issuer: str | None = None,
    note: str | None = None,
    acquired: str | None = None,
    size: tuple[int, int] = (320, 240),
) -> WrappedPhoto:
    """A fresh VL Photographic Image from the project's encoder (new UIDs each call)."""
    body_site, laterality = resolve(site)
    ctx = CaptureContext(
        capture_id=f"dicomweb-test-{next(_counter)}-{time.time_ns()}",
        patient=Patient(
            patient_id=patient, issuer=Issuer(local_namespace=issuer) if issuer else None
        ),
        body_site=body_site,
        laterality=laterality,
        note=note,
    )
    wrapped = wrap_photo(phone_jpeg(*size, seed=next(_counter)), ctx)
    if acquired is not None:  # the phone EXIF date is fixed; priors need distinct times
        wrapped.dataset.AcquisitionDateTime = acquired
    return wrapped


def settings_of(**values: Any) -> Settings:
    """Settings as the environment would give them (strings, validated by pydantic)."""
    return Settings.model_validate(values)


def ref_of(wrapped: WrappedPhoto) -> InstanceRef:
    return InstanceRef(
        wrapped.study_instance_uid, wrapped.series_instance_uid, wrapped.sop_instance_uid
    )


def without(wrapped: WrappedPhoto, keyword: str) -> bytes:
    """The Part 10 bytes with one attribute removed (an instance the archive must refuse)."""
    dataset = pydicom.dcmread(io.BytesIO(wrapped.to_bytes()))
    delattr(dataset, keyword)
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


def rewriting_client(method: str, rewrite: Callable[[httpx.URL], httpx.URL]) -> httpx.Client:
    """A client whose ``method`` requests go to a rewritten URL: Orthanc then answers otherwise."""

    def hook(request: httpx.Request) -> None:
        if request.method == method:
            request.url = rewrite(request.url)

    return httpx.Client(timeout=10, event_hooks={"request": [hook]})


# --- STOW-RS and QIDO-RS against Orthanc ------------------------------------------------------


def test_implements_the_archive_protocol(archive: DicomWebArchive) -> None:
    as_protocol: Archive = archive
    assert as_protocol is archive


def test_store_then_visible(archive: DicomWebArchive, orthanc: OrthancServer) -> None:
    wrapped = photo()
    ref = ref_of(wrapped)
    assert not archive.is_visible(ref)

    result = archive.store(wrapped.to_bytes(), ref)

    assert result.duplicate is False
    assert result.warnings == ()
    assert result.retrieve_url is not None and result.retrieve_url.endswith(ref.sop_instance_uid)
    assert archive.is_visible(ref)
    assert ref.sop_instance_uid in orthanc.sop_uids()
    other_series = InstanceRef(ref.study_uid, "1.2.3.4", ref.sop_instance_uid)
    assert not archive.is_visible(other_series)


def test_storing_the_same_instance_twice_is_a_success_with_one_copy(
    archive: DicomWebArchive, orthanc: OrthancServer
) -> None:
    wrapped = photo()
    ref = ref_of(wrapped)
    archive.store(wrapped.to_bytes(), ref)
    count = orthanc.instance_count()

    again = archive.store(wrapped.to_bytes(), ref)

    # Orthanc answers 200 and lists the instance as stored; it has no way to say "duplicate".
    assert again.duplicate is False
    assert orthanc.instance_count() == count
    assert list(orthanc.sop_uids()).count(ref.sop_instance_uid) == 1


def test_conflict_for_an_instance_the_archive_holds_is_a_duplicate(
    orthanc: OrthancServer,
) -> None:
    """A real 409 + Failed SOP Sequence (0x0110): POST /studies/{another study}."""
    wrapped = photo()
    ref = ref_of(wrapped)
    with DicomWebArchive(orthanc.base_url) as plain:
        plain.store(wrapped.to_bytes(), ref)

    client = rewriting_client("POST", lambda url: url.copy_with(path=url.path + "/1.2.999"))
    with client, DicomWebArchive(orthanc.base_url, client=client) as archive:
        result = archive.store(wrapped.to_bytes(), ref)

    assert result.duplicate is True
    assert any("0x0110 processing failure" in w for w in result.warnings)


def test_conflict_for_a_new_instance_is_rejected_with_the_reason(orthanc: OrthancServer) -> None:
    wrapped = photo()
    client = rewriting_client("POST", lambda url: url.copy_with(path=url.path + "/1.2.999"))
    with (
        client,
        DicomWebArchive(orthanc.base_url, client=client) as archive,
        pytest.raises(ArchiveRejected, match=r"refused the photo: 0x0110 processing failure"),
    ):
        archive.store(wrapped.to_bytes(), ref_of(wrapped))
    assert wrapped.sop_instance_uid not in orthanc.sop_uids()


def test_garbage_is_rejected(archive: DicomWebArchive) -> None:
    ref = ref_of(photo())
    with pytest.raises(ArchiveRejected, match=r"refused the photo \(HTTP 400") as caught:
        archive.store(b"this is not DICOM " * 50, ref)
    assert not isinstance(caught.value, ArchiveAuthFailed)


def test_instance_without_study_uid_is_rejected_with_failure_reason(
    archive: DicomWebArchive, orthanc: OrthancServer
) -> None:
    wrapped = photo()
    with pytest.raises(ArchiveRejected, match=r"refused the photo: 0xC000 cannot understand"):
        archive.store(without(wrapped, "StudyInstanceUID"), ref_of(wrapped))
    assert wrapped.sop_instance_uid not in orthanc.sop_uids()


def test_stopped_archive_is_unavailable_then_data_survives_restart(tmp_path: Path) -> None:
    server = OrthancServer(tmp_path / "orthanc")
    server.start()
    try:
        wrapped = photo()
        ref = ref_of(wrapped)
        with DicomWebArchive(server.base_url, timeout=5) as archive:
            archive.store(wrapped.to_bytes(), ref)
            server.stop()

            started = time.monotonic()
            with pytest.raises(ArchiveUnavailable, match="cannot reach the archive"):
                archive.store(wrapped.to_bytes(), ref)
            with pytest.raises(ArchiveUnavailable):
                archive.is_visible(ref)
            assert time.monotonic() - started < 2  # connection refused, not a timeout

            server.start()
            assert archive.is_visible(ref)
            assert server.instance_count() == 1
    finally:
        server.stop()


def test_archive_that_never_answers_times_out_as_unavailable() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel accepts connections; nobody ever reads or answers
        base = f"http://127.0.0.1:{silent.getsockname()[1]}/dicom-web"
        wrapped = photo()
        with DicomWebArchive(base, timeout=0.5) as archive:
            started = time.monotonic()
            with pytest.raises(ArchiveUnavailable, match=r"did not answer within 0.5 s"):
                archive.store(wrapped.to_bytes(), ref_of(wrapped))
            assert time.monotonic() - started < 3


# --- authentication -----------------------------------------------------------------------------


def test_basic_auth_wrong_password_is_auth_failed(orthanc_with_users: OrthancServer) -> None:
    settings = settings_of(
        dicomweb_url=orthanc_with_users.base_url,
        archive_auth="basic",
        archive_username="u",
        archive_password="wrong",
    )
    wrapped = photo()
    with (
        DicomWebArchive.from_settings(settings) as archive,
        pytest.raises(ArchiveAuthFailed, match=r"HTTP 401.*CAPTURE_ARCHIVE_PASSWORD"),
    ):
        archive.store(wrapped.to_bytes(), ref_of(wrapped))


def test_basic_auth_right_password_stores(orthanc_with_users: OrthancServer) -> None:
    settings = settings_of(
        dicomweb_url=orthanc_with_users.base_url,
        archive_auth="basic",
        archive_username="u",
        archive_password="p",
    )
    wrapped = photo()
    with DicomWebArchive.from_settings(settings) as archive:
        archive.store(wrapped.to_bytes(), ref_of(wrapped))
        assert archive.is_visible(ref_of(wrapped))
    assert wrapped.sop_instance_uid in orthanc_with_users.sop_uids()


def test_no_credentials_for_a_protected_archive_is_auth_failed(
    orthanc_with_users: OrthancServer,
) -> None:
    with (
        DicomWebArchive(orthanc_with_users.base_url) as archive,
        pytest.raises(ArchiveAuthFailed),
    ):
        archive.is_visible(ref_of(photo()))


def oauth_settings(proxy: OAuthProxy, secret: str = "capture-secret") -> Settings:
    return settings_of(
        dicomweb_url=proxy.base_url,
        archive_auth="oauth2",
        archive_token_url=proxy.token_url,
        archive_client_id="capture",
        archive_client_secret=secret,
        archive_scope="system/*.write",
    )


def test_oauth2_fetches_a_token_caches_it_and_stores(oauth_proxy: OAuthProxy) -> None:
    issued = oauth_proxy.issued
    wrapped = photo()
    with DicomWebArchive.from_settings(oauth_settings(oauth_proxy)) as archive:
        archive.store(wrapped.to_bytes(), ref_of(wrapped))
        assert archive.is_visible(ref_of(wrapped))
    assert oauth_proxy.issued == issued + 1  # one token for both requests


def test_oauth2_fetches_a_new_token_once_after_a_401(oauth_proxy: OAuthProxy) -> None:
    wrapped = photo()
    with DicomWebArchive.from_settings(oauth_settings(oauth_proxy)) as archive:
        assert not archive.is_visible(ref_of(wrapped))
        issued, rejected = oauth_proxy.issued, oauth_proxy.rejected
        oauth_proxy.revoke_all()  # e.g. the archive restarted and forgot its tokens

        archive.store(wrapped.to_bytes(), ref_of(wrapped))

        assert oauth_proxy.issued == issued + 1
        assert oauth_proxy.rejected == rejected + 1
        assert archive.is_visible(ref_of(wrapped))


def test_oauth2_wrong_client_secret_is_auth_failed(oauth_proxy: OAuthProxy) -> None:
    wrapped = photo()
    with (
        DicomWebArchive.from_settings(oauth_settings(oauth_proxy, "wrong")) as archive,
        pytest.raises(ArchiveAuthFailed, match=r"invalid_client.*CAPTURE_ARCHIVE_CLIENT_SECRET"),
    ):
        archive.store(wrapped.to_bytes(), ref_of(wrapped))


def test_oauth2_token_endpoint_down_is_unavailable(oauth_proxy: OAuthProxy) -> None:
    settings = oauth_settings(oauth_proxy)
    settings.archive_token_url = "http://127.0.0.1:9/token"  # discard port: nobody listens
    with DicomWebArchive.from_settings(settings) as archive, pytest.raises(ArchiveUnavailable):
        archive.is_visible(ref_of(photo()))


def test_bearer_token(oauth_proxy: OAuthProxy) -> None:
    wrapped = photo()
    settings = settings_of(
        dicomweb_url=oauth_proxy.base_url, archive_auth="bearer", archive_token="static-token"
    )
    with DicomWebArchive.from_settings(settings) as archive:
        archive.store(wrapped.to_bytes(), ref_of(wrapped))
        assert archive.is_visible(ref_of(wrapped))

    settings = settings_of(
        dicomweb_url=oauth_proxy.base_url, archive_auth="bearer", archive_token="forged"
    )
    with (
        DicomWebArchive.from_settings(settings) as archive,
        pytest.raises(ArchiveAuthFailed, match=r"HTTP 401.*CAPTURE_ARCHIVE_TOKEN"),
    ):
        archive.is_visible(ref_of(wrapped))


@pytest.mark.parametrize(
    ("values", "variable"),
    [
        ({"archive_auth": "basic", "archive_password": "p"}, "CAPTURE_ARCHIVE_USERNAME"),
        ({"archive_auth": "basic", "archive_username": "u"}, "CAPTURE_ARCHIVE_PASSWORD"),
        ({"archive_auth": "bearer"}, "CAPTURE_ARCHIVE_TOKEN"),
        (
            {"archive_auth": "oauth2", "archive_client_id": "c", "archive_client_secret": "s"},
            "CAPTURE_ARCHIVE_TOKEN_URL",
        ),
        (
            {"archive_auth": "oauth2", "archive_token_url": "http://t", "archive_client_id": "c"},
            "CAPTURE_ARCHIVE_CLIENT_SECRET",
        ),
    ],
)
def test_missing_auth_settings_name_the_variable(values: dict[str, Any], variable: str) -> None:
    with pytest.raises(ValueError, match=f"{variable} is required for archive_auth="):
        auth_from_settings(settings_of(**values))


def test_no_auth_and_secrets_not_in_repr() -> None:
    assert auth_from_settings(settings_of()) is None
    auth = auth_from_settings(settings_of(archive_auth="bearer", archive_token="very-secret"))
    assert "very-secret" not in repr(auth)


# --- priors and thumbnails ----------------------------------------------------------------------


def test_find_priors_newest_first_with_site_laterality_and_filter(
    archive: DicomWebArchive,
) -> None:
    patient = f"PRIORS-{time.time_ns()}"
    older = photo("left forearm", patient=patient, acquired="20250101101500", note="baseline")
    newer = photo("right cheek", patient=patient, acquired="20260301083000.5+0100")
    elsewhere = photo("left forearm", patient=patient + "-other")
    for wrapped in (older, newer, elsewhere):
        archive.store(wrapped.to_bytes(), ref_of(wrapped))
    forearm = older.dataset.AnatomicRegionSequence[0].CodeValue
    cheek = newer.dataset.AnatomicRegionSequence[0].CodeValue

    priors = archive.find_priors(patient)

    assert [p.ref for p in priors] == [ref_of(newer), ref_of(older)]
    assert (priors[0].body_site_code, priors[0].laterality) == (cheek, "R")
    assert priors[0].acquired == "20260301083000.5+0100"
    first = priors[1]
    assert (first.body_site_code, first.laterality, first.comment) == (forearm, "L", "baseline")
    assert first.body_site_meaning == older.dataset.AnatomicRegionSequence[0].CodeMeaning
    assert first.description == older.dataset.SeriesDescription

    only_forearm = archive.find_priors(patient, body_site_code=forearm)
    assert [p.ref for p in only_forearm] == [ref_of(older)]
    assert archive.find_priors(patient, limit=1)[0].ref == ref_of(newer)
    assert archive.find_priors(patient, body_site_code="00000000") == []
    assert archive.find_priors(patient[:-2] + "*") == []  # a wildcard is not a patient
    assert archive.find_priors(f"NOBODY-{time.time_ns()}") == []


def test_find_priors_filters_by_issuer(archive: DicomWebArchive) -> None:
    patient = f"ISSUER-{time.time_ns()}"
    ours = photo(patient=patient, issuer="HOSP-A")
    theirs = photo(patient=patient, issuer="HOSP-B")
    for wrapped in (ours, theirs):
        archive.store(wrapped.to_bytes(), ref_of(wrapped))

    assert [p.ref for p in archive.find_priors(patient, issuer="HOSP-A")] == [ref_of(ours)]
    assert len(archive.find_priors(patient)) == 2


def _is_small_jpeg(data: bytes, max_size: int) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG"
        assert max(image.size) <= max_size
        return image.size


def test_thumbnail_is_a_small_jpeg(archive: DicomWebArchive) -> None:
    wrapped = photo(size=(1600, 1200))
    archive.store(wrapped.to_bytes(), ref_of(wrapped))

    size = _is_small_jpeg(archive.thumbnail(ref_of(wrapped)), 256)
    assert size == (256, 192)  # aspect kept, no padding
    assert _is_small_jpeg(archive.thumbnail(ref_of(wrapped), max_size=64), 64) == (64, 48)


def test_thumbnail_falls_back_to_the_stored_frame(orthanc: OrthancServer) -> None:
    wrapped = photo(size=(1200, 1600))
    with DicomWebArchive(orthanc.base_url) as plain:
        plain.store(wrapped.to_bytes(), ref_of(wrapped))
    # An archive without rendered resources: /rendered answers 404 (Orthanc, unknown path).
    client = rewriting_client(
        "GET", lambda url: url.copy_with(path=url.path.replace("/rendered", "/x"))
    )
    with client, DicomWebArchive(orthanc.base_url, client=client) as archive:
        assert _is_small_jpeg(archive.thumbnail(ref_of(wrapped)), 256) == (192, 256)


def test_thumbnail_of_an_unknown_instance_is_rejected(archive: DicomWebArchive) -> None:
    with pytest.raises(ArchiveRejected, match="HTTP 404"):
        archive.thumbnail(InstanceRef("1.2.3", "1.2.3.4", "1.2.3.4.5"))


# --- labels: the sensitivity block and encounter from WADO-RS series metadata ------------------


def test_labels_read_the_private_block_from_the_series_metadata(
    archive: DicomWebArchive, orthanc: OrthancServer
) -> None:
    restricted, unmarked = photo(), photo()
    block = restricted.dataset.private_block(SENSITIVITY_GROUP, SENSITIVITY_CREATOR)
    block[CONFIDENTIALITY_ELEMENT].value = "R"
    block[LEVEL_ELEMENT].value = "restricted"
    restricted.dataset.AdmissionID = "ADM-7"
    unmarked.dataset.remove_private_tags()  # as another system would store it
    for wrapped in (restricted, unmarked):
        archive.store(wrapped.to_bytes(), ref_of(wrapped))
    r, u = ref_of(restricted), ref_of(unmarked)
    absent = InstanceRef(r.study_uid, r.series_uid, "1.2.3.4.5.6")  # not in its series

    labels = archive.labels([r, u, absent])

    assert labels[r.sop_instance_uid] == InstanceLabels(
        marked=True,
        confidentiality="R",
        level="restricted",
        admission_id="ADM-7",
        study_description=str(restricted.dataset.StudyDescription),
    )
    assert labels[u.sop_instance_uid] is not None
    assert labels[u.sop_instance_uid].marked is False  # type: ignore[union-attr]
    assert absent.sop_instance_uid not in labels  # the metadata cannot say: left out

    # The series metadata request fails (nothing listens there): those instances are None,
    # which the timeline shows restricted.
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    client = rewriting_client(
        "GET",
        lambda url: url.copy_with(port=port) if url.path.endswith("/metadata") else url,
    )
    with client, DicomWebArchive(orthanc.base_url, client=client, timeout=2) as failing:
        assert failing.labels([r, u]) == {r.sop_instance_uid: None, u.sop_instance_uid: None}


# --- answers Orthanc never gives: Orthanc-shaped JSON through httpx.MockTransport -------------


def _stow_json(sop: str, *, warning: int | None = None, failure: int | None = None) -> bytes:
    """A Store Instances Response shaped like Orthanc's (PS3.18 Annex I), one instance."""
    item: dict[str, Any] = {
        "00081150": {"vr": "UI", "Value": ["1.2.840.10008.5.1.4.1.1.77.1.4"]},
        "00081155": {"vr": "UI", "Value": [sop]},
    }
    body: dict[str, Any] = {
        "00080005": {"vr": "CS", "Value": ["ISO_IR 192"]},
        "00081198": {"vr": "SQ"},
        "00081199": {"vr": "SQ"},
    }
    if failure is not None:
        item["00081197"] = {"vr": "US", "Value": [failure]}
        body["00081198"]["Value"] = [item]
    else:
        item["00081190"] = {
            "vr": "UR",
            "Value": [f"http://pacs/dicom-web/studies/1/series/2/instances/{sop}"],
        }
        if warning is not None:
            item["00081196"] = {"vr": "US", "Value": [warning]}
        body["00081199"]["Value"] = [item]
    return json.dumps(body).encode()


def mocked(
    stow: httpx.Response, qido: list[dict[str, Any]] | None = None
) -> tuple[DicomWebArchive, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "POST":
            return stow
        return httpx.Response(200, json=qido or [])

    client = httpx.Client(transport=httpx.MockTransport(handle))
    return DicomWebArchive("http://pacs/dicom-web/", client=client), seen


REF = InstanceRef("1.2.3", "1.2.3.4", "1.2.3.4.5")


def test_request_is_one_part_multipart_related_with_a_fresh_boundary() -> None:
    archive, seen = mocked(httpx.Response(200, content=_stow_json(REF.sop_instance_uid)))
    part10 = photo().to_bytes()
    archive.store(part10, REF)
    request = seen[0]
    assert str(request.url) == "http://pacs/dicom-web/studies"
    assert request.headers["Accept"] == "application/dicom+json"
    content_type = request.headers["Content-Type"]
    assert content_type.startswith('multipart/related; type="application/dicom"; boundary=')
    boundary = content_type.rsplit("=", 1)[1].encode()
    assert boundary not in part10
    assert request.content == (
        b"--"
        + boundary
        + b"\r\nContent-Type: application/dicom\r\n\r\n"
        + part10
        + b"\r\n--"
        + boundary
        + b"--\r\n"
    )


def test_202_with_warning_reason_and_header_are_warnings_in_words() -> None:
    stow = httpx.Response(
        202,
        content=_stow_json(REF.sop_instance_uid, warning=0xB000),
        headers={"Warning": '299 pacs: "Patient name was coerced"'},
    )
    result = mocked(stow)[0].store(b"DICM", REF)
    assert result.duplicate is False
    assert result.retrieve_url is not None
    assert result.warnings == (
        "the archive stored the photo with 0xB000 coercion of data elements "
        "(the archive changed some values)",
        "the archive warned: 299 Patient name was coerced",
    )


def test_failure_reason_for_our_instance_is_rejected_in_words() -> None:
    stow = httpx.Response(409, content=_stow_json(REF.sop_instance_uid, failure=0xA900))
    archive, seen = mocked(stow)
    with pytest.raises(
        ArchiveRejected,
        match=r"the archive refused the photo: 0xA900 data set does not match SOP class",
    ):
        archive.store(b"DICM", REF)
    assert "SOPInstanceUID=1.2.3.4.5" in str(seen[1].url)  # it checked with QIDO-RS first


def test_duplicate_failure_reason_is_success() -> None:
    stow = httpx.Response(409, content=_stow_json(REF.sop_instance_uid, failure=0x0111))
    result = mocked(stow)[0].store(b"DICM", REF)
    assert result.duplicate is True and result.warnings == ()


def test_409_without_body_for_a_visible_instance_is_a_duplicate() -> None:
    qido = [
        {
            "00080018": {"vr": "UI", "Value": [REF.sop_instance_uid]},
            "0020000D": {"vr": "UI", "Value": [REF.study_uid]},
            "0020000E": {"vr": "UI", "Value": [REF.series_uid]},
        }
    ]
    assert mocked(httpx.Response(409), qido)[0].store(b"DICM", REF).duplicate is True
    moved = [{**qido[0], "0020000E": {"vr": "UI", "Value": ["9.9"]}}]  # another series
    with pytest.raises(ArchiveRejected, match="HTTP 409"):
        mocked(httpx.Response(409), moved)[0].store(b"DICM", REF)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, ArchiveAuthFailed),
        (403, ArchiveAuthFailed),
        (408, ArchiveUnavailable),
        (429, ArchiveUnavailable),
        (500, ArchiveUnavailable),
        (503, ArchiveUnavailable),
        (400, ArchiveRejected),
        (404, ArchiveRejected),
        (405, ArchiveRejected),
        (413, ArchiveRejected),
        (415, ArchiveRejected),
    ],
)
def test_status_codes(status: int, error: type[Exception]) -> None:
    stow = httpx.Response(status, json={"Message": "short archive message"})
    with pytest.raises(error, match=f"HTTP {status}") as caught:
        mocked(stow)[0].store(b"DICM", REF)
    if error is ArchiveRejected:
        assert type(caught.value) is ArchiveRejected
        assert "short archive message" in str(caught.value)


def test_stow_response_parsing_tolerates_empty_and_foreign_bodies() -> None:
    assert parse_store_response(b"") == parse_store_response(b"<NativeDicomModel/>")
    assert parse_store_response(b"[]").referenced == ()
    parsed = parse_store_response(_stow_json("1.2", failure=0xC122))
    assert parsed.failed_for("1.2") is not None and parsed.failed[0].failure_reason == 0xC122
    assert parsed.referenced_for("1.2") is None


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (0xA700, "0xA700 refused: out of resources"),
        (0xA7FF, "0xA7FF refused: out of resources"),
        (0xA905, "0xA905 data set does not match SOP class"),
        (0xC122, "0xC122 referenced transfer syntax not supported"),
        (0xC001, "0xC001 cannot understand"),
        (0x0110, "0x0110 processing failure"),
        (0x0111, "0x0111 duplicate SOP instance"),
        (0x0122, "0x0122 referenced SOP class not supported"),
        (0x1234, "0x1234 failure"),
    ],
)
def test_failure_reasons_in_words(code: int, words: str) -> None:
    assert failure_reason_text(code) == words


def test_warning_reasons_in_words() -> None:
    assert warning_reason_text(0xB006).startswith("0xB006 elements discarded")
    assert warning_reason_text(0xB007) == "0xB007 data set does not match SOP class"
