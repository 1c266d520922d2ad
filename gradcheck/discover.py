"""Finding CS231n-named layers in somebody's file and matching them to specs."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
import traceback
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from gradcheck.array_layers import find_array_layers
from gradcheck.models import find_models
from gradcheck.packages import missing_dependency
from gradcheck.specs import all_specs
from gradcheck.specs.classifiers import CLASSIFIERS
from gradcheck.torch_layers import find_torch_layers

__all__ = ["Discovery", "Match", "TargetError", "discover", "load_target"]


class TargetError(Exception):
    """The target could not be imported; the message is the user's own traceback."""


@dataclass(frozen=True)
class Match:
    """Something found in the target to check.

    ``kind`` is ``"layer"`` (a spec and the functions implementing it: ``forward`` and
    ``backward``, or a loss), ``"agreement"`` (two implementations of one classifier,
    ``forward`` and ``backward`` naming them, compared with each other) or ``"model"``
    (the class ``forward`` built with the configuration ``config``; ``spec`` is the
    class name plus the configuration), or ``"torch"`` (a layer in torch tensors: ``spec``
    is the label it is reported under, the class name for the course's classes,
    ``forward``/``backward`` name functions or ``Class.method``, ``config`` is the spec),
    or ``"array_api"`` (a layer written for an array API library: ``config`` names it).
    """

    spec: str
    forward: str
    backward: str | None
    kind: str = "layer"
    config: str = ""

    @property
    def label(self) -> str:
        return self.forward if self.backward is None else f"{self.forward}/{self.backward}"


@dataclass
class Discovery:
    """What a target file holds: layers matched by their CS231n names, and the names of all
    its own public functions (to map or suggest others by, see :mod:`gradcheck.suggest`)."""

    target: str
    matches: list[Match] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "Name: why it is not checked"

    @property
    def matched(self) -> set[str]:
        """The names of the functions some match uses."""
        return {name for m in self.matches for name in (m.forward, m.backward) if name}

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "matches": [[m.spec, m.forward, m.backward, m.kind, m.config] for m in self.matches],
            "functions": list(self.functions),
            "skipped": list(self.skipped),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Discovery:
        return cls(data["target"], [Match(*m) for m in data["matches"]], list(data["functions"]),
                   list(data.get("skipped", [])))


COURSE_PACKAGE = "cs231n"


def _package_root(path: str) -> tuple[str, str]:
    """``(sys.path entry, dotted module name)`` for a file, honouring enclosing packages.

    The course's package folder (the innermost ``cs231n/`` around the file) and the folders
    inside it are packages even without ``__init__.py``: the notebook runs from the folder
    holding ``cs231n/`` and imports ``cs231n.classifiers.fc_net`` from there, as namespace
    packages in Python 3, and some students' folders ship no ``__init__.py`` at all (their
    ``from cs231n.layers import *`` and ``from ..layers import *`` both work there)."""
    directory, filename = os.path.split(os.path.abspath(path))
    parts = [os.path.splitext(filename)[0]]
    course = _course_folder(directory)
    while _in_package(directory) or (course is not None and _within(directory, course)):
        directory, package = os.path.split(directory)
        parts.insert(0, package)
    return directory, ".".join(parts)


def _course_folder(directory: str) -> str | None:
    """The innermost folder named like the course's package at or above ``directory``."""
    while os.path.basename(directory) != COURSE_PACKAGE:
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent
    return directory


def _within(directory: str, folder: str) -> bool:
    return directory == folder or directory.startswith(folder + os.sep)


def _in_package(directory: str) -> bool:
    """A package folder: one with ``__init__.py``, or a folder without one inside a package
    (a namespace sub-package: Python 3 imports ``cs231n.classifiers.fc_net`` when only
    ``cs231n/`` has an ``__init__.py``, as some course years ship it)."""
    if os.path.exists(os.path.join(directory, "__init__.py")):
        return True
    parent = os.path.dirname(directory)
    return parent != directory and os.path.exists(os.path.join(parent, "__init__.py"))


