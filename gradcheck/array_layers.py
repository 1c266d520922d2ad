"""Layers written for an array API library: found in a file that imports one, checked
through it.

Discovery (no new import): a file that computes with one of :data:`LIBRARIES` (it imports
it, and not numpy, or uses it more often than ``np.`` in its source) gets its CS231n-named
functions checked through that library (matches of kind ``array_api``, the library's name
as their configuration), found as in a numpy file. Its naive-against-vectorized
agreements and CS231n models are not checked (they call the code with numpy arrays), and
the discovery says so.

Checking: the functions become functions on numpy arrays on the library's default device
(:func:`gradcheck.array_conversion.numpy_pair` with
:class:`gradcheck.array_api.NamespaceLibrary`) and go through the same checker as any
CS231n pair: generated cases, the forward against the reference, gradients against
numerics (the complex step where the library and the forward's operations take
complex128), shrunk failures, diagnoses. A library that is installed but cannot make an
array here (CuPy without a GPU) is a verdict of one line, not a traceback.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from types import ModuleType
from typing import Any

from gradcheck.options import CheckOptions
from gradcheck.outcome import Outcome

__all__ = ["LIBRARIES", "array_library", "array_pair", "check_array_match", "computes_with",
           "find_array_layers"]

# Array libraries a student's file may compute with (import name). NumPy files keep the
# numpy path, torch files the torch one (gradcheck.torch_layers).
LIBRARIES = ("array_api_strict", "cupy")

PairMaker = Callable[[], "tuple[Any, Any] | str"]


def array_library(module: ModuleType) -> str | None:
    """The library of :data:`LIBRARIES` the module computes with, or ``None``."""
    return next((library for library in LIBRARIES if computes_with(module, library)), None)


def computes_with(module: ModuleType, library: str) -> bool:
    """Whether the module computes with ``library`` (an import name) rather than NumPy: it
    imports the library and not numpy, or uses it (``torch.``, ``xp.`` for ``import
    array_api_strict as xp``) more often than ``np.`` in its source."""
    roots = {v.__name__.split(".")[0] for v in vars(module).values() if isinstance(v, ModuleType)}
    if library not in roots:
        return False
    if "numpy" not in roots:
        return True
    try:
        source = inspect.getsource(module)
    except (OSError, TypeError):
        return False
    aliases = {library} | {name for name, value in vars(module).items()
                           if isinstance(value, ModuleType) and value.__name__ == library}
    used = sum(source.count(f"{alias}.") for alias in aliases)
    return used > source.count("np.") + source.count("numpy.")


def find_array_layers(module: ModuleType, matches: list[Any]) -> tuple[list[Any], list[str]]:
    """The matches of a file written for an array library, as ``array_api`` ones, and what
    is left unchecked, with why; a numpy file's matches come back unchanged."""
    from gradcheck.discover import Match

    library = array_library(module)
    if library is None:
        return matches, []
    found, skipped = [], []
    for m in matches:
        if m.kind == "layer":
            found.append(Match(m.spec, m.forward, m.backward, kind="array_api", config=library))
        elif m.kind == "reference":
            found.append(m)
        else:
            skipped.append(f"{m.label}: not checked in a file written for {library} (only layer "
                           "and loss functions are)")
    return found, skipped


def array_pair(module: ModuleType, forward: str, backward: str | None,
               library: str) -> tuple[Callable[..., Any], Callable[..., Any] | None]:
    """The module's ``forward``/``backward`` as functions on numpy arrays, computing with
    ``library`` on its default device. Raises :class:`gradcheck.array_api.LibraryUnusable`
    or ``ImportError`` when the library or array-api-compat cannot be used here."""
    from gradcheck.array_api import open_library
    from gradcheck.array_conversion import numpy_pair

    return numpy_pair(getattr(module, forward), getattr(module, backward) if backward else None,
                      open_library(library))


def check_array_match(module: ModuleType, spec_name: str, forward: str, backward: str | None,
                      library: str, options: CheckOptions, make_pair: PairMaker | None = None) -> Outcome:
    """Check one layer of ``module`` through ``library`` (see the module docstring).

    ``make_pair()`` gives the layer as numpy functions, or why it cannot be checked here;
    by default made in this process, in the judge's by the worker (:mod:`gradcheck.judge`).
    """
    from gradcheck.candidate import check_candidate
    from gradcheck.specs import get_spec

    spec = get_spec(spec_name)
    pair = (make_pair or _local_pair(module, forward, backward, library))()
    if isinstance(pair, str):
        outcome = Outcome(spec=spec_name, functions=(forward, backward), kind="layer")
        outcome.gradients = {name: "-" for name in spec.wrt}
        outcome.forward, outcome.error = "-", f"not checked: {pair}"
        return outcome
    return check_candidate(spec, pair[0], pair[1], options)


def _local_pair(module: ModuleType, forward: str, backward: str | None, library: str) -> PairMaker:
    def make() -> tuple[Any, Any] | str:
        from gradcheck.array_api import LibraryUnusable

        try:
            return array_pair(module, forward, backward, library)
        except (LibraryUnusable, ImportError) as exc:
            return str(exc)

    return make
