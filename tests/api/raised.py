"""Which ``CaptureError`` classes a function can raise, read from its source (an oracle for
tests/api/test_error_map.py, independent of what the routes declare).

The source of the function is parsed with ``ast``; every ``raise SomeError(...)`` whose
class resolves (in the function's module) to a ``CaptureError`` subclass counts, unless an
enclosing ``try`` in the same function catches it. Every call whose target resolves to a
function or method of capture is followed the same way: module functions by name
(``find(...)``, ``images.image(...)``), methods through the annotated type of a parameter
(``access: AccessDep`` -> ``Access.context``) or through ``self``. What cannot be resolved
(a method of a local variable, a callback) is not followed; a helper that knows it raises
through such calls says so with ``capture_api.api.errors.raises`` (``__raises__``), which is
counted too. The result is what the code visibly raises: a route must declare at least that.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import sys
import textwrap
import typing
from collections.abc import Callable
from types import FunctionType, ModuleType
from typing import Any

from capture_api.exceptions import CaptureError

Errors = frozenset[type[CaptureError]]


class Raised:
    """Memoised ``raised(function)`` over the code of the top-level ``packages``."""

    def __init__(self, packages: tuple[str, ...] = ("capture_api",)) -> None:
        self.packages = packages
        self._done: dict[Callable[..., Any], Errors] = {}
        self._busy: set[Callable[..., Any]] = set()

    def __call__(self, function: Callable[..., Any]) -> Errors:
        declared = frozenset(getattr(function, "__raises__", ()))
        target = inspect.unwrap(function)
        if isinstance(target, type):  # a dependency class: its __init__
            init = target.__dict__.get("__init__")
            return declared | (self(init) if isinstance(init, FunctionType) else frozenset())
        if not isinstance(target, FunctionType) or not self._ours(target):
            return declared
        if target in self._done:
            return declared | self._done[target]
        if target in self._busy:  # recursion: what is found on the way out is enough
            return declared
        self._busy.add(target)
        try:
            found = _Reader(self, target).errors()
        finally:
            self._busy.discard(target)
        self._done[target] = found
        return declared | found

    def _ours(self, function: FunctionType) -> bool:
        return function.__module__.split(".")[0] in self.packages


class _Reader:
    """One function's source: its raises and the calls it makes, ``try`` by ``try``."""

    def __init__(self, raised: Raised, function: FunctionType) -> None:
        self.raised = raised
        self.function = function
        self.scope: dict[str, Any] = {**vars(builtins), **function.__globals__}
        self.types = _parameter_types(function)
        self.owner = _owner(function)

    def errors(self) -> Errors:
        try:
            source = textwrap.dedent(inspect.getsource(self.function))
        except (OSError, TypeError):
            return frozenset()
        tree = ast.parse(source)
        (definition,) = tree.body
        assert isinstance(definition, ast.FunctionDef | ast.AsyncFunctionDef)
        found: set[type[CaptureError]] = set()
        for statement in definition.body:
            self._visit(statement, (), found)
        return frozenset(found)

    def _visit(
        self, node: ast.AST, caught: tuple[type[BaseException], ...], found: set[type[CaptureError]]
    ) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef):
            return  # a nested definition runs when called, not here
        if isinstance(node, ast.Try):
            handled = caught + tuple(self._handled(node))
            for statement in node.body:
                self._visit(statement, handled, found)
            for after in [*node.handlers, *node.orelse, *node.finalbody]:
                self._visit(after, caught, found)
            return
        if isinstance(node, ast.Raise) and node.exc is not None:
            target = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            error = self._resolve(target)
            if _is_error(error) and not issubclass(error, caught or ()):
                found.add(error)
        if isinstance(node, ast.Call):
            callee = self._resolve(node.func)
            if callee is not None and not _is_error(callee):
                found |= {e for e in self.raised(callee) if not issubclass(e, caught or ())}
        for child in ast.iter_child_nodes(node):
            self._visit(child, caught, found)

    def _handled(self, node: ast.Try) -> list[type[BaseException]]:
        handled: list[type[BaseException]] = []
        for handler in node.handlers:
            if handler.type is None:
                handled.append(BaseException)
                continue
            names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
            for name in names:
                error = self._resolve(name)
                if isinstance(error, type) and issubclass(error, BaseException):
                    handled.append(error)
        return handled

    def _resolve(self, node: ast.expr) -> Any:
        """The object an expression names: a global, a module attribute, a typed parameter's
        attribute (its class's), ``self.method``; None when it cannot be known."""
        if isinstance(node, ast.Name):
            if node.id == "self" and self.owner is not None:
                return self.owner
            if node.id in self.types:
                return self.types[node.id]
            return self.scope.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self._resolve(node.value)
            if isinstance(base, ModuleType | type):
                return (
                    inspect.getattr_static(base, node.attr, None)
                    if isinstance(base, type)
                    else getattr(base, node.attr, None)
                )
        return None


def _is_error(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, CaptureError)


def _parameter_types(function: FunctionType) -> dict[str, type]:
    """Parameter name -> its class, from the annotations (``Annotated[X, Depends(...)]`` -> X)."""
    try:
        hints = typing.get_type_hints(function, include_extras=True)
    except Exception:  # an annotation that does not evaluate here: no types, no harm
        return {}
    types: dict[str, type] = {}
    for name, hint in hints.items():
        if typing.get_origin(hint) is typing.Annotated:
            hint = typing.get_args(hint)[0]
        if isinstance(hint, type) and name != "return":
            types[name] = hint
    return types


def _owner(function: FunctionType) -> type | None:
    """The class a method is defined in (from its qualified name), for ``self.x`` calls."""
    path = function.__qualname__.split(".")
    if len(path) < 2 or "<locals>" in path:
        return None
    owner: Any = sys.modules[function.__module__]
    for part in path[:-1]:
        owner = getattr(owner, part, None)
    return owner if isinstance(owner, type) else None
