"""Numerical derivatives of a scalar objective.

Every estimator here works on an *objective*: a callable ``f(values)`` that takes one
array per differentiable input and returns the scalar ``L``. The estimators perturb
private working copies and restore every entry exactly, so the base point never moves.

Notes
-----
Complex step: for ``f`` analytic in each input, ``Im f(x + i h e_k) / h`` equals
``df/dx_k`` up to ``O(h^2)``. There is no subtraction, hence no cancellation, and ``h``
can be tiny (``1e-20``): the estimate is accurate to machine precision. Code that drops
the imaginary part (``np.abs``, ``.real``, a float output buffer) breaks it, which
:func:`gradcheck.complex_safety.probe_complex_safety` detects.

Central differences ``(f(x+h) - f(x-h)) / 2h`` have truncation error ``h^2 f'''/6`` and
round-off ``~ sigma / h`` where ``sigma`` is the noise of one evaluation of ``f``;
``h = cbrt(eps) * max(1, |x_k|)`` balances the two. Richardson extrapolation combines
central differences at ``h`` and ``h/2`` into a fourth-order estimate
``(4 D(h/2) - D(h)) / 3`` and uses ``|D(h/2) - D(h)| / 3`` (the truncation error of the
second-order estimate, a pessimistic bar for the extrapolated value) plus round-off as
its error bar; ``h = eps ** (1/4) * max(1, |x_k|)`` keeps that bar near ``sqrt(eps)``
relative while the extrapolated value is accurate to about ``1e-12``.
Steps are made exactly representable (``h = (x + h) - x``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from gradcheck.progress import advance

__all__ = [
    "COMPLEX_STEP",
    "EPS",
    "METHODS",
    "Estimate",
    "complex_point",
    "coordinate_derivatives",
    "directional_derivative",
    "measure_noise",
    "one_sided_ranges",
    "one_sided_slopes",
]

Objective = Callable[[Sequence[np.ndarray]], complex]
FloatArray = npt.NDArray[np.float64]

EPS = float(np.finfo(np.float64).eps)
COMPLEX_STEP = 1e-20
METHODS = ("auto", "complex", "central", "richardson", "forward")


class Estimate(NamedTuple):
    """Derivative estimates with an absolute error bar for each."""

    value: FloatArray
    error: FloatArray


def _central_step(x: FloatArray, rel: float) -> FloatArray:
    """Steps ``rel * max(1, |x|)`` rounded so that ``x + h`` and ``x - h`` are exact."""
    h = rel * np.maximum(1.0, np.abs(x))
    return (x + h) - x


def _real(value: complex) -> float:
    return float(np.real(value))


def _step_scale(noise_rel: float, power: float) -> float:
    """Relative step ``eps_eff ** power`` for an objective of relative noise ``noise_rel``."""
    return float(max(noise_rel, EPS) ** power)


BATCH_BYTES = 8 << 20  # perturbed points per batch, in bytes of their arrays


def perturbed(f: Callable[[Sequence[Any]], Any], work: list[Any], which: int,
              indices: npt.NDArray[np.intp], steps: Any,
              advance: Callable[[], None] | None = None) -> list[Any]:
    """``f`` with ``work[which].flat[k]`` moved by ``steps[j]`` (a scalar, or one per
    ``k = indices[j]``), one coordinate at a time; ``work`` is left as it was. A function
    with a ``batch`` method (a layer that runs in another process) gets the points in
    batches, one message each, in the same order. ``advance`` is called per coordinate."""
    flat = work[which].reshape(-1)
    steps = np.broadcast_to(np.asarray(steps), (len(indices),))
    out: list[Any] = []
    batch = getattr(f, "batch", None)
    size = max(1, BATCH_BYTES // max(1, sum(w.nbytes for w in work))) if batch is not None else 1
    for start in range(0, len(indices), size):
        points = []
        for j in range(start, min(start + size, len(indices))):
            k = indices[j]
            old = flat[k]
            flat[k] = old + steps[j]
            if batch is None:
                out.append(f(work))
            else:
                points.append([w.copy() for w in work])
            flat[k] = old
        if batch is not None:
            out += batch(points)
        for _ in range(start, min(start + size, len(indices))):
            if advance is not None:
                advance()
    return out


def _stepped(f: Objective, work: list[Any], which: int, indices: npt.NDArray[np.intp],
             steps: Any, advance: Callable[[], None] | None = None) -> npt.NDArray[np.complex128]:
    """The objective at each coordinate's step (see :func:`perturbed`)."""
    return np.array(perturbed(f, work, which, indices, steps, advance), dtype=np.complex128)


