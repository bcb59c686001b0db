"""Every package says what it is for and what other packages may use (its public face).

``capture_api`` and each package below it have a docstring (the package's role) and an
``__all__`` whose names all exist: attributes of the package, or (for a package that must
import nothing, ``api.security``) its modules.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil

import capture_api

MIN_DOC_CHARS = 60  # a sentence about the package's role, not a placeholder


def _packages() -> list[str]:
    names = ["capture_api"] + [
        m.name for m in pkgutil.walk_packages(capture_api.__path__, "capture_api.") if m.ispkg
    ]
    assert len(names) > 20, names
    return names


def test_every_package_has_a_docstring_and_an_all_whose_names_exist() -> None:
    problems: list[str] = []
    for name in _packages():
        package = importlib.import_module(name)
        if len((package.__doc__ or "").strip()) < MIN_DOC_CHARS:
            problems.append(f"{name}: no docstring saying what the package is for")
        exported = getattr(package, "__all__", None)
        if not isinstance(exported, list | tuple):
            problems.append(f"{name}: no __all__")
            continue
        if len(set(exported)) != len(exported):
            problems.append(f"{name}: __all__ names something twice")
        for public in exported:
            if hasattr(package, public):
                continue
            if importlib.util.find_spec(f"{name}.{public}") is None:
                problems.append(f"{name}: __all__ names {public!r}, which does not exist")
    assert problems == []


def test_the_faces_are_what_the_code_base_uses() -> None:
    """A few names other packages use come from the faces as the same objects."""
    from capture_api import capture, deliver, review
    from capture_api.capture.anatomy import get_site
    from capture_api.deliver.archive import Archive
    from capture_api.review.timeline import Timeline

    assert capture.get_site is get_site
    assert deliver.Archive is Archive
    assert review.Timeline is Timeline
