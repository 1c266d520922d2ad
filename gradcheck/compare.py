"""Tolerances and the entry-by-entry verdict.

An entry ``k`` of a gradient fails when

    |analytic_k - numeric_k| > atol + rtol * (|numeric_k| + scale) + error_k + 2 * noise

where ``scale`` is the root-mean-square size of the gradient array (so round-off on
near-zero entries of a large gradient is not a failure), ``error_k`` is the numeric
method's own error bar and ``noise`` the measured round-off of the analytic gradient.
``rtol`` follows the precision the layer really has: ``1e-7`` for float64, growing as
the cube root of the machine epsilon (about ``8e-5`` for float32).
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from gradcheck.kinds import Status
from gradcheck.numeric import EPS
from gradcheck.report import DirectionalCheck, GradientResult, Mismatch

__all__ = ["Comparison", "compare_direction", "compare_entries", "default_rtol", "rms", "summarise"]

MAX_LISTED = 8


@functools.lru_cache(maxsize=64)  # a handful of precisions (dtypes, measured round-off) recur
def default_rtol(precision: float) -> float:
    """Default relative tolerance for a gradient whose effective precision is ``precision``."""
    return float(1e-7 * np.cbrt(max(precision, EPS) / EPS))


def rms(values: npt.ArrayLike) -> float:
    arr = np.asarray(values, dtype=np.float64)
    return float(np.sqrt(np.mean(arr * arr))) if arr.size else 0.0


class Comparison(NamedTuple):
    """Entry-wise comparison over the checked coordinates (flat indices)."""

    indices: npt.NDArray[np.intp]
    analytic: npt.NDArray[np.float64]
    numeric: npt.NDArray[np.float64]
    difference: npt.NDArray[np.float64]
    tolerance: npt.NDArray[np.float64]

    @property
    def wrong(self) -> npt.NDArray[np.bool_]:
        return ~(self.difference <= self.tolerance)


def compare_entries(
    analytic_flat: npt.NDArray[np.float64],
    indices: npt.NDArray[np.intp],
    numeric: npt.NDArray[np.float64],
    error: npt.NDArray[np.float64],
    *,
    rtol: float,
    atol: float,
    scale: float,
    noise: float,
) -> Comparison:
    """Compare ``analytic_flat[indices]`` with ``numeric`` under the tolerance model."""
    a = analytic_flat[indices]
    diff = np.abs(a - numeric)
    tol = atol + rtol * (np.abs(numeric) + scale) + error + 2 * noise
    return Comparison(indices, a, numeric, diff, tol)


def compare_direction(
    analytic: npt.NDArray[np.float64],
    direction: npt.NDArray[np.float64],
    numeric: float,
    error: float,
    *,
    rtol: float,
    atol: float,
    noise: float,
) -> DirectionalCheck:
    """``<analytic, direction>`` against the numeric directional derivative."""
    terms = analytic * direction
    value = float(np.sum(terms))
    norm1 = float(np.sum(np.abs(direction)))
    norm2 = float(np.sqrt(np.sum(direction * direction)))
    tol = (
        atol * norm1
        + rtol * (abs(numeric) + float(np.sqrt(np.sum(terms * terms))))
        + error
        + 4 * noise * norm2
    )
    diff = abs(value - numeric)
    return DirectionalCheck(value, numeric, diff, tol, bool(diff <= tol))


def summarise(
    result: GradientResult,
    comparison: Comparison,
    wrong: npt.NDArray[np.bool_],
    kinks: npt.NDArray[np.bool_],
) -> None:
    """Fill ``result`` with the counts, worst errors and listed mismatches."""
    shape = result.shape
    c = comparison
    result.n_checked = len(c.indices)
    result.n_mismatched = int(np.count_nonzero(wrong))
    if len(c.indices):
        k = int(np.argmax(c.difference))
        result.max_abs_error = float(c.difference[k])
        result.worst_index = _unravel(int(c.indices[k]), shape)
        result.max_rel_error = float(np.max(c.difference / (np.abs(c.numeric) + result.scale + 1e-300)))
    order = np.argsort(-c.difference[wrong], kind="stable")[:MAX_LISTED]
    picked = np.flatnonzero(wrong)[order]
    result.mismatches = [
        Mismatch(
            _unravel(int(c.indices[j]), shape),
            float(c.analytic[j]),
            float(c.numeric[j]),
            float(c.difference[j]),
            float(c.tolerance[j]),
        )
        for j in picked
    ]
    result.kinks = [_unravel(int(c.indices[j]), shape) for j in np.flatnonzero(kinks)]
    if result.n_mismatched:
        result.status = Status.FAILED


def _unravel(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(flat, shape)) if shape else ()