def coordinate_derivatives(
    f: Objective,
    base: Sequence[FloatArray],
    which: int,
    indices: npt.NDArray[np.intp],
    method: str,
    *,
    noise: float = 0.0,
    noise_rel: float = EPS,
) -> Estimate:
    """Estimate ``dL/d base[which].flat[k]`` for every ``k`` in ``indices``.

    Parameters
    ----------
    f : callable
        The objective; called with one array per input (or, when it has a ``batch``
        method, with many points at once: see :func:`perturbed`).
    base : sequence of float64 arrays
        The point of evaluation. Never modified.
    which : int
        Which input to differentiate.
    indices : array of int
        Flat indices of the coordinates to estimate.
    method : {"complex", "central", "richardson", "forward"}
    noise : float
        Absolute noise of one evaluation of ``f`` (enters the error bars).
    noise_rel : float
        ``noise`` relative to the magnitude of ``f``'s terms; sets the step sizes.
    """
    if method == "complex":
        work = [np.asarray(b, dtype=np.complex128).copy() for b in base]
        values = np.imag(_stepped(f, work, which, indices, 1j * COMPLEX_STEP, advance)) / COMPLEX_STEP
        return Estimate(values, np.zeros(len(indices)))
    estimator = _REAL_ESTIMATORS.get(method)
    if estimator is None:
        raise ValueError(f"method={method!r} is not one of complex, central, richardson, forward")
    work = [b.copy() for b in base]
    return estimator(f, work, which, indices, noise, noise_rel)


def _central_coordinates(f: Objective, work: list[FloatArray], which: int,
                         indices: npt.NDArray[np.intp], noise: float, noise_rel: float) -> Estimate:
    h = _central_step(work[which].reshape(-1)[indices], _step_scale(noise_rel, 1 / 3))
    fp = _stepped(f, work, which, indices, h)
    fm = _stepped(f, work, which, indices, -h, advance)
    return Estimate((fp.real - fm.real) / (2 * h), noise / h)


def _richardson_coordinates(f: Objective, work: list[FloatArray], which: int,
                            indices: npt.NDArray[np.intp], noise: float, noise_rel: float) -> Estimate:
    h = _central_step(work[which].reshape(-1)[indices], _step_scale(noise_rel, 1 / 4))
    d = []
    for step, tick in ((h, None), (h / 2, advance)):
        fp = _stepped(f, work, which, indices, step)
        fm = _stepped(f, work, which, indices, -step, tick)
        d.append((fp.real - fm.real) / (2 * step))
    return Estimate((4 * d[1] - d[0]) / 3, np.abs(d[1] - d[0]) / 3 + 3 * noise / h)


def _forward_coordinates(f: Objective, work: list[FloatArray], which: int,
                         indices: npt.NDArray[np.intp], noise: float, noise_rel: float) -> Estimate:
    f0 = _real(f(work))
    h = _central_step(work[which].reshape(-1)[indices], _step_scale(noise_rel, 1 / 2))
    return Estimate((_stepped(f, work, which, indices, h, advance).real - f0) / h, 2 * noise / h)


_REAL_ESTIMATORS = {
    "central": _central_coordinates,
    "richardson": _richardson_coordinates,
    "forward": _forward_coordinates,
}


