"""Coded anatomy for a clinical photo: body site, laterality, and the search that finds them.

The encoder writes the site as Anatomic Region Sequence (0008,2218) and the side as Image
Laterality (0020,0062). STANDARDS.md 1.5 recommends exactly that split: a laterality-free
region code in (0008,2218) and the side in (0020,0062). It may also be mirrored as a SNOMED
qualifier in Anatomic Region Modifier Sequence (0008,2220), using CID 244 codes.

Sites come only from the context groups pydicom ships (STANDARDS.md 1.6): CID 4029 Dermatology
Anatomic Site, then CID 4031 Common Anatomic Region. They are reduced to their SNOMED CT (SCT)
codes. Nothing here is a hand-copied code table; every code value is looked up in pydicom.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

from capture_api.exceptions import InvalidMetadata

__all__ = [
    "BodySite",
    "Laterality",
    "SiteMatch",
    "all_sites",
    "get_site",
    "offer",
    "resolve",
    "search",
    "site_name",
]

_SCT = "SCT"

# Searched in this order. When a code is in both groups, the first group keeps it (4029 first).
_GROUPS: tuple[str, ...] = ("4029", "4031")

# Context Group UIDs, written as Context UID (0008,0117) beside the code (STANDARDS.md 1.6).
# CID 4029: also the value-set OID of "Dermatology Anatomic Site" in bvdh/dicom-terminology-in-fhir.
_CONTEXT_UIDS: dict[str, str] = {
    "4029": "1.2.840.10008.6.1.1268",
    "4031": "1.2.840.10008.6.1.308",
}


# ---------------------------------------------------------------------------------------------
# Laterality
# ---------------------------------------------------------------------------------------------

_LATERALITY_WORDS: dict[str, str] = {
    "l": "L",
    "left": "L",
    "r": "R",
    "right": "R",
    "b": "B",
    "both": "B",
    "bilateral": "B",
    "u": "U",
    "unpaired": "U",
    "none": "U",
}

# CID 244 keyword for each side. U has none, because an unpaired site has no side to qualify.
_MODIFIER_KEYWORDS: dict[str, str] = {"L": "Left", "R": "Right", "B": "Bilateral"}

# The side as it ends a site's name ("Skin of heel, left"). U has none, as above.
_SIDE_WORDS: dict[str, str] = {"L": "left", "R": "right", "B": "both sides"}


class Laterality(StrEnum):
    """The enumerated values of Image Laterality (0020,0062) (PS3.3 C.7.6.1.1.2)."""

    LEFT = "L"
    RIGHT = "R"
    BILATERAL = "B"
    UNPAIRED = "U"

    @property
    def modifier_code(self) -> Code | None:
        """The SNOMED laterality qualifier from CID 244, for Anatomic Region Modifier Sequence.

        PS3.3 §10.5 (STANDARDS.md 1.5) requires the modifier and (0020,0062) to agree. That is
        why the modifier is derived from the enumerated value and never entered on its own.
        """
        keyword = _MODIFIER_KEYWORDS.get(self.value)
        return None if keyword is None else codes.CID244.concepts[keyword]

    @classmethod
    def parse(cls, text: str) -> Laterality:
        """Read a side as a clinician or a CLI user types it: ``L``, ``left``, ``Both``, ...

        The allowed values are listed in the error. The person holding the phone needs to
        know what to type instead.
        """
        value = _LATERALITY_WORDS.get(text.strip().casefold())
        if value is None:
            raise InvalidMetadata(
                f"laterality {text!r} is not understood: use L (left), R (right), "
                "B (both/bilateral) or U (unpaired/none)"
            )
        return cls(value)


# ---------------------------------------------------------------------------------------------
# Paired-ness
# ---------------------------------------------------------------------------------------------

# Sites dciodvfy (dicom3tools, /usr/bin/dciodvfy) treats as UNPAIRED. dciodvfy reports
# "Missing attribute Type 2C Conditional Element=<Laterality>" for every Anatomic Region code
# not on its internal unpaired list. It has no list of paired codes: it treats every code it
# does not know as paired. The list is compiled into the binary, next to the BodyPartExamined
# terms ABDOMENPELVIS ... VULVA. Its source condition lives in dicom3tools' libsrc/standard
# templates. The keywords below are the CID 4031 concepts that dciodvfy accepts without a
# laterality. They were found by validating one VL Photographic object per SCT code, with no
# laterality, against dciodvfy. tests/encode/test_anatomy.py keeps them in step with pydicom.
_DCIODVFY_UNPAIRED: frozenset[str] = frozenset(
    {
        "Abdomen", "AbdomenAndPelvis", "BileDuct", "Bladder", "CervicalSpine",
        "ChestAbdomenAndPelvis", "ChestAndAbdomen", "Coccyx", "Colon", "Duodenum", "EntireBody",
        "Esophagus", "EsophagusStomachAndDuodenum", "Gallbladder", "Head", "HeadAndNeck", "Heart",
        "Ileum", "Jejunum", "LargeIntestine", "Larynx", "LumbarSpine", "Mediastinum", "Neck",
        "NeckAndChest", "NeckChestAbdomenAndPelvis", "NeckChestAndAbdomen", "Pancreas",
        "PancreaticDuct", "PancreaticDuctAndBileDuctSystems", "Pelvis", "Prostate", "Rectum",
        "Sacrum", "SellaTurcica", "Skull", "SmallIntestine", "Spine", "Sternum", "Stomach",
        "ThoracicSpine", "Trachea", "Urethra", "UterusAndFallopianTubes",
    }
)  # fmt: skip

# dciodvfy does not list the other codes, so the anatomy decides for them. A site is paired when
# a word in its pydicom keyword names something that exists on the left and on the right (limbs
# and their parts, breast, eye, ear, axilla, groin, buttock, lateral face and neck regions, paired
# bones, joints and glands). Every other site is midline or whole (trunk, back, face, scalp,
# perineum, genitalia, umbilicus, spine segments ...).
_PAIRED_WORDS: frozenset[str] = frozenset(
    {
        # upper limb
        "arm", "forearm", "elbow", "antecubital", "wrist", "hand", "palm", "palmar", "thenar",
        "hypothenar", "finger", "thumb", "digit", "humerus", "shoulder", "axilla", "scapula",
        "clavicle", "acromioclavicular", "sternoclavicular",
        # lower limb
        "leg", "thigh", "knee", "popliteal", "patella", "ankle", "foot", "sole", "heel", "toe",
        "calcaneus", "tarsal", "sesamoid", "femur", "fibula", "hip", "buttock", "gluteal",
        "groin", "inguinal", "sacroiliac", "ilium",
        # either limb
        "limb", "extremity",
        # breast
        "breast", "areola", "nipple",
        # eye and orbit
        "eye", "eyelid", "eyebrow", "eyelash", "cornea", "iris", "retina", "sclera", "canthus",
        "orbital", "optic",
        # ear
        "ear", "helix", "antihelix", "tragus", "antitragus", "concha", "lobule", "intertragal",
        "preauricular", "postauricular", "auditory", "mastoid",
        # lateral head and neck
        "cheek", "temporal", "parietal", "jawline", "zygoma", "ala", "side", "nasolabial",
        "temporomandibular", "parotid", "submandibular", "triangle", "supraclavicular",
        "infraclavicular", "paranasal",
        # paired viscera and thorax
        "lung", "bronchus", "rib", "ureter", "urinary",
        # external genitalia with a left and right side
        "labium",
    }
)  # fmt: skip

# Keyword exceptions to the word rule above, each decided by anatomy.
_PAIRED_OVERRIDES: dict[str, bool] = {
    "SkinOfLateralPortionOfNeck": True,  # left or right side of the neck
    "FrenulumOfLabiaMinora": False,  # a single midline fold
    "PosteriorCommissureOfLabiumMajorum": False,  # where the labia meet, in the midline
}

_CAMEL = re.compile(r"[A-Z][a-z]*|[a-z]+|\d+")


def _keyword_words(keyword: str) -> list[str]:
    """Split a pydicom keyword (``SkinOfUpperArm``) into lower-case words."""
    return [w.lower() for w in _CAMEL.findall(keyword)]


def _is_paired(keyword: str) -> bool:
    """Whether a laterality is needed for this site. The rules are in the tables above."""
    if keyword in _DCIODVFY_UNPAIRED:
        return False
    if keyword in _PAIRED_OVERRIDES:
        return _PAIRED_OVERRIDES[keyword]
    return any(word in _PAIRED_WORDS for word in _keyword_words(keyword))


# ---------------------------------------------------------------------------------------------
# Synonyms: common clinical words that the SNOMED meanings do not contain
# ---------------------------------------------------------------------------------------------

# Keyed by pydicom keyword. The tests check that every key still exists in CID 4029/4031.
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "Sacrum": ("sacral", "sacral region", "sacral area", "bedsore area", "pressure area"),
    "Coccyx": ("tailbone", "coccygeal"),
    "LowerLeg": ("shin", "calf", "leg"),
    "SkinOfAnteriorSurfaceOfLowerLeg": ("shin",),
    "SkinOfPosteriorSurfaceOfLowerLeg": ("calf",),
    "SkinOfButtock": ("bum", "bottom", "gluteal"),
    "SkinOfHeel": ("heel pressure area",),
    "ElbowJoint": ("elbow",),
    "SkinOfPosteriorSurfaceOfElbow": ("elbow",),
    "UpperArm": ("arm", "biceps"),
    "Forearm": ("lower arm",),
    "Thigh": ("upper leg",),
    "SkinOfBack": ("back",),
    "SkinOfLowerBack": ("lumbar region", "lower back"),
    "SkinOfScalp": ("scalp",),
    "SkinOfFace": ("face", "facial"),
    "SkinOfAbdomen": ("belly", "tummy"),
    "SkinOfUmbilicus": ("belly button", "navel"),
    "SkinOfAxilla": ("armpit",),
    "SkinOfInguinalRegion": ("groin",),
    "SkinOfPoplitealFossa": ("back of knee",),
    "Chest": ("thorax",),
    "AnkleJoint": ("ankle",),
    "WristJoint": ("wrist",),
    "Foot": ("sole", "plantar"),
    "SkinOfPerineum": ("perineal",),
}


# ---------------------------------------------------------------------------------------------
# Sites
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BodySite:
    """One selectable body site: a SNOMED CT code from CID 4029 or CID 4031.

    ``paired`` means the site exists on both sides of the body. A capture then needs a
    laterality, and dciodvfy flags a missing Laterality for it (STANDARDS.md 1.5).
    """

    code: Code
    context_group: str
    paired: bool
    synonyms: tuple[str, ...] = ()

    @property
    def meaning(self) -> str:
        """Code Meaning (0008,0104), as pydicom spells it."""
        return str(self.code.meaning)

    @property
    def code_value(self) -> str:
        """Code Value (0008,0100): the SNOMED CT concept id."""
        return str(self.code.value)

    @property
    def context_uid(self) -> str:
        """Context UID (0008,0117) of the group the code was taken from (STANDARDS.md 1.6)."""
        return _CONTEXT_UIDS[self.context_group]

    def display_name(self, laterality: Laterality | str | None = None) -> str:
        """The one name of this site and side, wherever a person reads it.

        The phone (map, search, review, sending), the API, the Series Description of the
        DICOM object and the text of the FHIR Media all show this, so a nurse sees the same
        words on the phone, in the PACS and in the chart: the Code Meaning (unique per code),
        then ", left", ", right" or ", both sides". An unpaired site (U) has no side.
        """
        side = _SIDE_WORDS.get(laterality or "")  # Laterality is a StrEnum: "L" is Laterality.LEFT
        return f"{self.meaning}, {side}" if side else self.meaning


@dataclass(frozen=True)
class SiteMatch:
    """One search hit. ``laterality`` is the side named in the query, if any."""

    site: BodySite
    laterality: Laterality | None
    score: float


def _group_concepts() -> Iterator[tuple[str, str, Code]]:
    """Yield (group, keyword, code) for the SCT concepts of CID 4029, then CID 4031."""
    for group in _GROUPS:
        for keyword, code in getattr(codes, f"CID{group}").concepts.items():
            if code.scheme_designator == _SCT:
                yield group, keyword, code


@cache
def _sites_by_keyword() -> dict[str, BodySite]:
    """Build the sites once; a code that is in both groups keeps the first group (4029)."""
    sites: dict[str, BodySite] = {}
    seen: set[str] = set()
    for group, keyword, code in _group_concepts():
        if code.value in seen:
            continue
        seen.add(code.value)
        site = BodySite(code, group, _is_paired(keyword), _SYNONYMS.get(keyword, ()))
        sites[keyword] = site
    return sites


@cache
def _sites_by_code() -> dict[str, BodySite]:
    return {site.code_value: site for site in _sites_by_keyword().values()}


@cache
def all_sites() -> tuple[BodySite, ...]:
    """Every selectable site, sorted by meaning so a picker list is stable and readable."""
    return tuple(
        sorted(_sites_by_keyword().values(), key=lambda s: (s.meaning.casefold(), s.code_value))
    )


def get_site(code_value: str) -> BodySite:
    """Look a site up by its SNOMED CT code value. Any other code is refused.

    The archive and every viewer read the code against the context group. A code from
    elsewhere would be an unknown region to them.
    """
    site = _sites_by_code().get(code_value.strip())
    if site is None:
        raise InvalidMetadata(f"{code_value!r} is not a body site code from DICOM CID 4029/4031")
    return site


# ---------------------------------------------------------------------------------------------
# Search
# ---------------------------------------------------------------------------------------------

# Words that carry no anatomy. The "skin of" prefix of the CID 4029 meanings is one case.
# "Left forearm" must find "Skin of anterior surface of forearm" as well as "Forearm".
_STOPWORDS: frozenset[str] = frozenset({"skin", "of", "the", "on", "and", "a", "an", "my", "part"})
_IRREGULAR_SINGULAR: dict[str, str] = {
    "feet": "foot",
    "teeth": "tooth",
    "calves": "calf",
    "axillae": "axilla",
    "ribs": "rib",
}
_WORD = re.compile(r"[a-z0-9]+")

_SYNONYM_WEIGHT = 0.95  # a hit on the SNOMED meaning beats the same hit on a synonym
_SKIN_MISMATCH_PENALTY = 0.02  # "hand" prefers Hand; "skin of hand" prefers Skin of hand
_MIN_COVERAGE = 0.5  # at least half the query words must match something
_FUZZY_CUTOFF = 0.85  # typo tolerance ("forarm")


def _singular(word: str) -> str:
    """Return a crude singular ("hands" gives "hand"). Words ending in -us/-is/-ss are kept.

    Those endings are singular Latin or English forms (pelvis, calcaneus).
    """
    if word in _IRREGULAR_SINGULAR:
        return _IRREGULAR_SINGULAR[word]
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and len(word) > 3 and not word.endswith(("us", "is", "ss")):
        return word[:-1]
    return word


def _words(text: str) -> list[str]:
    return [_singular(w) for w in _WORD.findall(text.casefold())]


def _content(words: Iterable[str]) -> frozenset[str]:
    """Drop filler words, unless that leaves nothing. The site "Skin" is only filler."""
    all_words = frozenset(words)
    return (all_words - _STOPWORDS) or all_words


def _split_laterality(words: list[str]) -> tuple[list[str], Laterality | None]:
    """Take out the side words ("left", "R", "both" ...) and return the rest and the side.

    "Left and right" gives BILATERAL. Words for "unpaired" are not sides in a search query.
    """
    sides = {_LATERALITY_WORDS[w] for w in words if _LATERALITY_WORDS.get(w, "U") != "U"}
    rest = [w for w in words if _LATERALITY_WORDS.get(w, "U") == "U"]
    if not sides:
        return rest, None
    if len(sides) > 1:
        return rest, Laterality.BILATERAL
    return rest, Laterality(sides.pop())


def _word_similarity(query_word: str, term_word: str) -> float:
    if query_word == term_word:
        return 1.0
    shorter, longer = sorted((query_word, term_word), key=len)
    if len(shorter) >= 3 and longer.startswith(shorter):
        return 0.8
    ratio = difflib.SequenceMatcher(None, query_word, term_word).ratio()
    return ratio * 0.8 if ratio >= _FUZZY_CUTOFF else 0.0


def _term_score(query: frozenset[str], term: frozenset[str]) -> float:
    """Score a term: the share of query words matched, scaled by how much of the term they cover.

    "Forearm" therefore beats "skin of anterior surface of forearm" for the query "forearm".
    Both still match.
    """
    if not term:
        return 0.0
    best = [max(_word_similarity(q, t) for t in term) for q in query]
    coverage = sum(best) / len(query)
    if sum(1 for b in best if b > 0) / len(query) < _MIN_COVERAGE:
        return 0.0
    precision = min(
        1.0, sum(1 for t in term if any(_word_similarity(q, t) for q in query)) / len(term)
    )
    return coverage * (0.6 + 0.4 * precision)


@cache
def _site_terms(site: BodySite) -> tuple[tuple[frozenset[str], float], ...]:
    """(content words, weight) for the meaning and each synonym of a site."""
    terms = [(site.meaning, 1.0)] + [(s, _SYNONYM_WEIGHT) for s in site.synonyms]
    return tuple((_content(_words(t)), w) for t, w in terms)


def _site_score(site: BodySite, query: frozenset[str], wants_skin: bool) -> float:
    best = max(_term_score(query, words) * weight for words, weight in _site_terms(site))
    is_skin_site = "skin" in _words(site.meaning)
    if best and is_skin_site != wants_skin:
        best -= _SKIN_MISMATCH_PENALTY
    return round(best, 4)


def search(query: str, limit: int = 10) -> list[SiteMatch]:
    """Rank body sites for free text such as "left forearm", "R knee", "sacral", "hands".

    Matching ignores case, word order, plurals, the "skin of" prefix and small typos. Side
    words are taken out of the query and returned as ``laterality`` on every match.
    """
    words = _words(query)
    rest, laterality = _split_laterality(words)
    content = _content(rest)
    if not rest or limit <= 0:
        return []
    wants_skin = "skin" in rest
    scored = [(site, _site_score(site, content, wants_skin)) for site in all_sites()]
    hits = [(site, score) for site, score in scored if score > 0]
    hits.sort(key=lambda hit: (-hit[1], hit[0].meaning.casefold()))
    return [SiteMatch(site, laterality, score) for site, score in hits[:limit]]


# ---------------------------------------------------------------------------------------------
# Offer: the search as a site picker shows it, without near-duplicates
# ---------------------------------------------------------------------------------------------

_SKIN_OF = "skin of "


@cache
def _skin_sites() -> dict[str, frozenset[str]]:
    """Code of a CID 4031 region -> codes of the CID 4029 skin sites of it.

    A skin site of a region is one whose meaning is "Skin of ... <region>": "Skin of hand" and
    "Skin of palm of hand" for "Hand", "Skin of anterior surface of lower leg" for "Lower leg".
    """
    skins = [s for s in all_sites() if s.meaning.casefold().startswith(_SKIN_OF)]
    table: dict[str, frozenset[str]] = {}
    for region in all_sites():
        if region.context_group != "4031":
            continue
        tail = f" of {region.meaning.casefold()}"
        found = frozenset(s.code_value for s in skins if s.meaning.casefold().endswith(tail))
        if found:
            table[region.code_value] = found
    return table


def offer(query: str, limit: int = 10) -> list[SiteMatch]:
    """The sites a picker offers for ``query``: ``search`` without near-duplicates.

    The rule (web_client/README.md): a CID 4031 region is left out when a skin site of it
    (CID 4029, see ``_skin_sites``) is offered too. "R shin" matches "Lower leg" and "Skin of
    anterior surface of lower leg" through the same word, and "hand" gives "Hand" beside
    "Skin of hand": a nurse cannot tell which to pick, and a photo shows skin, so the skin
    site (the one the body map sends) stays. The CLI's ``resolve`` keeps the plain ranking.
    """
    matches = search(query, limit=len(all_sites()))
    offered = {m.site.code_value for m in matches}
    skins = _skin_sites()
    kept = [m for m in matches if not skins.get(m.site.code_value, frozenset()) & offered]
    return kept[: max(limit, 0)]


def site_name(code_value: str | None, laterality: str | None) -> str | None:
    """``BodySite.display_name`` for a code as an archived photo carries it; None if unknown."""
    site = _sites_by_code().get((code_value or "").strip())
    return None if site is None else site.display_name(laterality)


# ---------------------------------------------------------------------------------------------
# Resolve (CLI --body-site)
# ---------------------------------------------------------------------------------------------

_EXACT = 0.95  # a query that matches a whole meaning or synonym
_MIN_ACCEPT = 0.6
_MIN_MARGIN = 0.1  # a partial match must lead the next one by this much
_CANDIDATES_SHOWN = 5


def _is_clear_winner(matches: list[SiteMatch]) -> bool:
    top = matches[0]
    runner_up = matches[1].score if len(matches) > 1 else 0.0
    if top.score >= _EXACT:
        return top.score > runner_up
    return top.score >= _MIN_ACCEPT and top.score - runner_up >= _MIN_MARGIN


def _describe(match: SiteMatch) -> str:
    return f"{match.site.meaning} ({match.site.code_value})"


def resolve(term: str) -> tuple[BodySite, Laterality | None]:
    """Turn the CLI's ``--body-site SCTID-or-text`` into a site and an optional side.

    A code value is taken as given. Text is accepted only when one site clearly wins. A wrong
    site in an archived image is worse than a question back to the user, so ambiguous text
    raises an error that names up to five candidates.
    """
    text = term.strip()
    if text.isdigit():
        return get_site(text), None
    matches = search(text, limit=_CANDIDATES_SHOWN)
    if not matches:
        raise InvalidMetadata(
            f"no body site matches {term!r}: type a body part such as 'left forearm' or "
            "'sacrum', or a SNOMED CT code from DICOM CID 4029/4031"
        )
    if not _is_clear_winner(matches):
        candidates = "; ".join(_describe(m) for m in matches)
        raise InvalidMetadata(
            f"body site {term!r} is ambiguous; did you mean: {candidates}? "
            "Give the SNOMED CT code or a more specific name"
        )
    return matches[0].site, matches[0].laterality
