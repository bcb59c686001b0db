"""The audit trail as a hash chain: a row changed or deleted in the database is found.

The triggers of migration 0006 refuse UPDATE and DELETE, but a database superuser (or the
table's owner) can switch them off. So each row also carries (migration 0009):

* ``prev_hash``: the ``chain_hash`` of the row before it (``GENESIS`` for the first);
* ``chain_hash`` = HMAC-SHA256(key, ``capture-audit-v1`` | prev_hash | the row's content as
  canonical JSON: every column, its id included);
* ``chain_key``: which key made it (a fingerprint, never the key), ``sha256`` when none is
  configured (the HMAC then has an empty key). A row naming another key than the configured
  one cannot be checked, and is reported: keep the key once set.

``verify`` walks the rows in id order and reports a row whose content no longer matches its
hash (changed), a row whose ``prev_hash`` is not its predecessor's hash (rows deleted or
inserted between them), and a row without a hash after the chain began. With
``CAPTURE_AUDIT_CHAIN_KEY`` set (a secret kept outside the database) a superuser who edits a
row cannot recompute the chain after it; without it they could, with effort, and only the
copy the audit record repository received (ATNA forwarding) would tell. Deleting the newest
rows leaves a shorter chain that still links: compare the head ``verify`` prints with the
last one you noted, or with the repository's copy.

Writers serialise on the chain head (``capture_api.store.audit_rows.append``): one at a time
reads the last hash and inserts the next row in the same transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from capture_api.store import audit_rows
from capture_api.store.audit_rows import database_key
from capture_api.store.db import Database

if TYPE_CHECKING:
    from capture_api.config import Settings

GENESIS = "0" * 64
UNKEYED = "sha256"
_DOMAIN = b"capture-audit-v1"
#: Columns that are the chain itself, not the row's content.
CHAIN_COLUMNS = frozenset({"prev_hash", "chain_hash", "chain_key"})


@dataclass(frozen=True)
class ChainKey:
    """The key rows are chained with, and its public name (stored with each row)."""

    secret: bytes
    name: str

    @classmethod
    def of(cls, secret: str | None) -> ChainKey:
        if not secret:
            return cls(b"", UNKEYED)
        digest = hashlib.sha256(b"capture-audit-chain-key:" + secret.encode()).hexdigest()
        return cls(secret.encode(), f"k{digest[:15]}")

    def link(self, prev_hash: str, row: Mapping[str, Any]) -> str:
        """The ``chain_hash`` of a row with this content after ``prev_hash``."""
        message = b"\n".join((_DOMAIN, prev_hash.encode("ascii"), canonical(row)))
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()


def canonical(row: Mapping[str, Any]) -> bytes:
    """The row's content as the hash sees it: every column but the chain's, sorted, with
    times in UTC to the microsecond (as both databases give them back)."""
    content = {k: _plain(v) for k, v in row.items() if k not in CHAIN_COLUMNS}
    return json.dumps(content, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        return aware.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value


# --- which key, per database ----------------------------------------------------------------

_lock = threading.Lock()
_keys: dict[str, ChainKey] = {}


def configure(settings: Settings) -> None:
    """Chain the rows of ``settings``' database with ``CAPTURE_AUDIT_CHAIN_KEY``."""
    with _lock:
        _keys[database_key(settings.sqlalchemy_url)] = key_of(settings)


def key_of(settings: Settings) -> ChainKey:
    secret = settings.audit_chain_key
    return ChainKey.of(secret.get_secret_value() if secret is not None else None)


def key_for(engine: Database) -> ChainKey:
    """The key of the rows written through ``engine`` (a process that never configured one:
    its own settings, from the environment)."""
    with _lock:
        found = _keys.get(database_key(engine))
    if found is not None:
        return found
    from capture_api.config import get_settings

    return key_of(get_settings())


# --- verification ---------------------------------------------------------------------------


@dataclass
class Verdict:
    """What ``verify`` found: counts, the head, and one line per problem."""

    rows: int = 0
    before_chain: int = 0  # written before migration 0009: no hash to check
    chained: int = 0
    other_key: int = 0  # name another chain key: their content cannot be checked (a problem)
    first_id: int | None = None
    head_id: int | None = None
    head_hash: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems


def verify(rows: Iterable[Mapping[str, Any]], key: ChainKey) -> Verdict:
    """Walk ``rows`` (every column, oldest id first) and report where the chain breaks."""
    verdict = Verdict()
    last_id: int | None = None
    last_hash: str | None = None
    for row in rows:
        verdict.rows += 1
        row_id = int(row["id"])
        verdict.first_id = row_id if verdict.first_id is None else verdict.first_id
        stored = row.get("chain_hash")
        if not stored:
            if last_hash is None:
                verdict.before_chain += 1
            else:
                verdict.problems.append(
                    f"row {row_id} has no hash although the chain began before it (row "
                    f"{last_id}): it was inserted or changed directly in the database"
                )
            continue
        verdict.chained += 1
        expected_prev = last_hash if last_hash is not None else GENESIS
        if row.get("prev_hash") != expected_prev:
            where = f"between row {last_id} and row {row_id}" if last_id else f"before row {row_id}"
            verdict.problems.append(
                f"the chain does not link {where}: rows were deleted (or inserted) there"
            )
        if row.get("chain_key") != key.name:
            verdict.other_key += 1
            verdict.problems.append(
                f"row {row_id} says it was chained with key {row.get('chain_key')!r}, not the "
                f"configured {key.name!r}: its content cannot be checked (set the key it was "
                "written with, CAPTURE_AUDIT_CHAIN_KEY, or it was changed to hide an edit)"
            )
        elif not hmac.compare_digest(key.link(str(row.get("prev_hash")), row), str(stored)):
            verdict.problems.append(f"row {row_id} was changed after it was written")
        last_id, last_hash = row_id, str(stored)
    verdict.head_id, verdict.head_hash = last_id, last_hash
    return verdict


def verify_database(engine: Database, key: ChainKey) -> Verdict:
    """``verify`` over every row of ``engine``'s audit trail, read in batches."""
    return verify(audit_rows.chain_rows(engine), key)


def report(verdict: Verdict, key: ChainKey) -> str:
    """What ``capture-api audit verify`` prints."""
    lines = []
    if verdict.intact:
        lines.append(f"audit trail intact: {verdict.rows} rows checked")
    else:
        lines.append(
            f"audit trail NOT intact: {len(verdict.problems)} problem(s) in {verdict.rows} rows"
        )
        lines += [f"  - {p}" for p in verdict.problems]
    if verdict.before_chain:
        lines.append(f"{verdict.before_chain} rows were written before the chain (no hash)")
    if verdict.head_id is not None:
        lines.append(f"chain head: row {verdict.head_id} {verdict.head_hash} (key {key.name})")
    return "\n".join(lines)
