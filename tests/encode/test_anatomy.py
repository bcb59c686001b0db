"""Tests for capture_api.capture.anatomy: coded body sites, laterality, search and resolve."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sr.codedict import codes
from pydicom.uid import ExplicitVRLittleEndian, VLPhotographicImageStorage, generate_uid

from capture_api.capture import anatomy
from capture_api.capture.anatomy import (
    BodySite,
    Laterality,
    SiteMatch,
    all_sites,
    get_site,
    offer,
    resolve,
    search,
    site_name,
)
from capture_api.exceptions import InvalidMetadata


def _sct_values(cid: str) -> set[str]:
    return {c.value for c in getattr(codes, cid).concepts.values() if c.scheme_designator == "SCT"}


# --- the site table ------------------------------------------------------------------------------


def test_every_site_is_an_sct_code_from_its_context_group() -> None:
    groups = {"4029": _sct_values("CID4029"), "4031": _sct_values("CID4031")}
    for site in all_sites():
        assert site.code.scheme_designator == "SCT"
        assert site.code_value in groups[site.context_group], site


def test_sites_cover_both_groups_once_each_with_4029_first() -> None:
    cid4029, cid4031 = _sct_values("CID4029"), _sct_values("CID4031")
    sites = all_sites()
    values = [s.code_value for s in sites]
    assert len(values) == len(set(values))
    assert set(values) == cid4029 | cid4031
    for site in sites:
        if site.code_value in cid4029:
            assert site.context_group == "4029"


def test_all_sites_is_sorted_by_meaning_and_cached() -> None:
    sites = all_sites()
    meanings = [s.meaning.casefold() for s in sites]
    assert meanings == sorted(meanings)
    assert all_sites() is sites


def test_non_sct_codes_are_left_out() -> None:
    fma_or_dcm = {c.value for c in codes.CID4029.concepts.values() if c.scheme_designator != "SCT"}
    assert fma_or_dcm  # the group really has some
    assert not fma_or_dcm & {s.code_value for s in all_sites()}


def test_site_properties() -> None:
    breast = get_site("76752008")
    assert breast.meaning == codes.CID4031.Breast.meaning
    assert breast.code_value == codes.CID4031.Breast.value
    assert breast.context_group == "4031"
    assert breast.context_uid == "1.2.840.10008.6.1.308"
    skin = get_site(codes.CID4029.SkinOfHand.value)
    assert skin.context_uid == "1.2.840.10008.6.1.1268"


def test_synonym_keys_exist_in_the_groups() -> None:
    keywords = set(codes.CID4029.concepts) | set(codes.CID4031.concepts)
    assert set(anatomy._SYNONYMS) <= keywords
    for words in anatomy._SYNONYMS.values():
        assert all(w == w.lower().strip() and w for w in words)


def test_paired_table_keywords_exist_in_the_groups() -> None:
    keywords = set(codes.CID4031.concepts)
    assert keywords >= anatomy._DCIODVFY_UNPAIRED
    assert set(anatomy._PAIRED_OVERRIDES) <= set(codes.CID4029.concepts)


def test_synonyms_are_attached_to_sites() -> None:
    sacrum = get_site(codes.CID4031.Sacrum.value)
    assert "sacral" in sacrum.synonyms


# --- paired ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        codes.CID4031.Forearm,
        codes.CID4031.Hand,
        codes.CID4031.Breast,
        codes.CID4031.Knee,
        codes.CID4031.Eye,
        codes.CID4029.SkinOfAnteriorSurfaceOfForearm,
        codes.CID4029.SkinOfHeel,
        codes.CID4029.SkinOfAxilla,
        codes.CID4029.SkinOfButtock,
        codes.CID4029.SkinOfEar,
        codes.CID4029.NailUnitOfGreatToe,
        codes.CID4029.SkinOfLateralPortionOfNeck,
    ],
)
def test_paired_sites(code: object) -> None:
    assert get_site(code.value).paired  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "code",
    [
        codes.CID4031.Sacrum,
        codes.CID4031.Abdomen,
        codes.CID4029.SkinOfFace,
        codes.CID4029.SkinOfAbdomen,
        codes.CID4031.Chest,
        codes.CID4029.SkinOfBack,
        codes.CID4029.SkinOfScalp,
        codes.CID4029.SkinOfPerineum,
        codes.CID4029.SkinOfUmbilicus,
        codes.CID4031.Neck,
        codes.CID4031.PelvisAndLowerExtremities,
        codes.CID4029.FrenulumOfLabiaMinora,
    ],
)
def test_unpaired_sites(code: object) -> None:
    assert not get_site(code.value).paired  # type: ignore[attr-defined]


# --- get_site ----------------------------------------------------------------------------------


def test_get_site_unknown_code() -> None:
    with pytest.raises(InvalidMetadata, match="not a body site code from DICOM CID 4029/4031"):
        get_site("12345")


def test_get_site_rejects_fma_code_from_the_group() -> None:
    fma = codes.CID4029.SkinOfDorsalPartOfThumb
    assert fma.scheme_designator == "FMA"
    with pytest.raises(InvalidMetadata):
        get_site(fma.value)


# --- Laterality ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("L", Laterality.LEFT),
        ("l", Laterality.LEFT),
        (" Left ", Laterality.LEFT),
        ("R", Laterality.RIGHT),
        ("RIGHT", Laterality.RIGHT),
        ("B", Laterality.BILATERAL),
        ("both", Laterality.BILATERAL),
        ("Bilateral", Laterality.BILATERAL),
        ("U", Laterality.UNPAIRED),
        ("unpaired", Laterality.UNPAIRED),
        ("none", Laterality.UNPAIRED),
    ],
)
def test_laterality_parse(text: str, expected: Laterality) -> None:
    assert Laterality.parse(text) is expected


@pytest.mark.parametrize("text", ["", "x", "middle", "LR", "leftt"])
def test_laterality_parse_rejects(text: str) -> None:
    with pytest.raises(InvalidMetadata) as info:
        Laterality.parse(text)
    message = str(info.value)
    for allowed in ("L", "R", "B", "U", "left", "right", "bilateral", "unpaired"):
        assert allowed in message


def test_laterality_values_are_dicom_enumerated_values() -> None:
    assert [lat.value for lat in Laterality] == ["L", "R", "B", "U"]


def test_modifier_codes() -> None:
    left, right, both = (
        Laterality.LEFT.modifier_code,
        Laterality.RIGHT.modifier_code,
        Laterality.BILATERAL.modifier_code,
    )
    assert left is not None and right is not None and both is not None
    assert (left.value, right.value, both.value) == ("7771000", "24028007", "51440002")
    assert {left.scheme_designator, right.scheme_designator, both.scheme_designator} == {"SCT"}
    assert left == codes.CID244.Left
    assert Laterality.UNPAIRED.modifier_code is None


# --- search ------------------------------------------------------------------------------------


def _top(query: str) -> SiteMatch:
    matches = search(query)
    assert matches, query
    return matches[0]


def test_search_left_forearm() -> None:
    top = _top("left forearm")
    assert "forearm" in top.site.meaning.lower()
    assert top.laterality is Laterality.LEFT
    assert all(m.laterality is Laterality.LEFT for m in search("left forearm"))


def test_search_sacrum_and_sacral() -> None:
    assert "sacr" in _top("sacrum").site.meaning.lower()
    assert _top("sacral").site.code_value == codes.CID4031.Sacrum.value
    assert _top("Sacral area").site.code_value == codes.CID4031.Sacrum.value


def test_search_r_knee() -> None:
    top = _top("R knee")
    assert top.site.code_value == codes.CID4031.Knee.value
    assert top.laterality is Laterality.RIGHT


def test_search_nonsense_and_blank() -> None:
    assert search("xyzzy") == []
    assert search("") == []
    assert search("   ") == []
    assert search("left") == []


def test_search_is_ranked_and_limited() -> None:
    matches = search("forearm", limit=2)
    assert len(matches) == 2
    assert matches[0].score >= matches[1].score
    assert search("forearm", limit=0) == []


@pytest.mark.parametrize(
    ("query", "keyword"),
    [
        ("hands", "Hand"),
        ("HAND", "Hand"),
        ("skin of hand", "SkinOfHand"),
        ("surface forearm anterior", "SkinOfAnteriorSurfaceOfForearm"),
        ("heel", "SkinOfHeel"),
        ("shin", "LowerLeg"),
        ("bum", "SkinOfButtock"),
        ("buttocks", "SkinOfButtock"),
        ("upper arm", "UpperArm"),
        ("thigh", "Thigh"),
        ("back", "SkinOfBack"),
        ("scalp", "SkinOfScalp"),
        ("face", "SkinOfFace"),
        ("elbow", "ElbowJoint"),
        ("feet", "Foot"),
        ("forarm", "Forearm"),
        ("skin", "Skin"),
    ],
)
def test_search_finds(query: str, keyword: str) -> None:
    expected = getattr(codes.CID4029, keyword, None) or getattr(codes.CID4031, keyword)
    assert _top(query).site.code_value == expected.value


def test_search_both_sides() -> None:
    assert _top("both hands").laterality is Laterality.BILATERAL
    assert _top("left and right breast").laterality is Laterality.BILATERAL
    assert _top("bilateral feet").laterality is Laterality.BILATERAL


# --- resolve -----------------------------------------------------------------------------------


def test_resolve_code_value() -> None:
    site, laterality = resolve(" 14975008 ")
    assert site.code_value == "14975008"
    assert site.code == codes.CID4031.Forearm
    assert laterality is None


def test_resolve_unknown_code_value() -> None:
    with pytest.raises(InvalidMetadata, match="CID 4029/4031"):
        resolve("999999999")


def test_resolve_text() -> None:
    site, laterality = resolve("left forearm")
    assert site.code == codes.CID4031.Forearm
    assert laterality is Laterality.LEFT
    site, laterality = resolve("sacrum")
    assert site.code == codes.CID4031.Sacrum
    assert laterality is None


def test_resolve_nonsense() -> None:
    with pytest.raises(InvalidMetadata) as info:
        resolve("xyzzy")
    message = str(info.value)
    assert "xyzzy" in message
    assert "SNOMED CT" in message


def test_resolve_blank() -> None:
    with pytest.raises(InvalidMetadata):
        resolve("  ")


def test_resolve_ambiguous_names_candidates() -> None:
    # "surface" alone fits many "skin of ... surface of ..." sites equally well
    with pytest.raises(InvalidMetadata) as info:
        resolve("surface")
    message = str(info.value)
    assert "did you mean" in message
    assert 2 <= message.count("(") <= 5


def test_body_site_is_frozen_and_hashable() -> None:
    site = get_site("76752008")
    assert isinstance(site, BodySite)
    assert hash(site) == hash(get_site("76752008"))
    with pytest.raises(AttributeError):
        site.paired = False  # type: ignore[misc]


# --- agreement with dciodvfy (dicom3tools) -------------------------------------------------------

_DCIODVFY = shutil.which("dciodvfy")


def _dciodvfy_wants_laterality(site: BodySite, path: Path) -> bool:
    """Write a bare VL Photographic object with this site and no laterality; ask dciodvfy."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = VLPhotographicImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "XC"
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    item = Dataset()
    item.CodeValue = site.code_value
    item.CodingSchemeDesignator = "SCT"
    item.CodeMeaning = site.meaning
    ds.AnatomicRegionSequence = [item]
    ds.save_as(path, enforce_file_format=True)
    result = subprocess.run([_DCIODVFY or "dciodvfy", str(path)], capture_output=True, text=True)
    return "Element=<Laterality>" in result.stdout + result.stderr