def load_target(target: str, *, python2: bool = False, python2_imports: bool = False) -> ModuleType:
    """Import ``target``: a ``.py`` path (inside a package if it is one) or a module name.

    With ``python2``, the file is imported with Python 2's integer division and builtins
    (see :mod:`gradcheck.legacy`). With ``python2_imports`` (worker processes), the files of
    its folder that only Python 2 compiles, and its package's bare-name imports of siblings,
    are imported as Python 2 did (see :mod:`gradcheck.python2_import`).
    """
    from gradcheck import python2_import
    from gradcheck.contract import user_traceback
    from gradcheck.legacy import Python2Loader

    try:
        if target.endswith(".py") or os.path.sep in target or os.path.exists(target):
            if not os.path.isfile(target):
                raise TargetError(f"no such file: {target}")
            root, name = _package_root(target)
            if root not in sys.path:
                sys.path.insert(0, root)
            own = os.path.dirname(os.path.abspath(target))
            if not os.path.exists(os.path.join(own, "__init__.py")) and own not in sys.path:
                sys.path.insert(1, own)  # a namespace sub-package's siblings, imported absolutely
            outer = os.path.dirname(root)
            if outer != root and outer not in sys.path:
                # the folder the course's notebook runs from, last (it shadows nothing): there
                # cs231n/ without __init__.py is a namespace package, imported absolutely
                sys.path.append(outer)
            if python2_imports:
                python2_import.install(root, outer, loader=Python2Loader if python2 else None)
            if "." in name and not python2:
                return importlib.import_module(name)
            path = os.path.abspath(target)
            loader = (Python2Loader(name, path) if python2
                      else python2_import.Python2SyntaxLoader(name, path) if python2_imports else None)
            spec = importlib.util.spec_from_file_location(name, path, loader=loader)
            if spec is None or spec.loader is None:
                raise TargetError(f"cannot import {target}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
            return module
        if importlib.util.find_spec(target.split(".")[0]) is None:
            raise TargetError(f"no such file or module: {target} (pass a .py file, or the name of "
                              "an importable module)")
        return importlib.import_module(target)
    except TargetError:
        raise
    except BaseException as exc:  # the user's module may raise anything at import time
        if isinstance(exc, KeyboardInterrupt):
            raise
        missing = missing_dependency(f"{exc}") if isinstance(exc, ImportError) else None
        if missing is not None:
            raise TargetError(f"importing {target}: {missing}{_where(exc)}") from None
        raise TargetError(f"importing {target} failed:\n{user_traceback(exc)}") from None


def _where(exc: BaseException) -> str:
    """`` (line 3 of .../knn.py)``: the student's line that imported the missing module."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if "importlib" not in f.filename and os.path.sep + "gradcheck" + os.path.sep not in f.filename]
    return f" (line {frames[-1].lineno} of {frames[-1].filename})" if frames else ""


def _own_functions(module: ModuleType) -> dict[str, Any]:
    return {
        name: obj
        for name, obj in vars(module).items()
        if callable(obj) and not name.startswith("_")
        and getattr(obj, "__module__", None) == module.__name__
    }


_CHECKERS_OWN = ("reference_layers", "gradcheck")


def _handed_in(module: ModuleType) -> dict[str, str]:
    """Layer names the module binds to the checker's own code: ``{name: where from}``."""
    found = {}
    for name, obj in vars(module).items():
        origin = str(getattr(obj, "__module__", "") or "")
        if callable(obj) and origin.split(".")[0] in _CHECKERS_OWN:
            found[name] = origin
    return found


def discover(module: ModuleType, target: str | None = None) -> Discovery:
    """Match the module's own functions to specs by their CS231n names; a layer name bound
    to the checker's own reference code is a match of kind ``"reference"`` (it hands in
    the checker's answer, which is judged, not checked)."""
    functions = _own_functions(module)
    found = Discovery(target or module.__name__, functions=sorted(functions))
    handed = _handed_in(module)
    for spec in all_specs():
        pair = next(((f, b) for f, b in spec.names if f in handed and f not in functions), None)
        if pair is not None and spec.kind in ("layer", "loss"):
            found.matches.append(Match(spec.name, pair[0], pair[1], kind="reference",
                                       config=handed[pair[0]]))
    for spec in all_specs():
        backwards: set[str | None] = set()
        for forward, backward in spec.names:
            if backward is not None and backward in backwards:
                continue  # an earlier pair of this spec already has this backward
            if forward in functions and (backward is None or backward in functions):
                if spec.family == "classifiers" and not _takes(functions[forward], 4):
                    continue  # a loss of its own under a classifier's name: see suggest
                backwards.add(backward)
                found.matches.append(Match(spec.name, forward, backward))
    found.matches += agreements(found.matches)
    found.matches += find_models(module)
    found.matches = find_torch_layers(module, found.matches)
    found.matches, skipped = find_array_layers(module, found.matches)
    found.skipped += skipped
    return found


def _takes(fn: Any, count: int) -> bool:
    """Whether ``fn`` can be called with ``count`` positional arguments."""
    try:
        inspect.signature(fn).bind(*range(count))
    except TypeError:
        return False
    except ValueError:  # no signature to read (a builtin): assume it can
        return True
    return True


def agreements(matches: list[Match]) -> list[Match]:
    """Naive and vectorized implementations of one classifier, both found: compare them."""
    names = {m.forward for m in matches if m.kind == "layer"}
    return [Match(f"{naive} vs {vectorized}", naive, vectorized, kind="agreement")
            for naive, vectorized in CLASSIFIERS.values() if naive in names and vectorized in names]
