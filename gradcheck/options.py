"""The one options object: how a check is run, validated once, shared by every entry point.

:class:`CheckOptions` is what ``check_layer``, ``check_loss``, ``check_object``,
``check_model``, ``check_like``, the ``gradchecker`` fixture, the pytest plugin and the
command line all take. A wrong value or a misspelt name fails at once, naming the option.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from gradcheck.numeric import METHODS
from gradcheck.progress import check_progress

__all__ = ["DEVICES", "GEOMETRIES", "METHODS", "MODES", "CheckOptions"]

MODES = ("full", "sample", "directional")
GEOMETRIES = ("auto", "cs231n", "general")
DTYPES = ("float64", "float32")
DEVICES = ("auto", "cpu", "cuda")


def _count(value: Any) -> bool:
    return type(value) is int or (not isinstance(value, bool) and isinstance(value, (int, np.integer)))


@dataclass(frozen=True)
class CheckOptions:
    """How to check.

    Numerics (one call of a layer):

    method : {"auto", "complex", "central", "richardson", "forward"}
        ``auto`` uses the complex step when a probe shows the forward is complex-safe,
        central differences otherwise.
    mode : {"full", "sample", "directional"}
        Every coordinate (locates every wrong entry; cost grows with the input size);
        ``samples`` random coordinates per input plus one direction; or random directions
        (a verdict in a few forward evaluations, whatever the size: pick it for large
        layers and whole models). A mismatch in the cheaper modes is localised by a full
        check of that input when ``localise`` is on.
    seed : int
        Seeds the upstream gradient, the directions, the samples and generated cases.
    rtol, atol : float or None
        Tolerances; by default ``rtol`` follows the layer's precision and ``atol`` is 0.
    samples : int
        Coordinates per input in ``sample`` mode.
    directions : int or None
        In ``directional`` mode: ``None`` (the default) first tries one random direction
        through every input at once (two forward evaluations; the deferred contract calls
        are skipped when it agrees) and otherwise checks two directions per input; a
        number checks that many directions per input.
    grouped : bool
        In full mode, estimate many coordinates per forward evaluation where a probe shows
        they reach disjoint outputs (verified, and guarded by a final directional check).
    localise : bool
        Follow a mismatch in ``sample``/``directional`` mode with a full check of that input.

    Generated cases (``check_like``, the command line, the pytest plugin):

    examples : int
        Cases generated per layer.
    geometry : {"auto", "cs231n", "general"}
        ``cs231n``: only the assignment's contract; ``general``: every valid geometry;
        ``auto``: both, skipping general cases the layer visibly does not support.
    budget : float
        Seconds spent shrinking a failing case to the smallest one.
    dtype : {"float64", "float32"}
        dtype of the generated inputs.
    device : {"auto", "cpu", "cuda"}
        Where torch layers get their tensors (``auto``: CUDA when torch finds a GPU).
        numpy layers ignore it.

    Display:

    progress : bool or None
        Show the progress of a long check on stderr (which gradient, how many entries,
        time left). ``None``: in a terminal or notebook, for a check that takes more than a
        few seconds; ``True``: always; ``False``: never.
    """

    method: str = "auto"
    mode: str = "full"
    seed: int = 0
    rtol: float | None = None
    atol: float | None = None
    samples: int = 10
    directions: int | None = None
    grouped: bool = True
    localise: bool = True
    examples: int = 10
    geometry: str = "auto"
    budget: float = 20.0
    dtype: str = "float64"
    device: str = "auto"
    progress: bool | None = None

    def __post_init__(self) -> None:
        for name, choices in (("method", METHODS), ("mode", MODES), ("geometry", GEOMETRIES),
                              ("device", DEVICES)):
            if getattr(self, name) not in choices:
                raise ValueError(f"{name}={getattr(self, name)!r} is not one of {', '.join(choices)}")
        if not _count(self.seed) or self.seed < 0:
            raise ValueError(f"seed={self.seed!r} must be a non-negative integer")
        for name in ("rtol", "atol"):
            value = getattr(self, name)
            if value is not None and (
                not isinstance(value, (int, float, np.floating)) or isinstance(value, bool)
                or not value >= 0 or value == np.inf
            ):
                raise ValueError(f"{name}={value!r} must be a finite number >= 0, or None")
        for name in ("samples", "directions", "examples"):
            value = getattr(self, name)
            if name == "directions" and value is None:
                continue
            if not _count(value) or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive integer")
        for name in ("grouped", "localise"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}={getattr(self, name)!r} must be True or False")
        try:
            dtype = np.dtype(self.dtype).name
        except TypeError:
            dtype = repr(self.dtype)
        if dtype not in DTYPES:
            raise ValueError(f"dtype={self.dtype!r} is not one of {', '.join(DTYPES)}")
        object.__setattr__(self, "dtype", dtype)
        check_progress(self.progress)
        if isinstance(self.budget, bool) or not isinstance(self.budget, (int, float)) or not self.budget > 0:
            raise ValueError(f"budget={self.budget!r} must be a positive number of seconds")

    @classmethod
    def build(cls, options: CheckOptions | None = None, **overrides: Any) -> CheckOptions:
        """``options`` (or the defaults) with ``overrides`` applied; an unknown name is a
        ``TypeError`` that suggests the nearest option."""
        if options is not None and not isinstance(options, CheckOptions):
            raise TypeError(f"options must be a CheckOptions; got {type(options).__name__}")
        for name in overrides:
            if name not in _NAMES:
                near = difflib.get_close_matches(name, _NAMES, n=1)
                hint = f" (did you mean {near[0]!r}?)" if near else f"; options are: {', '.join(_NAMES)}"
                raise TypeError(f"unknown option {name!r}{hint}")
        if not overrides:
            return options if options is not None else _DEFAULT
        given = tuple(overrides.items())
        try:
            hash(given)
        except TypeError:  # an unhashable value: validated without the cache
            return dataclasses.replace(options or _DEFAULT, **overrides)
        return _built(options, given)

    @classmethod
    def within(cls, timeout: float, **fields: Any) -> CheckOptions:
        """Options for a layer given ``timeout`` seconds in all: a quarter of it (at least
        5 s) may go to shrinking a failure."""
        return cls.build(None, budget=max(5.0, float(timeout) / 4), **fields)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CheckOptions:
        return cls.build(None, **data)


_DEFAULT = CheckOptions()
_NAMES = tuple(f.name for f in dataclasses.fields(CheckOptions))


@functools.lru_cache(maxsize=64)
def _built(options: CheckOptions | None, overrides: tuple[tuple[str, Any], ...]) -> CheckOptions:
    """The same options for the same arguments: validated once (a check of a layer that runs
    in a millisecond calls ``check_layer`` with the same keywords again and again)."""
    return dataclasses.replace(options or _DEFAULT, **dict(overrides))
