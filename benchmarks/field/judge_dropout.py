"""Dropout: the mask is the student's, so train mode is judged by its pattern and statistics.

Train mode: every output entry must be 0 or x * c for one constant c. The convention is
"keep" when c = 1/p and the kept fraction is plausible for a keep probability p (within 5
binomial standard deviations), "drop" when c = 1/(1-p) and the kept fraction is plausible for
1-p, else "neither" (wrong). The backward must be dout * (out / x) on the kept entries and 0
elsewhere. Test mode: out = x and dx = dout.
"""

from __future__ import annotations

import copy
import inspect
import re
from typing import Any

import numpy as np

from benchmarks.field.cases import Case
from benchmarks.field.judge import (
    FORWARD_RTOL,
    GRAD_RTOL,
    CaseResult,
    Unimplemented,
    _mutated,
    _split_forward,
    _split_grads,
    call,
    compare,
    exc_text,
)

_DOC_PATTERNS = (
    ("drop", r"drop each (neuron|unit|activation)s?( output)? with probability p"),
    ("keep", r"keep each (neuron|unit|activation)s?( output)? with probability p"),
    ("keep", r"p:? (is )?(the )?probability (of|for) keeping"),
    ("drop", r"p:? (is )?(the )?probability (of|for) dropping"),
)


def docstring_convention(fn: Any) -> str:
    """What the student's dropout_forward docstring (or its source) says p means."""
    texts = [fn.__doc__ or ""]
    try:
        texts.append(inspect.getsource(fn))
    except (OSError, TypeError):
        pass
    for text in texts:
        flat = re.sub(r"[\s#]+", " ", text.lower())
        for convention, pattern in _DOC_PATTERNS:
            if re.search(pattern, flat):
                return convention
    return "unstated"


def _plausible(kept: int, n: int, q: float) -> bool:
    return abs(kept - n * q) <= 5.0 * np.sqrt(n * q * (1.0 - q))


def classify(x: np.ndarray, out: np.ndarray, p: float) -> tuple[str, np.ndarray, str]:
    """(convention, per-entry factor out/x (0 where dropped), note)."""
    kept = out != 0
    factor = np.zeros_like(x)
    factor[kept] = out[kept] / x[kept]
    if not kept.any():
        return "neither", factor, "every output is 0"
    c = float(np.median(factor[kept]))
    if not np.allclose(factor[kept], c, rtol=1e-9, atol=0.0):
        return "neither", factor, "kept outputs are not x times one constant"
    frac = int(kept.sum())
    note = f"scale {c:.6g}, kept {frac}/{x.size} with p={p}"
    if np.isclose(c, 1.0 / p, rtol=1e-9) and _plausible(frac, x.size, p):
        return "keep", factor, note
    if np.isclose(c, 1.0 / (1.0 - p), rtol=1e-9) and _plausible(frac, x.size, 1.0 - p):
        return "drop", factor, note
    return "neither", factor, note


def run_dropout_case(fwd: Any, bwd: Any, case: Case, rng: np.random.Generator) -> CaseResult:
    res = CaseResult()
    x, param = case.args
    args = copy.deepcopy(case.args)
    try:
        (out,), cache = _split_forward(call(fwd, *args), 1)
        out = np.asarray(out, dtype=np.float64)
    except Unimplemented:
        raise
    except Exception as exc:
        res.forward = "crash"
        res.notes.append(f"forward: {exc_text(exc)}")
        return res
    if _mutated(args, case.args):
        res.info.add("mutates_input")
    if out.shape != x.shape:
        res.forward = "shape"
        return res
    if case.mode == "test":
        res.forward, res.forward_err = compare(out, x, FORWARD_RTOL)
        factor = np.ones_like(x)
    else:
        res.convention, factor, note = classify(x, out, float(param["p"]))
        res.forward = "ok" if res.convention != "neither" else "wrong"
        res.notes.append(note)
    dout = rng.standard_normal(x.shape)
    given = dout.copy()
    try:
        (dx,) = _split_grads(call(bwd, given, cache), ("dx",))
    except Unimplemented:
        raise
    except Exception as exc:
        res.grads["dx"] = "crash"
        res.notes.append(f"backward: {exc_text(exc)}")
        return res
    if not np.array_equal(given, dout):
        res.info.add("mutates_dout")
    res.grads["dx"], res.grad_errs["dx"] = compare(dx, dout * factor, GRAD_RTOL)
    return res
