"""Imports that a student's file makes, never uses, and that fail here.

Editors add imports as one types: VS Code's auto-import turns a typed ``true`` into
``from sqlalchemy import true``, ``savez_compressed`` into ``from numpy.lib.npyio import
savez_compressed`` (a name NumPy 2 no longer has there). Where the package is missing, the
whole file fails to import, and with it every classifier of the package that imports it,
though nothing in the file uses the name and each function was right in its course.

In a worker process, a module-level import whose every name the file never reads, and that
would fail here (the package is not installed, the module lacks the name), binds its names
to a :class:`Missing` placeholder instead, which raises ``ImportError`` naming the import if
anything does use it; the rest of the file runs as written and line numbers stay right.
Each use is recorded (:func:`stray_used`): the checked layer passes with the
``stray_import`` warning (a note for an import of the course's own requirements, such as
``past.builtins`` from ``future``). An import the file does use still fails, with the one
line naming the package to install.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import os
import sysconfig
from typing import Any

from gradcheck.contract import Violation
from gradcheck.kinds import ViolationKind

__all__ = ["MISSING", "Missing", "replace_stray_imports", "stray_import_findings", "stray_used"]

# The name the loaders bind :class:`Missing` to in a module whose stray imports were replaced
# (checked code may not import gradcheck's modules).
MISSING = "__gradcheck_missing__"

_used: dict[str, str] = {}  # "file, line N" -> the import and why it fails here
# Packages the course's own requirements install: a stray import of them is no hazard there.
_COURSE_REQUIREMENTS = ("past", "future")


class Missing:
    """What a stray import binds its names to: any use raises ``ImportError``."""

    def __init__(self, statement: str, reason: str) -> None:
        self._why = f"{statement} failed here ({reason}); gradcheck ran the file without it"

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise ImportError(self._why)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise ImportError(self._why)

    def __repr__(self) -> str:
        return f"<missing: {self._why}>"


def stray_used() -> dict[str, str]:
    """The stray imports this process replaced: ``{"file, line N": "the import: why"}``."""
    return dict(_used)


def _read_names(tree: ast.Module) -> set[str]:
    """Every name the module reads (loads, deletes, ``__all__`` strings, ``global``s)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Global | ast.Nonlocal):
            names.update(node.names)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.isidentifier():
            names.add(node.value)  # __all__, getattr(module, "name"), globals()["name"]
    return names


def _bound(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.asname or a.name.split(".")[0] for a in node.names]
    return [a.asname or a.name for a in node.names]


def _absolute(node: ast.Import | ast.ImportFrom) -> bool:
    """An import of named modules: not relative, not ``__future__``, not ``*``."""
    return isinstance(node, ast.Import) or (
        not node.level and node.module not in (None, "__future__") and all(a.name != "*" for a in node.names))


def _failure(node: ast.Import | ast.ImportFrom) -> str | None:
    """Why the import would fail here, or None when it would not (or when it is not the
    installation's to blame: a missing file of a package that is there, a name missing from
    a module of the student's own folder)."""
    modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [str(node.module)]
    for module in modules:
        top = module.split(".")[0]
        if not _submodule(top):
            return f"{top} is not installed"
        if not _submodule(module):
            return None
    if isinstance(node, ast.ImportFrom) and _installed(str(node.module)):
        try:
            imported = importlib.import_module(str(node.module))
        except Exception as exc:  # importing it would raise in the student's file too
            return f"importing {node.module} raised {type(exc).__name__}"
        for alias in node.names:
            if not hasattr(imported, alias.name) and not _submodule(f"{node.module}.{alias.name}"):
                return f"{node.module} has no {alias.name}"
    return None


def _installed(module: str) -> bool:
    """A module of the standard library or of an installed package (not the student's)."""
    spec = importlib.util.find_spec(module)
    origin = os.path.realpath(str(spec.origin)) if spec is not None and spec.origin else ""
    return origin.startswith(_library_folders())


@functools.lru_cache(maxsize=1)
def _library_folders() -> tuple[str, ...]:
    """The folders of the standard library and of installed packages, each ending in a separator."""
    paths = sysconfig.get_paths()
    return tuple(os.path.realpath(paths[k]) + os.sep for k in ("stdlib", "purelib", "platlib"))


def _submodule(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # the parent is a module, not a package
        return False


def _placeholders(node: ast.Import | ast.ImportFrom, statement: str, reason: str) -> list[ast.stmt]:
    """``name = Missing(statement, reason)`` for each bound name (``Missing`` bound to
    :data:`MISSING` in the module by its loader)."""
    made = f"{MISSING}({statement!r}, {reason!r})"
    value = ast.parse(made, mode="eval").body
    assigns: list[ast.stmt] = [ast.Assign(targets=[ast.Name(n, ast.Store())], value=value)
                               for n in _bound(node)]
    for assign in assigns:
        ast.copy_location(assign, node)
        for child in ast.walk(assign):
            ast.copy_location(child, node)
    return assigns


def replace_stray_imports(tree: ast.Module, path: str, source: str) -> bool:
    """Replace, in place, the module-level imports of ``tree`` that would fail here and that
    the module never reads; record each (``path``: the file, for the record). True when any
    was replaced."""
    read: set[str] | None = None  # walked only for a file with an import that fails here
    replaced = False
    body: list[ast.stmt] = []
    for node in tree.body:
        if (not isinstance(node, ast.Import | ast.ImportFrom) or not _absolute(node)
                or (reason := _failure(node)) is None):
            body.append(node)
            continue
        read = _read_names(tree) if read is None else read
        if set(_bound(node)) & read:
            body.append(node)
            continue
        statement = (ast.get_source_segment(source, node) or ast.unparse(node)).strip()
        body += _placeholders(node, statement, reason)
        _used[f"{path}, line {node.lineno}"] = f"{statement}: {reason}"
        replaced = True
    tree.body = body
    return replaced


def stray_import_findings(used: dict[str, str]) -> tuple[Violation | None, list[str]]:
    """The ``stray_import`` warning for the stray imports ``used`` (see :func:`stray_used`),
    and notes for those of packages the course's requirements install."""
    course = {k: v for k, v in used.items() if v.split()[1].split(".")[0] in _COURSE_REQUIREMENTS}
    stray = {k: v for k, v in used.items() if k not in course}
    notes = []
    for what in sorted(set(course.values())):
        statement, _, reason = what.partition(": ")
        files = sorted({k.rpartition(", line")[0] for k, v in course.items() if v == what})
        notes.append(f"{statement}, in {', '.join(files)}, is unused and fails here ({reason}); checked "
                     "without it (the course's requirements install it)")
    if not stray:
        return None, notes
    lines = "; ".join(f"{where}: {what}" for where, what in sorted(stray.items()))
    return Violation(
        ViolationKind.STRAY_IMPORT,
        f"imports that nothing in the file uses, which fail here ({lines}); gradcheck ran the "
        "file without them. An editor's auto-import? Delete the line."), notes
