"""The spec for inverted dropout, and how its forward is judged without its random generator.

A dropout forward draws its own mask, so its output cannot be compared with a reference
entry by entry: in train mode every entry must be 0 or the kept value, and the number kept
must be plausible for the keep probability (a binomial tail). Course years differ on what
``p`` means (the probability of keeping a unit since 2018, of dropping it before): both are
conventions of the spec, told apart by the student's docstring.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Any

import numpy as np
from hypothesis import strategies as st

import reference_layers as ref
from gradcheck.specs._registry import Case, Convention, Spec, register
from gradcheck.strategies import array_shapes, batch_sizes, modes, seeds

__all__ = ["dropout_cases", "dropout_forward_check"]

KEEP_PROBABILITIES = (0.3, 0.5, 0.8, 1.0)
DROP_PROBABILITIES = (0.2, 0.5, 0.7)  # p = 1 (drop everything) divides by zero in x / (1 - p)


@st.composite
def dropout_cases(draw: st.DrawFn, dtype: Any = np.float64, general: bool = True,
                  probabilities: tuple[float, ...] = KEEP_PROBABILITIES) -> Case:
    """x (N, D) (the course's fully connected nets; ``general`` adds up to three more axes,
    as the docstring's "of any shape" allows), dropout_param with probability p, mode and
    a fixed seed. Half of the cases are large (N * D >= 1200): a keep rate that is off
    (a mask from ``randn``, or p taken for the drop probability) only shows statistically."""
    large = draw(st.booleans())
    n = draw(batch_sizes(20, 40) if large else batch_sizes(1, 4))
    if general:
        dims = draw(array_shapes(min_dims=2, max_dims=4, max_side=4))
    else:
        dims = (draw(st.integers(60, 80) if large else st.integers(1, 5)),)
    p = draw(st.sampled_from(probabilities))
    return _dropout_case(draw(seeds()), (n, *dims), p, draw(modes()), dtype)


def _dropout_case(seed: int, shape: tuple[int, ...], p: float, mode: str, dtype: Any) -> Case:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    param = {"p": p, "mode": mode, "seed": int(rng.integers(0, 2**31 - 1))}
    return Case((x, param), {"x": x.shape, "p": p, "mode": mode, "dtype": np.dtype(dtype).name})


def dropout_probes(dtype: Any) -> list[Case]:
    """Large train-mode cases (p = 0.5 means the same in every course year) and a test-mode one."""
    return [_dropout_case(0, (40, 60), 0.5, "train", dtype), _dropout_case(1, (3, 4), 0.5, "test", dtype)]


def _binomial_tail(k: int, n: int, p: float) -> float:
    """``P(K as far from n p as k, on k's side)`` for K ~ Binomial(n, p), exactly.

    ``bdtr``/``bdtrc`` are the functions ``scipy.stats.binom.cdf``/``sf`` evaluate,
    imported without scipy.stats itself (a second or two in every worker process).
    """
    from scipy.special import bdtr, bdtrc

    return float(bdtr(k, n, p) if k < n * p else bdtrc(k - 1, n, p))


def _entry(a: np.ndarray, index: tuple[int, ...]) -> str:
    return f"{float(a[index]):.8g}"


def dropout_forward_check(case: Case, outputs: list[Any], *, p_keeps: bool = True,
                          scale_rtol: float = 0.0) -> str | None:
    """Judge a candidate's dropout output without knowing its random generator.

    Test mode (and a keep probability of 1) must be the identity. In train mode every entry
    must be 0 (dropped) or ``x / p`` (kept and scaled: inverted dropout), and the number
    kept must be plausible for a keep probability p (a binomial tail below 1e-9 is a
    failure: that catches p used as the DROP probability and masks that never drop, on
    arrays large enough to tell). With ``p_keeps=False`` (the course's convention before
    2018: "We drop each neuron output with probability p") the keep probability is
    ``1 - p``. Returns a message for a wrong output, ``None`` for a plausible one.
    """
    x, param = case.args
    given, mode = float(param["p"]), param["mode"]
    keep = given if p_keeps else 1.0 - given
    # In the student's own terms: the keep probability, and the scale of a kept unit.
    rate = f"p = {given:g}" if p_keeps else f"1 - p = {keep:g} (p = {given:g} drops a unit)"
    scaled = "x / p" if p_keeps else "x / (1 - p)"
    out = np.asarray(outputs[0], dtype=np.float64)
    x64 = np.asarray(x, dtype=np.float64)
    # A few ulps of x / keep: in a numpy float64 layer a scale rounded to float32 (a mask
    # cast to float32, then divided by p) is judged wrong, as the field corpus' labels judge
    # it; ``scale_rtol`` admits it where the course's own idiom rounds so (torch: a boolean
    # mask divided by (1 - p) is float32 in the default dtype).
    rtol = max(64 * float(np.finfo(x.dtype).eps), scale_rtol)
    tol = rtol * np.maximum(np.abs(x64) / keep, 1e-30)
    if mode == "test" or keep == 1.0:
        wrong = ~(np.abs(out - x64) <= tol)
        if np.any(wrong):
            k = tuple(int(i) for i in np.argwhere(wrong)[0])
            why = "test mode" if mode == "test" else "a keep probability of 1"
            return (f"dropout in {why} must return x unchanged (inverted dropout scales at train "
                    f"time); out differs from x at {int(wrong.sum())} of {x.size} entries, e.g. index "
                    f"{k}: yours {_entry(out, k)}, x {_entry(x64, k)}")
        return None
    kept = np.abs(out - x64 / keep) <= tol
    dropped = np.abs(out) <= tol
    wrong = ~(kept | dropped)
    if np.any(wrong):
        k = tuple(int(i) for i in np.argwhere(wrong)[0])
        hint = ""
        if np.isclose(out[k], x64[k]):
            hint = f" It equals x: kept units must be scaled to {scaled} (inverted dropout)."
        elif np.isclose(out[k], x64[k] / (1 - keep)):
            hint = " It equals x divided by the DROP probability: scale by the keep probability."
        return (f"train-mode dropout output must be 0 (dropped) or {scaled} (kept; the keep "
                f"probability is {rate}) at every entry; {int(wrong.sum())} of {x.size} entries are "
                f"neither, e.g. index {k}: yours {_entry(out, k)}, {scaled} = "
                f"{_entry(x64 / keep, k)}.{hint}")
    n_kept = int(np.count_nonzero(kept & ~dropped))
    n = int(np.count_nonzero(~(kept & dropped)))  # entries where x = 0 say nothing
    if n and _binomial_tail(n_kept, n, keep) < 1e-9:
        return (f"train-mode dropout kept {n_kept} of {n} units, implausible for a keep "
                f"probability of {rate}")
    return None


def _drop_convention(spec: Spec) -> Spec:
    """Dropout with p the probability of DROPPING a unit (the course before 2018)."""
    return dataclasses.replace(
        spec, cases=partial(dropout_cases, probabilities=DROP_PROBABILITIES),
        forward_check=partial(dropout_forward_check, p_keeps=False))


DROPOUT_CONVENTIONS = (
    Convention("p is the probability of KEEPING a unit (the course since 2018)",
               r"keep each neuron output with probability p"),
    Convention("p is the probability of DROPPING a unit (the course up to 2017)",
               r"drop each neuron output with probability p", _drop_convention),
)

register(Spec(
    name="dropout", family="dropout", kind="layer",
    forward=ref.dropout_forward, backward=ref.dropout_backward, cases=dropout_cases,
    signature="dropout_forward(x, dropout_param) -> (out, cache); dropout_backward(dout, cache) -> dx",
    wrt=("x",),
    names=(("dropout_forward", "dropout_backward"),),
    description="inverted dropout, p = probability of keeping a unit, seeded mask",
    forward_check=dropout_forward_check, conventions=DROPOUT_CONVENTIONS, general=True,
    probes=dropout_probes,
))