def along(f: Objective, base: Sequence[FloatArray], direction: Sequence[FloatArray | None],
          steps: Sequence[float]) -> list[float]:
    """``L(base + t * direction)`` for each ``t`` in ``steps`` (real part), in one batch
    when ``f`` has a ``batch`` method (see :func:`perturbed`)."""
    points = [[b if d is None else b + t * d for b, d in zip(base, direction)] for t in steps]
    return [_real(v) for v in evaluate_all(f, points)]


def evaluate_all(f: Callable[[Sequence[Any]], Any], points: list[Any]) -> list[Any]:
    """``f`` at each of ``points``, in order: in one batch when ``f`` has a ``batch`` method
    (a layer in the worker process), else one call each."""
    batch = getattr(f, "batch", None)
    return list(batch(points)) if batch is not None else [f(p) for p in points]


def directional_derivative(
    f: Objective,
    base: Sequence[FloatArray],
    direction: Sequence[FloatArray | None],
    method: str,
    *,
    noise: float = 0.0,
    noise_rel: float = EPS,
) -> tuple[float, float]:
    """Estimate ``d/dt L(base + t * direction)`` at ``t = 0``; returns ``(value, error)``.

    ``direction`` holds one array per input, or ``None`` for inputs that stay fixed. It is
    expected to be scaled like the inputs (entries of size about ``max(1, |x|)``), so the
    relative step is a plain number.
    """
    if method == "complex":
        return float(np.imag(f(complex_point(base, direction))) / COMPLEX_STEP), 0.0

    if method == "central":
        h = _step_scale(noise_rel, 1 / 3)
        plus, minus = along(f, base, direction, (h, -h))
        return (plus - minus) / (2 * h), noise / h
    if method == "richardson":
        h = _step_scale(noise_rel, 1 / 4)
        plus, minus, half_plus, half_minus = along(f, base, direction, (h, -h, h / 2, -h / 2))
        d1 = (plus - minus) / (2 * h)
        d2 = (half_plus - half_minus) / h
        return (4 * d2 - d1) / 3, abs(d2 - d1) / 3 + 3 * noise / h
    if method == "forward":
        h = _step_scale(noise_rel, 1 / 2)
        plus, at_base = along(f, base, direction, (h, 0.0))
        return (plus - at_base) / h, 2 * noise / h
    raise ValueError(f"method={method!r} is not one of complex, central, richardson, forward")


def complex_point(base: Sequence[FloatArray], direction: Sequence[FloatArray | None]) -> list[np.ndarray]:
    """``base + i h direction``, complex in every input (fixed inputs too)."""
    return [b.astype(np.complex128) if d is None else b + 1j * COMPLEX_STEP * d
            for b, d in zip(base, direction)]