def test_dciodvfy_agrees_on_its_unpaired_list_and_on_limbs(tmp_path: Path) -> None:
    unpaired = [get_site(codes.CID4031.concepts[k].value) for k in anatomy._DCIODVFY_UNPAIRED]
    paired = [s for s in all_sites() if s.paired]
    for site in [*unpaired, *paired]:
        assert _dciodvfy_wants_laterality(site, tmp_path / "probe.dcm") == site.paired, site


# --- one name per site, and what a picker offers ----------------------------------------------


def test_display_name_is_the_meaning_then_the_side() -> None:
    site = get_site("70559009")
    assert site.display_name() == "Skin of anterior surface of forearm"
    assert site.display_name(Laterality.LEFT) == "Skin of anterior surface of forearm, left"
    assert site.display_name("R") == "Skin of anterior surface of forearm, right"
    assert site.display_name(Laterality.BILATERAL).endswith(", both sides")
    assert site.display_name(Laterality.UNPAIRED) == site.meaning


def test_display_names_tell_every_site_and_side_apart() -> None:
    names = [
        site.display_name(side)
        for site in all_sites()
        for side in (
            [None, Laterality.LEFT, Laterality.RIGHT, Laterality.BILATERAL]
            if site.paired
            else [None]
        )
    ]
    assert len(names) == len({name.casefold() for name in names})


