"""The healing trend of a site on the wound-care timeline: the areas measured over time.

The points are the photos' current wound measurements (``store.measurements``: the server's
numbers), oldest first; the figures (reduction since the first measurement and over the last
4 weeks, the literature threshold and whether the wound is below it) are
``capture_api.measure.healing``'s. A measurement is shown only when its photo is one the user
may see listed (``privacy.visibility``): a very-restricted photo's numbers are as hidden as the
photo.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from capture_api.capture.schemas import PatientIn
from capture_api.capture.sensitivity import SensitivityLevel
from capture_api.measure import (
    HealingPoint,
    HealingTrend,
    WoundType,
    healing_trend,
    wound_type_for_site,
)
from capture_api.privacy.visibility import Visibility
from capture_api.store import measurements
from capture_api.store.db import Database
from capture_api.store.records import WoundMeasurementRecord

__all__ = ["SiteHealing", "site_healing"]


@dataclass(frozen=True)
class SiteHealing:
    """The measurements of one site (and side) and their trend."""

    measurements: tuple[WoundMeasurementRecord, ...]
    trend: HealingTrend


def site_healing(
    engine: Database,
    patient: PatientIn,
    body_site: str,
    laterality: str | None,
    visibility: Visibility,
    wound_type: WoundType | None = None,
) -> SiteHealing:
    """The site's trend for this user; ``wound_type`` defaults from the site."""
    issuer = _issuer(patient)
    rows = measurements.for_site(engine, patient.id, issuer, body_site, laterality)
    shown = tuple(row for row, level in rows if visibility.listed(_level(level)))
    points = [HealingPoint(_utc(row.measured_at), row.area_cm2) for row in shown]
    kind = wound_type or wound_type_for_site(body_site)
    return SiteHealing(shown, healing_trend(points, kind))


def _level(value: str) -> SensitivityLevel:
    try:
        return SensitivityLevel(value)
    except ValueError:
        return SensitivityLevel.VERY_RESTRICTED  # unknown: fail closed


def _issuer(patient: PatientIn) -> str:
    if patient.issuer is None:
        return ""
    return patient.issuer.namespace or patient.issuer.universal_id or ""


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value
