"""The contract of a backward pass, and how breaches of it are described.

A backward pass must return one gradient per differentiable input, each of exactly its
input's shape, finite, without writing into the arrays it was handed, and the same every
time. Each breach has a stable ``kind`` (for tests and JSON) and a message that speaks in
the user's own argument names and shapes.
"""

from __future__ import annotations

import importlib
import math
import os
import traceback
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from gradcheck.diagnose import diagnose_shape
from gradcheck.kinds import ViolationKind

__all__ = [
    "Stop",
    "UserCodeError",
    "Violation",
    "check_unchanged",
    "describe_mutation",
    "max_difference",
    "parse_gradients",
    "repeatable",
    "user_traceback",
]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


class _ViolationFields(NamedTuple):
    kind: ViolationKind
    message: str
    argument: str | None = None


class Violation(_ViolationFields):
    """One breach of the backward-pass contract, or a hazard that breaks nothing.

    ``kind`` is a :class:`~gradcheck.kinds.ViolationKind` such as ``gradient_shape`` (given
    as the enum or its word; an unknown word fails at once); ``argument`` names the input
    concerned, when there is one. Warning kinds leave the layer passing (``--strict``
    fails it).
    """

    __slots__ = ()

    def __new__(cls, kind: ViolationKind | str, message: str, argument: str | None = None) -> Violation:
        return super().__new__(cls, ViolationKind(kind), message, argument)

    @property
    def is_warning(self) -> bool:
        return self.kind.is_warning

    @property
    def why(self) -> str:
        """Why a warning matters although every result is right ("" for failures)."""
        return self.kind.why


class Stop(Exception):
    """A breach after which no gradient can be compared; ``args[0]`` is the Violation."""


class UserCodeError(Exception):
    """The user's function raised; carries the stage and the user's own traceback."""

    def __init__(self, stage: str, exc: BaseException) -> None:
        self.stage = stage
        self.original = exc
        self.user_traceback = user_traceback(exc)
        super().__init__(f"{stage} raised {type(exc).__name__}: {exc}")


_IMPORT_MACHINERY = os.path.dirname(os.path.abspath(importlib.__file__)) + os.sep


def _own_frame(filename: str) -> bool:
    """A frame of gradcheck or of Python's import machinery, which the user need not read."""
    path = os.path.abspath(filename)
    return (path.startswith(_PACKAGE_DIR + os.sep) or filename.startswith("<frozen importlib")
            or path.startswith(_IMPORT_MACHINERY))


def user_traceback(exc: BaseException) -> str:
    """The traceback of ``exc`` without gradcheck's own frames or the import machinery's
    (the worker's own record of it, for an error raised by code in the worker process)."""
    remote = getattr(exc, "remote_traceback", None)
    if isinstance(remote, str) and remote:
        return remote
    frames = [frame for frame in traceback.extract_tb(exc.__traceback__) if not _own_frame(frame.filename)]
    lines = traceback.format_list(frames)
    lines += traceback.format_exception_only(type(exc), exc)
    return "".join(lines).rstrip()


def describe_mutation(before: np.ndarray, after: np.ndarray) -> str:
    """``"3 of 20 entries changed, first at index (0, 2)"``."""
    if before.shape != after.shape:
        return f"its shape changed from {before.shape} to {after.shape}"
    same = np.asarray(before == after)
    if np.issubdtype(before.dtype, np.inexact):
        same |= np.isnan(before) & np.isnan(after)
    changed = ~same
    count = int(np.count_nonzero(changed))
    first = tuple(int(i) for i in np.argwhere(changed)[0]) if count else ()
    return f"{count} of {before.size} entries changed, first at index {first}"


def check_unchanged(
    pristine: Sequence[Any], used: Sequence[Any], names: list[str], who: str
) -> list[Violation]:
    found = []
    for name, before, after in zip(names, pristine, used):
        if isinstance(before, np.ndarray) and not _same(before, after):
            found.append(
                Violation(
                    ViolationKind.INPUT_MUTATED,
                    f"{who} wrote into its input {name}: {describe_mutation(before, after)}. "
                    "Work on a copy (x = x.copy()) or use out-of-place operations.",
                    name,
                )
            )
    return found


_BYTES_COMPARED = 4096


