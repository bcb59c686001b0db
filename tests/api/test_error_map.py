"""One error tree, mapped to HTTP in one place, and what every route documents agrees with it.

* every exception class of capture is a ``CaptureError`` (but two private signals) and is
  named in the tree drawn in ``capture_api.exceptions``' docstring;
* ``api.errors.STATUS_OF`` gives every class one status, no row hidden by an earlier one;
* walking every route of the app: (a) every error the route visibly raises (its source and
  the helpers it calls, read by ``tests.api.raised``; its dependencies too) is declared in
  its OpenAPI ``responses`` under the status the map gives it (but the 500 of our own
  faults, never a documented answer), and (b) every 4xx/5xx it
  declares names error classes that map to exactly that status, or is the framework's own
  (422 for fields) or an answer with its own documented body (``/readyz``'s 503);
* no router builds an ``HTTPException``.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

import capture_api
from capture_api import exceptions
from capture_api.api import errors
from capture_api.api.access import CONTEXT_ERRORS, AccessDep
from capture_api.api.app import create_app
from capture_api.context.smart import LaunchError, SessionExpired
from capture_api.exceptions import CaptureError, Conflict, NotFound, UnknownContext
from tests.api.raised import Raised

REPO = Path(__file__).resolve().parents[2]
#: Exceptions deliberately outside the tree (the tree's docstring says why).
PRIVATE_SIGNALS = {
    "capture_api.api.limits._TooLarge",
    "capture_api.api.readiness.NotReady",
    # libjpeg-turbo's refusal inside capture_api.encode, always turned into CorruptImage there
    "capture_api.encode.jpeg.turbo.TransformFailed",
}


def _import_everything() -> None:
    for module in pkgutil.walk_packages(capture_api.__path__, "capture_api."):
        name = module.name
        if name.endswith("__main__") or name.startswith("capture_api.store.migrations."):
            continue  # runs the CLI / Alembic scripts that need Alembic's context
        importlib.import_module(name)


def _subclasses(cls: type[BaseException]) -> Iterator[type[BaseException]]:
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def _our_errors() -> dict[str, type[BaseException]]:
    _import_everything()
    ours = {
        f"{cls.__module__}.{cls.__qualname__}": cls
        for cls in _subclasses(BaseException)
        if cls.__module__.split(".")[0] == "capture_api"
    }
    assert len(ours) > 30, "the walk found too few exception classes to be a real check"
    return ours


def _tree() -> dict[str, type[CaptureError]]:
    """Every CaptureError subclass by its name (the name ``x-errors`` uses)."""
    found: dict[str, type[CaptureError]] = {"CaptureError": CaptureError}
    for cls in _subclasses(CaptureError):
        assert issubclass(cls, CaptureError)
        assert found.setdefault(cls.__name__, cls) is cls, f"two errors named {cls.__name__}"
    return found


# --- the tree ---------------------------------------------------------------------------------


def test_every_exception_of_capture_is_in_the_one_tree() -> None:
    ours = _our_errors()
    outside = {
        name for name, cls in ours.items() if not issubclass(cls, CaptureError)
    } - PRIVATE_SIGNALS
    assert outside == set(), f"exceptions outside the CaptureError tree: {sorted(outside)}"
    assert set(ours) >= PRIVATE_SIGNALS, "a private signal moved: update PRIVATE_SIGNALS"
    drawn = exceptions.__doc__ or ""
    missing = sorted(name for name in _tree() if name not in drawn)
    assert missing == [], f"not drawn in capture_api.exceptions' tree: {missing}"


def test_the_map_gives_every_error_one_status_and_hides_no_row() -> None:
    rows = errors.STATUS_OF
    for i, (earlier, _) in enumerate(rows):
        for later, _ in rows[i + 1 :]:
            assert not issubclass(later, earlier), f"{later.__name__} is hidden by {earlier}"
    assert rows[-1] == (CaptureError, 500), "anything not named is our fault: the last row"
    for name, cls in _tree().items():
        if issubclass(cls, LaunchError) and not issubclass(cls, SessionExpired):
            with pytest.raises(TypeError):
                errors.status_of(cls)  # each launch error carries its own status
            continue
        assert 400 <= errors.status_of(cls) <= 599, name
    assert errors.status_for(LaunchError("refused", 403)) == 403
    assert errors.status_for(SessionExpired()) == 401
    assert errors.status_of(UnknownContext) == 404  # more specific than InputRejected's 422


def test_responses_are_written_from_the_map() -> None:
    declared = errors.responses(NotFound, (UnknownContext, "Unknown context"), Conflict)
    assert list(declared) == [404, 409]
    assert declared[404]["x-errors"] == ["NotFound", "UnknownContext"]
    assert declared[404]["description"].endswith("; Unknown context")
    assert declared[409]["x-errors"] == ["Conflict"]
    with pytest.raises(TypeError):
        errors.responses(LaunchError)


# --- every route --------------------------------------------------------------------------------


def _routes(app: FastAPI) -> list[RouteContext]:
    """Every API route of ``app.routes`` as mounted (prefix and router dependencies included:
    FastAPI keeps included routers as such, ``iter_route_contexts`` walks into them)."""
    routes = [
        r
        for r in iter_route_contexts(app.routes)
        if isinstance(r.original_route, APIRoute) and r.include_in_schema
    ]
    assert len(routes) > 25, "the app has fewer routes than expected: is every router mounted?"
    return routes


def _operation(document: dict[str, Any], route: RouteContext) -> dict[str, Any]:
    methods = route.methods or set()
    (method,) = methods - {"HEAD"} if len(methods) > 1 else methods
    operation: dict[str, Any] = document["paths"][route.path_format][method.lower()]
    return operation


def _dependency_calls(route: RouteContext) -> list[Any]:
    calls: list[Any] = []
    pending = list(route.dependant.dependencies)
    while pending:
        dependant = pending.pop()
        if dependant.call is not None:
            calls.append(dependant.call)
        pending.extend(dependant.dependencies)
    return calls


def undeclared(app: FastAPI, raised: Raised) -> list[str]:
    """(a): per route, each visibly raised error without a declared class covering it."""
    document = app.openapi()
    problems = []
    for route in _routes(app):
        responses = _operation(document, route)["responses"]
        tree = _tree()
        declared = {
            int(status): [tree[name] for name in entry.get("x-errors", [])]
            for status, entry in responses.items()
        }
        assert route.endpoint is not None
        found = raised(route.endpoint).union(*(raised(c) for c in _dependency_calls(route)))
        for error in sorted(found, key=lambda e: e.__name__):
            status = errors.status_of(error)
            if status == 500:  # our own fault (a bug, an invalid resource we built): never a
                continue  # documented answer, like any other unexpected exception
            if not any(issubclass(error, cls) for cls in declared.get(status, [])):
                problems.append(f"{route.name} raises {error.__name__} ({status}) undeclared")
    return problems


def test_every_error_a_route_raises_is_declared_with_its_status() -> None:
    raised = Raised()
    assert undeclared(create_app(), raised) == []
    # The oracle sees through the helpers (not vacuous): what it found for two routes.
    from capture_api.api.routes import timeline, worklist

    found = raised(timeline.timeline_image)
    assert {*CONTEXT_ERRORS, NotFound} <= found
    assert Conflict in raised(worklist.cancel_context)


def test_a_route_raising_an_undeclared_error_is_caught() -> None:
    router = APIRouter()

    @router.get("/things/{thing}")
    def get_thing(thing: str, access: AccessDep) -> None:
        access.context(thing, "read")  # 401/403/404 through Access, declared nowhere
        raise Conflict("never declared")

    app = create_app()
    app.include_router(router)
    problems = [p for p in undeclared(app, Raised(("capture_api", "tests"))) if "get_thing" in p]
    assert sorted(problems) == [
        "get_thing raises Conflict (409) undeclared",
        "get_thing raises NotSignedIn (401) undeclared",
        "get_thing raises PatientMismatch (403) undeclared",
        "get_thing raises UnknownContext (404) undeclared",
    ]


def test_every_declared_error_status_is_the_maps() -> None:
    app = create_app()
    document = app.openapi()
    tree = _tree()
    for route in _routes(app):
        for status, entry in _operation(document, route)["responses"].items():
            if not status.startswith(("4", "5")):
                continue
            where = f"{route.name} {status}"
            names = entry.get("x-errors")
            if names is None:  # the framework's field errors, or the route's own answer body
                own_body = "model" in (route.responses.get(int(status)) or {})
                assert status == "422" or own_body, f"{where}: no error class named"
                continue
            assert names, f"{where}: x-errors is empty"
            for name in names:
                assert name in tree, f"{where}: {name} is not in the error tree"
                assert errors.status_of(tree[name]) == int(status), f"{where}: {name}"


def test_no_router_builds_an_http_exception() -> None:
    sources = [*(REPO / "capture_api/api/routes").glob("*.py"), REPO / "capture_api/api/photos.py"]
    users = [p.name for p in sources if "HTTPException" in p.read_text(encoding="utf-8")]
    assert users == []
