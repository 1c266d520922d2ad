"""Whether complex-step derivatives of a forward can be trusted.

The complex step (see :mod:`gradcheck.numeric`) is exact for code that is analytic in its
inputs, and silently wrong for code that drops the imaginary part (``np.abs``, ``.real``,
``astype(float)``, writing into a float buffer). One probe along a random direction tells
the two apart: the complex-step derivative against a Richardson estimate of the same
directional derivative.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from gradcheck.numeric import (
    COMPLEX_STEP,
    Estimate,
    FloatArray,
    Objective,
    along,
    complex_point,
    directional_derivative,
)

__all__ = ["SafetyProbe", "probe_complex_safety"]


class SafetyProbe(NamedTuple):
    """Outcome of the complex-step safety probe."""

    complex_safe: bool
    reason: str
    complex_value: float
    richardson: Estimate


def probe_complex_safety(
    f: Objective,
    base: Sequence[FloatArray],
    direction: Sequence[FloatArray | None],
    *,
    noise: float,
    noise_rel: float,
) -> SafetyProbe:
    """Decide whether complex-step derivatives of ``f`` can be trusted.

    One complex evaluation along ``direction`` is compared with a Richardson estimate along
    the same direction. Code that drops the imaginary part (``np.abs``, ``.real``,
    ``astype(float)``, writing into a float buffer) changes the complex-step value, emits a
    ``ComplexWarning`` or returns a real result; any of these marks ``f`` unsafe.
    """
    value, error = directional_derivative(f, base, direction, "richardson", noise=noise, noise_rel=noise_rel)
    rich = Estimate(np.array([value]), np.array([error]))
    estimate, refusal = _complex_directional(f, base, direction)
    if refusal:
        return SafetyProbe(False, refusal, estimate, rich)
    if not np.isfinite(estimate):
        return SafetyProbe(False, "complex-step derivative is not finite", estimate, rich)
    if abs(estimate - value) <= 1e-6 * (abs(value) + abs(estimate)) + 4 * error:
        return SafetyProbe(True, "", estimate, rich)
    if _on_kink(f, base, direction, noise):
        # Finite differences straddle a kink here, so they cannot judge the complex step;
        # the structural checks above passed, and every mismatch is re-checked later.
        return SafetyProbe(True, "inputs sit on a kink; safety checked structurally", estimate, rich)
    return SafetyProbe(
        False,
        "complex-step and finite-difference derivatives disagree "
        f"({estimate:.6g} vs {value:.6g}): the forward drops imaginary parts "
        "(np.abs, .real, a float output buffer, astype(float))",
        estimate,
        rich,
    )


def _complex_directional(f: Objective, base: Sequence[FloatArray],
                         direction: Sequence[FloatArray | None]) -> tuple[float, str]:
    """The complex-step derivative along ``direction``, and why it cannot be used ("" when
    it can): the forward raised on complex input, warned that it discards imaginary parts,
    or returned a real result."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = f(complex_point(base, direction))
        except Exception as exc:  # student code may reject complex input in any way
            original = getattr(exc, "original", exc)
            return float("nan"), f"forward raised {type(original).__name__} on complex input: {original}"
    complex_warnings = [w for w in caught if "Complex" in type(w.message).__name__]
    if complex_warnings:
        return float("nan"), ("forward discards imaginary parts (ComplexWarning: "
                               f"{str(complex_warnings[0].message).strip()})")
    if not np.iscomplexobj(value):
        return float("nan"), "forward returns real outputs for complex inputs"
    return float(np.imag(value) / COMPLEX_STEP), ""


def _on_kink(
    f: Objective,
    base: Sequence[FloatArray],
    direction: Sequence[FloatArray | None],
    noise: float,
    rel_step: float = 1e-7,
) -> bool:
    """Whether the one-sided slopes of ``f`` along ``direction`` differ at the base point."""

    f0, plus, minus = along(f, base, direction, (0.0, rel_step, -rel_step))
    right = (plus - f0) / rel_step
    left = (f0 - minus) / rel_step
    return abs(right - left) > 1e-3 * (abs(right) + abs(left)) + 8 * noise / rel_step
