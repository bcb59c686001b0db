"""The ``capture-api`` command: run the service, export its OpenAPI, batch-wrap photos.

``wrap`` is for wound clinics that still shoot on cameras: import a card's photos for one
patient into DICOM files, one per photo, with a per-file reason for anything refused.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from capture_api.capture.anatomy import BodySite, Laterality, resolve
from capture_api.capture.model import CaptureContext
from capture_api.capture.patient import Issuer, Patient, PersonName, Sex
from capture_api.capture.sensitivity import Sensitivity, SensitivityLevel
from capture_api.config import get_settings
from capture_api.encode import MemoryBudget, MiB
from capture_api.encode.pipeline import EncoderOptions, wrap_photo
from capture_api.encode.prepare import Limits
from capture_api.encode.uids import derived_uid, is_valid_uid
from capture_api.exceptions import CaptureError, InvalidMetadata

EXIT_OK, EXIT_REJECTED, EXIT_USAGE = 0, 1, 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    handlers = {
        "run": _run,
        "openapi": _openapi,
        "wrap": _wrap,
        "migrate": _migrate,
        "requeue": _requeue,
        "archive": _archive,
        "audit": _audit,
    }
    handler = handlers.get(args.command, _worker)
    return handler(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="capture-api", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="start the HTTP service (settings from CAPTURE_* variables)")
    run.add_argument("--host", default=None)
    run.add_argument("--port", type=int, default=None)
    sub.add_parser("openapi", help="print the service's OpenAPI document as JSON")
    sub.add_parser("migrate", help="create or upgrade the database schema, then exit")
    requeue = sub.add_parser("requeue", help="re-send captures the archive refused, once fixed")
    requeue.add_argument(
        "--kind",
        action="append",
        choices=["archive-auth", "archive-rejected"],
        help="which failures to re-send (default: archive-auth); may be repeated",
    )
    worker = sub.add_parser(
        "worker",
        help="run only the background workers: delivery, EHR notifications, worklist "
        "completion (no HTTP)",
    )
    worker.add_argument("--threads", type=int, default=None)
    _add_wrap_parser(sub)
    _add_archive_parser(sub)
    audit = sub.add_parser("audit", help="check the audit trail")
    audit_tasks = audit.add_subparsers(dest="audit_command", required=True)
    audit_tasks.add_parser(
        "verify",
        help="walk the audit trail's hash chain: exit 1 if a row was changed, deleted or "
        "inserted in the database directly (CAPTURE_AUDIT_CHAIN_KEY as the service uses it)",
    )
    return parser


def _add_wrap_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    wrap = sub.add_parser("wrap", help="wrap JPEG/HEIC photos into DICOM VL Photographic files")
    wrap.add_argument("photos", nargs="+", type=Path, metavar="PHOTO")
    wrap.add_argument("--out", required=True, type=Path, help="folder for the .dcm files")
    wrap.add_argument("--patient-id", required=True)
    wrap.add_argument("--issuer", help="issuer of the patient ID: an OID, a URI or a local name")
    wrap.add_argument("--patient-name", help='DICOM form "Family^Given"')
    wrap.add_argument("--birth-date", help="YYYYMMDD")
    wrap.add_argument("--sex", choices=[s.value for s in Sex])
    wrap.add_argument("--body-site", help='SNOMED CT code or text, e.g. "left forearm", "sacrum"')
    wrap.add_argument("--laterality", help="L, R, B or U (overrides a side named in --body-site)")
    wrap.add_argument(
        "--sensitivity", default="normal", choices=[s.value for s in SensitivityLevel]
    )
    wrap.add_argument("--study-uid", help="add to this study (default: one new study per run)")
    wrap.add_argument("--note", help="a note written into every photo (Image Comments)")
    wrap.add_argument("--operator", help='who took the photos, "Family^Given"')
    wrap.add_argument("--quiet", action="store_true", help="no progress display")


def _add_archive_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    archive = sub.add_parser("archive", help="maintain the embedded archive (no DICOMweb URL)")
    tasks = archive.add_subparsers(dest="archive_command", required=True)
    rebuild = tasks.add_parser(
        "rebuild", help="recreate the archive's index and DICOMDIR from its files"
    )
    rebuild.add_argument(
        "--data-dir",
        type=Path,
        help="the service's data folder, holding archive/ (default: CAPTURE_DATA_DIR or ./var)",
    )


# --- run / openapi ---------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    import uvicorn

    from capture_api.logging_config import capture_warnings, logging_config

    capture_warnings()
    settings = get_settings()
    uvicorn.run(
        "capture_api.api.app:create_app",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        http="httptools",  # C parsing: a 12 MP upload costs about 2 ms less Python than h11
        log_config=logging_config(),  # capture_api.logging_config: no PHI in any line
        access_log=False,  # uvicorn's line has the raw query string: capture.access replaces it
        proxy_headers=False,  # the app trusts X-Forwarded-* only from CAPTURE_TRUSTED_PROXIES
    )
    return EXIT_OK


def _migrate(_: argparse.Namespace) -> int:
    from capture_api.store.db import make_engine, migrate

    migrate(make_engine(get_settings().sqlalchemy_url))
    return EXIT_OK


def _requeue(args: argparse.Namespace) -> int:
    from capture_api.runtime import Runtime

    runtime = Runtime.build(get_settings())
    try:
        count = runtime.service.requeue_failed(tuple(args.kind or ["archive-auth"]))
    finally:
        runtime.close()
    print(f"{count} captures queued to be sent again", file=sys.stderr)
    return EXIT_OK


def _worker(args: argparse.Namespace) -> int:
    """Run the leased workers until SIGTERM/SIGINT (for deployments that scale workers apart).

    The delivery outbox, and the EHR notifications and worklist completions when configured:
    with ``CAPTURE_WORKER_ENABLED=false`` on the API replicas, nothing else runs them.
    """
    import signal
    import threading

    from capture_api.audit import forwarding
    from capture_api.runtime import Runtime

    settings = get_settings()
    runtime = Runtime.build(settings)
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    forwarding.replay(runtime.engine)  # audit events a stopped worker never sent
    runtime.start_workers(args.threads or settings.worker_threads)
    done.wait()
    runtime.close()
    return EXIT_OK


def _openapi(_: argparse.Namespace) -> int:
    from capture_api.api.app import create_app

    json.dump(create_app().openapi(), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return EXIT_OK


# --- archive ---------------------------------------------------------------------------------


def _audit(_: argparse.Namespace) -> int:
    """``audit verify``: the chain of every audit row, checked; exit 0 intact, 1 not."""
    from capture_api.audit import chain
    from capture_api.store.db import make_engine

    settings = get_settings()
    key = chain.key_of(settings)
    engine = make_engine(settings.sqlalchemy_url)
    try:
        verdict = chain.verify_database(engine, key)
    finally:
        engine.dispose()
    print(chain.report(verdict, key))
    return EXIT_OK if verdict.intact else EXIT_REJECTED


def _archive(args: argparse.Namespace) -> int:
    """``archive rebuild``: index every file of the local archive again, then the DICOMDIR."""
    from capture_api.deliver.local_archive import LocalArchive
    from capture_api.exceptions import ArchiveUnavailable

    root = (args.data_dir or get_settings().data_dir) / "archive"
    if not root.is_dir():
        print(f"capture-api archive: there is no archive folder {root}", file=sys.stderr)
        return EXIT_USAGE
    archive = LocalArchive(root)
    try:
        report = archive.rebuild()
    except ArchiveUnavailable as exc:
        print(f"capture-api archive rebuild: {exc}", file=sys.stderr)
        return EXIT_REJECTED
    finally:
        archive.close()
    if report.damaged_index is not None:
        print(f"the damaged index was moved to {report.damaged_index}", file=sys.stderr)
    for source, target in report.moved:
        print(f"moved {source} to {target} (not a DICOM File ID)", file=sys.stderr)
    for path, reason in report.skipped:
        print(f"skipped {path}: {reason}", file=sys.stderr)
    for path, kept in report.duplicates:
        print(f"skipped {path}: the same SOP Instance UID as {kept}", file=sys.stderr)
    if report.dropped:
        print(
            f"{report.dropped} indexed instances whose files are gone were dropped", file=sys.stderr
        )
    print(
        f"{report.indexed} instances indexed in {archive.root}; DICOMDIR rewritten", file=sys.stderr
    )
    return EXIT_OK


# --- wrap ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Batch:
    """What every photo of one ``wrap`` run shares."""

    patient: Patient
    site: BodySite | None
    laterality: Laterality | None
    sensitivity: Sensitivity
    study_uid: str
    note: str | None
    operator: PersonName | None
    digests: dict[Path, str]


def _wrap(args: argparse.Namespace) -> int:
    settings = get_settings()
    try:
        batch = _batch_from_args(args, settings.uid_root)
    except InvalidMetadata as exc:
        print(f"capture-api wrap: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(
            f"capture-api wrap: cannot use {args.out} as the output folder: {exc}", file=sys.stderr
        )
        return EXIT_USAGE
    options = EncoderOptions(
        uid_root=settings.uid_root,
        institution_name=settings.institution_name,
        station_name=settings.station_name,
        limits=Limits(
            settings.max_upload_bytes,
            settings.max_pixels,
            MemoryBudget(settings.decode_memory_mb * MiB),
        ),
    )
    rejected, used_names, seen = 0, set[str](), dict[str, Path]()
    for number, path in enumerate(args.photos, start=1):
        digest = batch.digests.get(path)
        if digest in seen:
            print(
                f"[{number}/{len(args.photos)}] skipped {path}: the same photo as {seen[digest]}",
                file=sys.stderr,
            )
            continue
        if digest is not None:
            seen[digest] = path
        reason = _wrap_one(path, number, batch, options, _out_path(args.out, path, used_names))
        rejected += reason is not None
        _report(number, len(args.photos), path, reason, quiet=args.quiet)
    total = len(args.photos)
    print(f"{total - rejected} of {total} photos wrapped into {args.out}", file=sys.stderr)
    return EXIT_REJECTED if rejected else EXIT_OK


def _batch_from_args(args: argparse.Namespace, uid_root: str | None) -> _Batch:
    patient = Patient(
        patient_id=args.patient_id,
        issuer=Issuer.parse(args.issuer) if args.issuer else None,
        name=PersonName.parse(args.patient_name) if args.patient_name else None,
        birth_date=_parse_date(args.birth_date) if args.birth_date else None,
        sex=Sex(args.sex) if args.sex else None,
    )
    site, laterality = resolve(args.body_site) if args.body_site else (None, None)
    if args.laterality:
        laterality = Laterality.parse(args.laterality)
    if site is not None and site.paired and laterality is None:
        # One usage error, not the same refusal for every photo of the card.
        raise InvalidMetadata(
            f"{site.meaning} is on one side of the body: add --laterality L, R or B "
            f"(or name the side in --body-site, e.g. 'left {args.body_site.strip()}')"
        )
    if args.study_uid and not is_valid_uid(args.study_uid):
        raise InvalidMetadata(f"--study-uid {args.study_uid!r} is not a valid DICOM UID")
    # Content-derived: importing the same card again gives the same study and instances.
    digests = {p: d for p in args.photos if (d := _digest(p)) is not None}
    study_uid = args.study_uid or derived_uid(
        uid_root, "cli-study", patient.patient_id, *sorted(set(digests.values()))
    )
    return _Batch(
        patient=patient,
        site=site,
        laterality=laterality,
        sensitivity=Sensitivity.parse(args.sensitivity),
        study_uid=study_uid,
        note=args.note,
        operator=PersonName.parse(args.operator) if args.operator else None,
        digests=digests,
    )


def _wrap_one(
    path: Path, number: int, batch: _Batch, options: EncoderOptions, target: Path
) -> str | None:
    """Wrap one file; return None on success or the reason it was refused."""
    try:
        data = path.read_bytes()
        ctx = CaptureContext(
            # Same file + same patient -> same capture id -> same SOP Instance UID on re-import.
            capture_id=f"file:{batch.patient.patient_id}:{hashlib.sha256(data).hexdigest()}",
            patient=batch.patient,
            study_uid=batch.study_uid,
            instance_number=number,
            body_site=batch.site,
            laterality=batch.laterality,
            sensitivity=batch.sensitivity,
            note=batch.note,
            operator=batch.operator,
        )
        wrapped = wrap_photo(data, ctx, options)
        wrapped.save(target)
    except OSError as exc:
        return f"cannot read the file ({exc.strerror or exc})"
    except CaptureError as exc:
        return str(exc)
    return None


def _report(number: int, total: int, path: Path, reason: str | None, *, quiet: bool) -> None:
    if reason is not None:
        print(f"[{number}/{total}] REJECTED {path}: {reason}", file=sys.stderr)
    elif not quiet:
        print(f"[{number}/{total}] ok {path}", file=sys.stderr)


def _out_path(out: Path, photo: Path, used: set[str]) -> Path:
    """``<stem>.dcm``; a second photo of this run with the same stem gets ``<stem>_2.dcm``.

    Files from an earlier run are overwritten: they hold the same instances (same UIDs).
    """
    name, n = f"{photo.stem}.dcm", 1
    while name in used:
        n += 1
        name = f"{photo.stem}_{n}.dcm"
    used.add(name)
    return out / name


def _digest(path: Path) -> str | None:
    """SHA-256 of the file, or None when it cannot be read (it is rejected on its own)."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None


def _parse_date(text: str) -> dt.date:
    try:
        return dt.datetime.strptime(text, "%Y%m%d").date()
    except ValueError:
        raise InvalidMetadata(f"birth date {text!r} is not a date in YYYYMMDD form") from None


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
