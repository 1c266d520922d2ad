"""Finding CS231n-named layers in somebody's file and matching them to specs."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from gradcheck.specs import all_specs

__all__ = ["Discovery", "Match", "TargetError", "discover", "load_target"]


class TargetError(Exception):
    """The target could not be imported; the message is the user's own traceback."""


@dataclass(frozen=True)
class Match:
    """A layer found in the target: the spec it matches and the functions implementing it."""

    spec: str
    forward: str
    backward: str | None

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

    @property
    def matched(self) -> set[str]:
        """The names of the functions some match uses."""
        return {name for m in self.matches for name in (m.forward, m.backward) if name}

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "matches": [[m.spec, m.forward, m.backward] for m in self.matches],
            "functions": list(self.functions),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Discovery:
        return cls(data["target"], [Match(*m) for m in data["matches"]], list(data["functions"]))


def _package_root(path: str) -> tuple[str, str]:
    """``(sys.path entry, dotted module name)`` for a file, honouring enclosing packages."""
    directory, filename = os.path.split(os.path.abspath(path))
    parts = [os.path.splitext(filename)[0]]
    while os.path.exists(os.path.join(directory, "__init__.py")):
        directory, package = os.path.split(directory)
        parts.insert(0, package)
    return directory, ".".join(parts)


def load_target(target: str, *, python2: bool = False) -> ModuleType:
    """Import ``target``: a ``.py`` path (inside a package if it is one) or a module name.

    With ``python2``, the file is imported with Python 2's integer division and builtins
    (see :mod:`gradcheck.legacy`).
    """
    from gradcheck.contract import user_traceback
    from gradcheck.legacy import Python2Loader

    try:
        if target.endswith(".py") or os.path.sep in target or os.path.exists(target):
            if not os.path.isfile(target):
                raise TargetError(f"no such file: {target}")
            root, name = _package_root(target)
            if root not in sys.path:
                sys.path.insert(0, root)
            if "." in name and not python2:
                return importlib.import_module(name)
            loader = Python2Loader(name, os.path.abspath(target)) if python2 else None
            spec = importlib.util.spec_from_file_location(name, os.path.abspath(target), loader=loader)
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
        raise TargetError(f"importing {target} failed:\n{user_traceback(exc)}") from None


def _own_functions(module: ModuleType) -> dict[str, Any]:
    return {
        name: obj
        for name, obj in vars(module).items()
        if callable(obj) and not name.startswith("_")
        and getattr(obj, "__module__", None) == module.__name__
    }


def discover(module: ModuleType, target: str | None = None) -> Discovery:
    """Match the module's own functions to specs by their CS231n names."""
    functions = _own_functions(module)
    found = Discovery(target or module.__name__, functions=sorted(functions))
    for spec in all_specs():
        backwards: set[str | None] = set()
        for forward, backward in spec.names:
            if backward is not None and backward in backwards:
                continue  # an earlier pair of this spec already has this backward
            if forward in functions and (backward is None or backward in functions):
                backwards.add(backward)
                found.matches.append(Match(spec.name, forward, backward))
    return found