def _same(before: np.ndarray, after: Any) -> bool:
    """Bit-for-bit the same values (NaN equal to NaN), cheaply in the usual case."""
    if not isinstance(after, np.ndarray) or before.shape != after.shape:
        return False
    if before.size <= _BYTES_COMPARED and before.dtype == after.dtype and before.tobytes() == after.tobytes():
        return True  # cheaper than an element-wise pass for a small array
    if (before == after).all():
        return True
    return before.dtype.kind in "fc" and np.array_equal(before, after, equal_nan=True)


def max_difference(a: np.ndarray, b: np.ndarray) -> float:
    diff = np.atleast_1d(np.subtract(a, b, dtype=np.float64))
    return float(np.max(np.abs(diff, out=diff), initial=0.0))


def parse_gradients(
    result: Any, args: Sequence[Any], positions: list[int], names: list[str]
) -> tuple[list[np.ndarray | None], list[Violation]]:
    n = len(positions)
    if isinstance(result, np.ndarray) and n == 1:
        result = (result,)
    if not isinstance(result, (tuple, list)) or len(result) != n:
        raise Stop(_wrong_count(result, args, positions, names))
    grads: list[np.ndarray | None] = []
    found = []
    for g, pos in zip(result, positions):
        arr, problem = _parse_gradient(g, names[pos], args[pos])
        grads.append(arr)
        if problem is not None:
            found.append(problem)
    return grads, found


def _wrong_count(result: Any, args: Sequence[Any], positions: list[int], names: list[str]) -> Violation:
    """What is wrong with a backward that did not return one gradient per position."""
    n = len(positions)
    wanted = ", ".join(f"d{names[p]}" for p in positions)
    if not isinstance(result, (tuple, list)):
        return Violation(
            ViolationKind.GRADIENT_COUNT,
            f"backward returned {type(result).__name__}; expected {n} gradient(s) ({wanted}) as a tuple",
        )
    integers = [names[i] for i, a in enumerate(args)
                if isinstance(a, np.ndarray) and np.issubdtype(a.dtype, np.integer)]
    what = "is an integer array" if len(integers) == 1 else "are integer arrays"
    hint = (f". Note: {', '.join(integers)} {what}, which is not differentiated; cast it "
            "to float to check its gradient" if integers and len(result) > n else "")
    return Violation(
        ViolationKind.GRADIENT_COUNT,
        f"backward returned {len(result)} gradients; expected {n}, one for each "
        f"differentiable input, in argument order: {wanted}{hint}",
    )


def _parse_gradient(g: Any, name: str, arg: Any) -> tuple[np.ndarray | None, Violation | None]:
    """One returned gradient as a real array of its argument's shape, all finite; or None and
    what is wrong with it."""
    if g is None:
        return None, Violation(ViolationKind.GRADIENT_TYPE, f"backward returned None for d{name}", name)
    if type(g) is np.ndarray and g.dtype.kind == "f":
        arr = g  # the usual case, taken as it is
    else:
        try:
            arr = np.asarray(g, dtype=np.result_type(g, np.float16) if isinstance(g, np.ndarray) else None)
        except (TypeError, ValueError):
            arr = np.asarray(g, dtype=object)
    if arr.dtype.kind not in "iuf":  # a real number type
        return None, Violation(
            ViolationKind.GRADIENT_TYPE,
            f"d{name} must be a real array; backward returned {type(g).__name__}"
            + (f" of dtype {arr.dtype}" if isinstance(g, np.ndarray) else ""),
            name,
        )
    if arr.shape != arg.shape:
        return None, Violation(ViolationKind.GRADIENT_SHAPE, diagnose_shape(name, arr.shape, arg.shape), name)
    bad = _nonfinite(arr)
    if bad is not None:
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        kind = "NaN" if np.any(np.isnan(arr)) else "inf"
        return None, Violation(
            ViolationKind.GRADIENT_NONFINITE,
            f"d{name} contains {kind} at {int(bad.sum())} of {arr.size} entries (first at index {first})",
            name,
        )
    return arr, None


def _nonfinite(arr: np.ndarray) -> np.ndarray | None:
    """Where ``arr`` is NaN or inf, or None when it is all finite."""
    if arr.dtype.kind == "f":
        flat = arr.reshape(-1)
        if math.isfinite(np.dot(flat, flat)):
            return None  # a NaN or inf entry makes the dot product one (it warns of nothing)
    finite = np.isfinite(arr)
    return None if finite.all() else ~finite


def repeatable(a: np.ndarray, b: np.ndarray | None, eps: float) -> bool:
    """Whether ``b`` repeats ``a`` up to a few ulps of its largest entry."""
    if b is None or a.shape != b.shape:
        return False
    return max_difference(a, b) <= 4 * eps * float(np.max(np.abs(a), initial=0.0))


