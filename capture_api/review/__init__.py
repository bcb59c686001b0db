"""The clinician's review: earlier photos, the wound-care timeline, the wound-audit report.

``timeline`` (``Timeline``: one patient's photos in the archive, each with its sensitivity
decided for the user's roles; the priors view and the timeline both ask it), ``images``
(a photo of those views as a JPEG: blurred unless normal, clear only through the audited
break-the-glass) and ``audit_report`` (the aggregate wound-care photo audit: JSON, CSV,
printable HTML), ``healing`` (the area trend of a site's wound measurements).
"""

from capture_api.review.audit_report import (
    HTML_CSP,
    NO_UNIT,
    ReportRange,
    ReportRangeError,
    WoundAuditReport,
    build_report,
    csv_filename,
)
from capture_api.review.healing import SiteHealing, site_healing
from capture_api.review.healing_page import HEALING_CSP, healing_html
from capture_api.review.images import (
    NOT_FOUND,
    PREVIEW_SIZE,
    THUMBNAIL_SIZE,
    View,
    image,
    unblurred,
)
from capture_api.review.timeline import Timeline, TimelineItem, days_between, patient_of

__all__ = [
    "HEALING_CSP",
    "HTML_CSP",
    "NOT_FOUND",
    "NO_UNIT",
    "PREVIEW_SIZE",
    "THUMBNAIL_SIZE",
    "ReportRange",
    "ReportRangeError",
    "SiteHealing",
    "Timeline",
    "TimelineItem",
    "View",
    "WoundAuditReport",
    "build_report",
    "csv_filename",
    "days_between",
    "healing_html",
    "image",
    "patient_of",
    "site_healing",
    "unblurred",
]