def one_sided_slopes(
    f: Objective,
    base: Sequence[FloatArray],
    which: int,
    indices: npt.NDArray[np.intp],
    *,
    rel_step: float = 1e-6,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Left and right difference quotients at each coordinate, and the step used.

    At a kink (``relu`` at 0, a tie in a max) the two differ; elsewhere both approximate
    the derivative to ``O(h)``.
    """
    work = [b.copy() for b in base]
    flat = work[which].reshape(-1)
    h = _central_step(flat[indices], rel_step)
    f0 = _real(f(work))
    left = np.zeros(len(indices))
    right = np.zeros(len(indices))
    for j, k in enumerate(indices):
        old = flat[k]
        flat[k] = old + h[j]
        right[j] = (_real(f(work)) - f0) / h[j]
        flat[k] = old - h[j]
        left[j] = (f0 - _real(f(work))) / h[j]
        flat[k] = old
    return left, right, h


def one_sided_ranges(
    evaluate: Callable[[Sequence[np.ndarray]], list[np.ndarray]],
    douts: Sequence[np.ndarray],
    base: Sequence[FloatArray],
    which: int,
    indices: npt.NDArray[np.intp],
    *,
    rel_step: float = 1e-6,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Per coordinate: how far the one-sided slopes of the outputs spread, and the range
    of derivatives they admit; returns ``(kink_size, low, high, step)``.

    At a point where several outputs have a kink in the same coordinate (an input tied for
    the maximum of several overlapping pooling windows), each output may use either of its
    one-sided slopes: any ``sum_o dout_o * s_o`` with each ``s_o`` between its output's two
    slopes is a valid derivative. ``low``/``high`` bound those sums; ``kink_size`` sums,
    over outputs, the gap between the two sides (zero where every output is smooth).
    """
    work = [b.copy() for b in base]
    flat = work[which].reshape(-1)
    h = _central_step(flat[indices], rel_step)
    at_base = [np.real(y).astype(np.float64) for y in evaluate(work)]
    size = np.zeros(len(indices))
    low = np.zeros(len(indices))
    high = np.zeros(len(indices))
    every_plus = perturbed(evaluate, work, which, indices, h)
    every_minus = perturbed(evaluate, work, which, indices, -h)
    for j, (plus, minus) in enumerate(zip(every_plus, every_minus)):
        for d, y0, yp, ym in zip(douts, at_base, plus, minus):
            right = d * (np.real(yp) - y0) / h[j]
            left = d * (y0 - np.real(ym)) / h[j]
            size[j] += float(np.sum(np.abs(right - left)))
            low[j] += float(np.sum(np.minimum(left, right)))
            high[j] += float(np.sum(np.maximum(left, right)))
    return size, low, high, h


def measure_noise(
    f: Objective,
    base: Sequence[FloatArray],
    direction: Sequence[FloatArray | None],
    *,
    rel_step: float = 1e-6,
    slope: float | None = None,
) -> float:
    """Absolute evaluation noise of ``f``, read off one-sided third differences.

    ``f(x+4t) - 3 f(x+3t) + 3 f(x+2t) - f(x+t)`` is ``t**3`` times the third derivative
    for a smooth ``f``; at ``t = 1e-6`` that is far below float64 round-off, so what is
    left is the round-off of the evaluations themselves (standard deviation
    ``sqrt(20) sigma``). The stencils sit on either side of the base point, never across
    it, so a kink exactly at the base point (a ReLU at 0, a tie in a max) does not pollute
    the measurement. A layer that computes in float32 internally shows float32-sized noise
    here, which widens steps and error bars.

    A staircase (a float32 forward) can make third differences vanish by chance, so
    symmetric differences at two tiny steps, ``t / 10`` and ``t``, are read as well and the
    larger estimate wins. With ``slope``, an exact directional derivative (from a complex
    step), each is compared with it; without, with each other (the one at ``t`` is ten
    times the one at ``t / 10`` up to round-off). A slope from differences at larger steps
    (Richardson extrapolation) is not good enough: across a kink a few steps away it is
    off by the kink, and the difference would be read as round-off.
    """

    ts = [sign * j * rel_step for sign in (1.0, -1.0) for j in (1, 2, 3, 4)]
    symmetric = (rel_step / 10, -rel_step / 10, rel_step, -rel_step)
    values = along(f, base, direction, [*ts, *symmetric])
    worst = 0.0
    for v in (values[0:4], values[4:8]):
        worst = max(worst, abs(v[3] - 3 * v[2] + 3 * v[1] - v[0]))
    estimate = 2 * worst / np.sqrt(20.0)
    # half symmetric differences: t * slope plus round-off of standard deviation sigma / sqrt(2)
    near, far = (values[8] - values[9]) / 2, (values[10] - values[11]) / 2
    if slope is not None:
        for t, half in zip(symmetric[::2], (near, far)):
            estimate = max(estimate, abs(half - t * slope) * np.sqrt(2.0))
    else:
        estimate = max(estimate, abs(far - 10 * near) * np.sqrt(2.0 / 101.0))
    return float(estimate)
