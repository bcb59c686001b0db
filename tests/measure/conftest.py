"""Phantoms are rendered once per session and shared (each costs about a second)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.measure.phantom import Phantom, render_phantom


@pytest.fixture(scope="session")
def phantom() -> Callable[..., Phantom]:
    """``phantom(seed, tilt_deg=..., area_cm2=..., ...)``, memoised for the session."""
    cache: dict[tuple[object, ...], Phantom] = {}

    def get(seed: int, **kwargs: object) -> Phantom:
        key = (seed, *sorted(kwargs.items()))
        if key not in cache:
            cache[key] = render_phantom(seed, **kwargs)  # type: ignore[arg-type]
        return cache[key]

    return get


@pytest.fixture(scope="session")
def square_on(phantom: Callable[..., Phantom]) -> Phantom:
    """A 6 cm2 irregular wound photographed almost square-on."""
    return phantom(7, tilt_deg=8.0, area_cm2=6.0, kind="irregular")