# -- contract steps shared by every adapter (function pair, layer object, loss, model) ---------


def output_scale(outputs: Sequence[np.ndarray], douts: Sequence[np.ndarray]) -> float:
    """``sum_j sum |dout_j * out_j|``, the size of ``L``'s terms that tolerances scale with;
    a NaN or inf output is a :class:`Stop`. (Every ``dout`` entry is nonzero, so the sum is
    finite exactly when the outputs are, barring overflow: one pass does both.)"""
    total = 0.0
    for d, y in zip(douts, outputs):
        # |d| . |y| by a dot product, which neither warns on overflow nor needs a reduction
        total += float(np.dot(_flat_abs64(d), _flat_abs64(y)))
    if not math.isfinite(total):
        found = nonfinite_output(outputs)
        if found is not None:
            raise Stop(found)
    return total


def _flat_abs64(a: np.ndarray) -> np.ndarray:
    return np.abs(a).reshape(-1).astype(np.float64, copy=False)


def nonfinite_output(outputs: Sequence[np.ndarray], what: str = "forward output") -> Violation | None:
    """A NaN or inf in any output: the check cannot go on (a :class:`Stop` for the caller)."""
    for j, y in enumerate(outputs):
        bad = _nonfinite(y)
        if bad is not None:
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            label = what if len(outputs) == 1 else f"{what} {j}"
            return Violation(
                ViolationKind.FORWARD_NONFINITE,
                f"{label} contains NaN or inf at {int(bad.sum())} of {y.size} entries "
                f"(first at index {first})",
            )
    return None


def dout_writes(before: Sequence[np.ndarray], after: Sequence[np.ndarray]) -> list[Violation]:
    """A backward that wrote into the upstream gradients it was handed."""
    found = []
    for j, (b, a) in enumerate(zip(before, after)):
        if not _same(b, a):
            label = "dout" if len(before) == 1 else f"dout{j + 1}"
            found.append(Violation(
                ViolationKind.DOUT_MUTATED,
                f"backward wrote into the upstream gradient {label}: {describe_mutation(b, a)}. "
                "Never modify dout in place (dx = dout.copy(), or dout.clone() in torch; "
                "dx[mask] = 0).",
            ))
    return found


def unrepeated_forward(first: Sequence[np.ndarray], second: Sequence[Any],
                       hint: str = "dropout_param['seed']") -> Violation | None:
    """Two forward calls on the same inputs that returned different values."""
    for j, (ya, yb) in enumerate(zip(first, second)):
        yb = np.asarray(yb)
        eps = float(np.finfo(ya.dtype).eps) if np.issubdtype(ya.dtype, np.floating) else 2.0**-52
        if not repeatable(ya, yb, eps):
            difference = max_difference(ya, yb) if ya.shape == yb.shape else float("nan")
            return Violation(
                ViolationKind.NONDETERMINISTIC_FORWARD,
                "forward is not deterministic: two calls with the same inputs returned "
                f"different values for output {j} (max difference {difference:.3g}). "
                f"Seed any randomness (e.g. {hint}) so that results repeat.",
            )
    return None


def doubles(g: np.ndarray, twice: np.ndarray | None, eps: float) -> bool:
    """Whether ``twice`` is ``2 * g``: backward(2 dout) of a backward linear in dout."""
    if twice is None or twice.shape != g.shape:
        return False
    return bool(np.array_equal(twice, g * 2)) or repeatable(g, twice / 2, eps)


def nonlinear_or_random(name: str, grad: np.ndarray, doubled: np.ndarray | None,
                        varies: bool) -> Violation:
    """The verdict on a gradient that ``backward(2 * dout)`` did not double."""
    if varies:
        return Violation(
            ViolationKind.NONDETERMINISTIC_BACKWARD,
            f"backward is not deterministic: two calls with the same dout and cache returned "
            f"different d{name}. Keep random state out of backward: reuse the mask stored in "
            "the cache.",
            name,
        )
    diff = max_difference(grad, doubled / 2) if doubled is not None else float("nan")
    size = float(np.max(np.abs(grad), initial=0.0))
    return Violation(
        ViolationKind.NONLINEAR_BACKWARD,
        f"backward is not linear in dout: backward(2 * dout) is not 2 * backward(dout) for "
        f"d{name} (max difference {diff:.3g} against entries up to {size:.3g}). Every gradient "
        "must be dout multiplied by something that depends only on the forward inputs.",
        name,
    )
