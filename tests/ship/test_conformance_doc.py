"""docs/conformance.md says what the encoder really writes (see ``conformance_table``)."""

from __future__ import annotations

import re

from pydicom.uid import JPEGBaseline8Bit, JPEGExtended12Bit, VLPhotographicImageStorage

from capture_api.encode.vl_photo import SENSITIVITY_CREATOR, SENSITIVITY_GROUP
from tests.ship import conformance_table as ct

DOC = ct.DOC.read_text()


def test_every_written_attribute_has_a_documented_source() -> None:
    undocumented = sorted(set(ct.written_attributes()) - set(ct.SOURCES))
    assert not undocumented, f"add these to conformance_table.SOURCES: {undocumented}"


def test_every_documented_source_is_still_written() -> None:
    stale = sorted(set(ct.SOURCES) - set(ct.written_attributes()))
    assert not stale, f"the encoder no longer writes these: {stale}"


def test_the_doc_table_is_the_generated_one() -> None:
    assert ct.documented_block(DOC) == ct.table(), (
        "docs/conformance.md is out of date: run python -m tests.ship.conformance_table --write"
    )


def test_the_table_tags_are_the_encoded_tags() -> None:
    """Independent of the generator's formatting: the tags in the doc = the tags written."""
    documented = set(re.findall(r"\| (\([0-9A-F]{4},[0-9A-Fx]{4}\)) \|", ct.documented_block(DOC)))
    written = {w.tag for w in ct.written_attributes().values()}
    assert documented == written


def test_sop_class_transfer_syntaxes_and_private_creator_are_stated() -> None:
    for uid in (VLPhotographicImageStorage, JPEGBaseline8Bit, JPEGExtended12Bit):
        assert f"`{uid}`" in DOC
    assert f"({SENSITIVITY_GROUP:04X},0010)" in DOC and SENSITIVITY_CREATOR in DOC
    assert "Geolocation" in DOC and "**never**" in DOC
