"""Looking at the forward before estimating: which numeric method, how much round-off, and
the joint-direction verdict. Each function returns what it found; none keeps state."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from gradcheck import numeric as num
from gradcheck.adapters import Problem
from gradcheck.complex_safety import probe_complex_safety
from gradcheck.diagnose import diagnose_overlap
from gradcheck.draws import Draws, directions
from gradcheck.report import DirectionalCheck

__all__ = ["MethodChoice", "choose_method", "joint_verdict", "overlap_diagnosis"]



class MethodChoice(NamedTuple):
    """The numeric method for a problem and the forward's measured round-off."""

    method: str
    note: str  # why (complex step unusable, or a kink on the probe direction)
    noise: float  # absolute round-off of one evaluation of L
    noise_rel: float  # the same relative to L's scale; sets step sizes
    warning: str  # a round-off larger than the dtype implies, said in the report


def choose_method(problem: Problem, requested: str, rng: Draws) -> MethodChoice:
    """Probe complex-step safety (for ``auto``/``complex``) and measure round-off.

    Raises ``ValueError`` when ``complex`` was asked for and the forward is not safe.
    """
    p = problem
    way = directions(rng, p.base)
    p.objective(p.base)  # one float64 evaluation tells the precision the numerics work at
    out_eps = p.numeric_out_eps
    floor = 4 * out_eps * p.scale
    noise_rel = max(num.EPS, 4 * out_eps)
    method, note = requested, ""
    slope: float | None = None  # exact (complex step) or none
    if requested in ("auto", "complex"):
        probe = probe_complex_safety(p.objective, p.base, way, noise=floor, noise_rel=noise_rel)
        if probe.complex_safe:
            method, note = "complex", probe.reason
            # On a kink the complex step takes one branch and symmetric differences
            # average both: comparing them would read the kink as noise.
            slope = None if probe.reason else probe.complex_value
        else:
            if requested == "complex":
                raise ValueError(
                    "method='complex' cannot be used: the forward is not complex-step "
                    f"safe ({probe.reason}); use method='auto' or 'central'"
                )
            method, note = "central", f"complex step not usable: {probe.reason}"
    noise = max(floor, num.measure_noise(p.objective, p.base, way, slope=slope), 1e-300)
    # All outputs zero (everything masked): no scale to be relative to.
    relative = max(num.EPS, noise / p.scale) if p.scale > 0 else noise_rel
    nondeterministic = any(v.kind.is_nondeterminism for v in p.violations)
    warning = ""
    if relative > 64 * out_eps and relative > 1e-12 and not nondeterministic:
        warning = (
            f"the forward's round-off is {relative:.1e} of its output scale, more than its "
            "dtype implies (does it compute in float32 internally?); steps and tolerances "
            "were widened to match"
        )
    return MethodChoice(method, note, noise, relative, warning)


# The joint direction's step: the power of two nearest cbrt(eps) (6.1e-6), which balances
# truncation and round-off for central differences; a power of two is exact to scale by.
JOINT_STEP = 2.0 ** round(np.log2(np.cbrt(num.EPS)))


def joint_verdict(problem: Problem, rng: Draws, rtol: float) -> DirectionalCheck:
    """One random direction through every input at once, by central differences.

    Two forward evaluations, no question of complex-step safety: the analytic
    ``sum_i <grad_i, v_i>`` against ``(L(x + h v) - L(x - h v)) / 2h``. Every gradient
    must be present.
    """
    p = problem
    h = JOINT_STEP
    way = directions(rng, p.base, step=h)  # the step h v itself
    grads = [g for g in p.analytic if g is not None]
    analytic = float(sum(np.vdot(g, d) for g, d in zip(grads, way))) / h
    plus = float(np.real(p.objective([b + d for b, d in zip(p.base, way)])))
    minus = float(np.real(p.objective([b - d for b, d in zip(p.base, way)])))
    numeric = (plus - minus) / (2 * h)
    out_eps = p.numeric_out_eps
    floor = 8 * out_eps * p.scale / h
    difference = abs(analytic - numeric)
    tol = rtol * abs(numeric) + floor
    if not difference <= tol:
        # Terms that cancel in the sum leave round-off of the size of the terms, not of
        # the sum: the tolerance grows with their spread (one more pass, only here).
        spread = float(np.sqrt(sum(np.vdot(t, t) for t in (np.multiply(g, d, dtype=np.float64)
                                                            for g, d in zip(grads, way)))))
        tol += rtol * spread / h
    return DirectionalCheck(analytic, numeric, difference, tol, bool(difference <= tol))


def overlap_diagnosis(problem: Problem, i: int, name: str, wrong: npt.NDArray[np.bool_],
                      complex_step: bool) -> str | None:
    """Count the outputs a few wrong and a few right entries of input ``i`` reach (one
    evaluation each) and see whether only the entries feeding several outputs are wrong."""
    p = problem
    assert p.evaluate is not None
    picked = [np.flatnonzero(wrong)[:6], np.flatnonzero(~wrong)[:6]]
    counts: list[list[int]] = [[], []]
    work = [b.astype(np.complex128) if complex_step else b.copy() for b in p.base]
    reference = None if complex_step else p.evaluate(work)
    flat = work[i].reshape(-1)
    for side, indices in enumerate(picked):
        # A complex step leaves unreached outputs exactly real; a small real step
        # leaves them bit-for-bit unchanged.
        steps = (1j * num.COMPLEX_STEP if complex_step
                 else 1e-4 * np.maximum(1.0, np.abs(flat[indices])))
        for outputs in num.perturbed(p.evaluate, work, i, indices, steps):
            changed = ([np.imag(y) != 0 for y in outputs] if reference is None
                       else [y != y0 for y, y0 in zip(outputs, reference)])
            counts[side].append(int(sum(np.count_nonzero(c) for c in changed)))
    return diagnose_overlap(name, counts[0], counts[1])
