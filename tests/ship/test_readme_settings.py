"""The README's configuration table and ``Settings`` agree, name for name and default for default.

Issue 12: the README promised ``online_access`` in the default SMART scopes while the code left
it out (no refresh token: the session ended with the first access token). Nothing compared the
two. This test reads the "Configuration" table and the SMART registration table of README.md
and holds them against the ``Settings`` and ``EhrRegistration`` models.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic.fields import FieldInfo

from capture_api.config import EhrRegistration, Settings
from tests.conftest import REPO

README = (REPO / "README.md").read_text()
#: Rows of the table that are not ``Settings`` fields (documented on purpose).
NOT_SETTINGS = {"PROMETHEUS_MULTIPROC_DIR", "CAPTURE_SAMPLES_DIR", "CAPTURE_EHRS[].role_claim"}


def _section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : end if end != -1 else len(README)]


def _rows() -> dict[str, str]:
    """``{variable: default cell}`` of the Configuration table; "a / b" cells are split, and one
    default for a row of several variables is every variable's."""
    rows: dict[str, str] = {}
    for line in _section("Configuration").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        names = re.findall(r"`([^`]+)`", cells[0])
        defaults = cells[1].split(" / ") if len(names) > 1 else [cells[1]]
        if len(defaults) == 1:  # one default written for every variable of the row
            defaults *= len(names)
        assert len(defaults) == len(names), f"{line}: one default per variable, ' / ' apart"
        rows.update(zip(names, defaults, strict=True))
    return rows


def _variable(name: str, field: FieldInfo) -> str:
    alias = field.validation_alias
    choices = getattr(alias, "choices", None)
    return str(choices[0]) if choices else f"CAPTURE_{name.upper()}"


FIELDS = {_variable(name, field): (name, field) for name, field in Settings.model_fields.items()}
ROWS = _rows()


def test_every_setting_is_in_the_readme_table_and_nothing_else() -> None:
    assert set(FIELDS) - set(ROWS) == set(), "settings the README does not document"
    assert set(ROWS) - set(FIELDS) - NOT_SETTINGS == set(), "README rows that are no setting"


def _literal(cell: str) -> str | None:
    """The cell's value when it starts with one backticked literal, else None (unset...)."""
    found = re.match(r"`([^`]*)`", cell)
    return found.group(1) if found else None


def _same(default: Any, written: str) -> bool:
    if isinstance(default, bool):
        return written == str(default).lower()
    if isinstance(default, Path):
        return Path(written) == default
    if isinstance(default, int | float):
        return float(written) == float(default)
    if isinstance(default, dict | list):
        return written == ("{}" if isinstance(default, dict) else "[]") and not default
    return bool(written == str(getattr(default, "value", default)))


@pytest.mark.parametrize("variable", sorted(FIELDS))
def test_the_readme_default_is_the_code_default(variable: str) -> None:
    _, field = FIELDS[variable]
    cell = ROWS[variable]
    default = field.get_default(call_default_factory=True)
    written = _literal(cell)
    if written is None:  # "unset: ..." -- the code must have no value either
        assert cell.startswith("unset"), f"{variable}: write the default as `value` or unset"
        assert default in (None, [], {}), f"{variable}: README says unset, code has {default!r}"
    else:
        assert _same(default, written), f"{variable}: README `{written}`, code {default!r}"


def _registration_scopes(row: str) -> str:
    for line in _section("Connecting an EHR (SMART App Launch 2)").splitlines():
        if line.startswith(f"| {row} |"):
            found = _literal(line.split("|")[2].strip())
            assert found, line
            return found
    raise AssertionError(f"no '{row}' row in the SMART registration table")


def test_the_default_smart_scopes_are_the_ones_the_readme_registers() -> None:
    registration = EhrRegistration(iss="https://ehr.example/fhir", client_id="capture")
    assert registration.scopes == _registration_scopes("scopes (EHR launch)")
    assert registration.standalone_scopes == _registration_scopes("scopes (standalone)")
    for scopes in (registration.scopes, registration.standalone_scopes):
        assert "online_access" in scopes.split()  # a refresh token for the nurse's whole round
