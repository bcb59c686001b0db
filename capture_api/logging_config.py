"""The service's logging: one useful line per request and per event, and no patient data.

What a log line may hold: the method, the route *template* (``/api/v1/captures/{capture_id}``),
the status, the duration, capture ids, counts, exception types and where they were raised.
What it must never hold: names, MRNs, birth dates, notes, FHIR search values, tokens, cookies.
Those reach the service in query strings (``?identifier=``, ``/launch/callback?code=``), in
request bodies and in exception messages (a pydantic error quotes the value it refused; a
database error quotes its SQL parameters), so three things keep them out, on every handler:

* ``PhiFilter`` removes query strings and credentials from every message, whoever logs it
  (uvicorn, httpx, our own loggers): the last line of defence, not the only one;
* ``PhiSafeFormatter`` prints a traceback's frames and exception types but withholds the
  exception messages, and ``PhiFilter`` does the same for Python warnings;
* the outbound HTTP clients (httpx, httpcore) log only warnings: their INFO lines are request
  URLs, and a FHIR read URL carries the patient's id.

Our own access log is ``capture.access`` (``capture_api.api.request_log``); uvicorn's is off
because its line has the raw path with the query string and no duration.
"""

from __future__ import annotations

import logging
import re
import traceback
from types import TracebackType
from typing import Any

ACCESS_LOGGER = "capture.access"
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

#: A query string after a URL or a path: everything up to whitespace or a quote.
_QUERY = re.compile(r"(?<=[\w/\]])\?(?!\[query removed\])[^\s\"'<>]+")
#: An Authorization header's credentials.
_AUTHORIZATION = re.compile(r"(?i)\b(bearer|basic)\s+[\w.~+/=-]+")
#: Secrets written as ``name=value`` or ``"name": "value"`` (cookies, token responses).
_SECRET = re.compile(
    r"(?i)\b(capture_session|access_token|refresh_token|id_token|client_secret|"
    r"client_assertion|csrf_token|password)\b(\"?\s*[=:]\s*\"?)[^\s\"',;&]+"
)
#: ``warnings.formatwarning``'s "file:line: Category: text": the part before the text.
_WARNING = re.compile(r"^(.*?:\d+: \w+):")
QUERY_REMOVED = "?[query removed]"
WITHHELD = "[message withheld: may quote patient data]"

_ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def scrub(text: str) -> str:
    """``text`` without query strings and credentials (idempotent)."""
    text = _QUERY.sub(QUERY_REMOVED, text)
    text = _AUTHORIZATION.sub(lambda m: f"{m.group(1)} [removed]", text)
    return _SECRET.sub(lambda m: f"{m.group(1)}{m.group(2)}[removed]", text)


class PhiFilter(logging.Filter):
    """Rewrites every record's message through ``scrub`` (attached to the handlers).

    A Python warning (``py.warnings``, see ``capture_warnings``) keeps its place and category
    but not its text: pydicom's "invalid value" warnings quote the value, e.g. a name.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the line, nor leak its args
            message = f"{record.msg!s} [arguments withheld: they did not match the format]"
        if record.name == "py.warnings":
            found = _WARNING.match(message)
            message = f"{found.group(1)} {WITHHELD}" if found else f"a warning: {WITHHELD}"
        record.msg, record.args = scrub(message), None
        return True


def capture_warnings() -> None:
    """Send Python warnings through logging (and so through ``PhiFilter``), not to stderr."""
    logging.captureWarnings(True)


class PhiSafeFormatter(logging.Formatter):
    """Tracebacks with frames and exception types, without exception messages."""

    def formatException(self, ei: Any) -> str:
        exc_info: _ExcInfo = ei  # (type, exception, traceback), as logging passes it
        return "".join(_safe_traceback(exc_info[1]))


def _safe_traceback(exc: BaseException) -> list[str]:
    """``traceback.format_exception`` with each exception's message replaced (chains too)."""
    lines: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    chain: list[BaseException] = []
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or current.__context__
    for index, item in enumerate(reversed(chain)):
        if index:
            lines.append("\nThe above exception led to the following exception:\n\n")
        lines.append("Traceback (most recent call last):\n")
        lines.extend(traceback.format_list(traceback.extract_tb(item.__traceback__)))
        kind = type(item)
        lines.append(f"{kind.__module__}.{kind.__qualname__}: {WITHHELD}\n")
    return lines


def logging_config(level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` for ``capture-api run`` (also uvicorn's ``log_config``).

    One stderr handler on the root logger, filtered and formatted as above; uvicorn's loggers
    propagate to it instead of having their own handlers.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"phi": {"()": PhiFilter}},
        "formatters": {"safe": {"()": PhiSafeFormatter, "format": FORMAT}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "stream": "ext://sys.stderr",
                "formatter": "safe",
                "filters": ["phi"],
            }
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            "uvicorn": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.access": {"level": "WARNING", "handlers": [], "propagate": True},
            "httpx": {"level": "WARNING"},
            "httpcore": {"level": "WARNING"},
            "alembic.runtime.plugins": {"level": "WARNING"},  # a line per plugin at each start
        },
    }