def test_site_name_of_an_archived_code() -> None:
    assert site_name("25763004", "R") == "Skin of anterior surface of lower leg, right"
    assert site_name("54735007", None) == "Sacrum"
    assert site_name("123", "L") is None and site_name(None, None) is None


def test_offer_leaves_a_region_out_when_its_skin_site_matches_too() -> None:
    lower_leg, shin_skin = codes.CID4031.LowerLeg.value, "25763004"
    assert {m.site.code_value for m in search("R shin")} >= {lower_leg, shin_skin}
    assert [(m.site.code_value, m.laterality) for m in offer("R shin")] == [
        (shin_skin, Laterality.RIGHT)
    ]
    hand = [m.site.meaning for m in offer("hand")]
    assert "Hand" not in hand and hand[0] == "Skin of hand"
    assert [m.site.meaning for m in offer("sacrum")] == ["Sacrum"]  # no skin site of it
    elbow = {m.site.meaning for m in offer("elbow")}  # a joint is not a skin region
    assert elbow >= {"Elbow joint", "Skin of posterior surface of elbow"}


def test_offer_limits_after_leaving_out() -> None:
    everything = offer("lower leg", limit=50)
    assert offer("lower leg", limit=3) == everything[:3]
    assert offer("lower leg", limit=0) == []
