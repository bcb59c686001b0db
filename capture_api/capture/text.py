"""The one rule for free text that people and clients send: no invisible control characters.

A typed note, a reason, a name or an identifier is printed later in places that give control
characters a meaning: a terminal (an ESC sequence recolours or rewrites the screen), the
DICOM audit message in XML (where most C0 characters make the document not well-formed, so a
collector drops the event), a CSV export opened in a spreadsheet, a DICOM text element, a log
line. The black-box test of issue 14 (finding 5) sent ESC and NUL in the unblur reason and a
consent's name; both were stored and passed on. Every input model of the API uses this one
validator (``FreeText`` / ``MultilineText`` or ``check_free_text``), so no field is left out
by a second, looser copy of the rule.

Refused, wherever they are (the message names the field and the character):

* C0 controls (U+0000-U+001F) and DEL, except line feed, carriage return and tab in multi-line
  text (a note, a reason); C1 controls (U+0080-U+009F), which some terminals also obey;
* lone surrogates (not Unicode scalar values: no UTF-8 encoder takes them) and the
  non-characters U+FFFE, U+FFFF, U+FDD0-U+FDEF;
* bidirectional overrides, embeddings and isolates (U+202A-U+202E, U+2066-U+2069), which
  display text in another order than it is stored ("Trojan Source", CVE-2021-42574), and the
  line and paragraph separators U+2028/U+2029.

Everything else a phone keyboard produces passes: accents, scripts of every language, emoji
(with their zero-width joiners and variation selectors).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, ValidationInfo

_LINE_BREAKS = frozenset("\n\r\t")
_BIDI_AND_SEPARATORS = frozenset(
    [*map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A)), "\u2028", "\u2029"]
)


def refused_character(value: str, *, multiline: bool = False) -> str | None:
    """The first character of ``value`` this rule refuses, or None."""
    for char in value:
        code = ord(char)
        if code < 0x20 or code == 0x7F:
            if multiline and char in _LINE_BREAKS:
                continue
            return char
        if (
            0x80 <= code <= 0x9F
            or 0xD800 <= code <= 0xDFFF
            or code in (0xFFFE, 0xFFFF)
            or 0xFDD0 <= code <= 0xFDEF
            or char in _BIDI_AND_SEPARATORS
        ):
            return char
    return None


def check_free_text(value: str, field: str = "the text", *, multiline: bool = False) -> str:
    """``value`` unchanged if it passes the rule, else ``ValueError`` naming the character."""
    bad = refused_character(value, multiline=multiline)
    if bad is not None:
        raise ValueError(
            f"{field} contains an invisible control character (U+{ord(bad):04X}) that capture "
            "does not accept: remove it (retype the text) and send again"
        )
    return value


def _field(info: ValidationInfo) -> str:
    return info.field_name or "the text"


def _single_line(value: str, info: ValidationInfo) -> str:
    return check_free_text(value, _field(info))


def _multiline(value: str, info: ValidationInfo) -> str:
    return check_free_text(value, _field(info), multiline=True)


#: A one-line free-text field (a name, an identifier, a label): ``name: FreeText``.
FreeText = Annotated[str, AfterValidator(_single_line)]
#: A free-text field that may hold line breaks and tabs (a note, a reason).
MultilineText = Annotated[str, AfterValidator(_multiline)]


def storable(value: str) -> str:
    """``value`` with every refused character replaced by U+FFFD (for text that did not come
    through an input model, e.g. a reason an EHR sent, kept in the audit trail)."""
    if refused_character(value, multiline=True) is None:
        return value
    return "".join("\ufffd" if refused_character(char, multiline=True) else char for char in value)
