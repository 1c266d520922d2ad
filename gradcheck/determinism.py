"""Is the layer deterministic? Asked once a layer has failed, so that the verdict says so.

A layer that draws random numbers it does not seed (a dropout mask redrawn in backward)
fails in whatever way the draws fall: on the one-entry case a failure shrinks to, a fresh
mask agrees with the forward's half of the time, so the contract checks of that case may
see nothing, a gradient may or may not differ, and a re-check may or may not reproduce
the failure. What does not depend on luck is asking directly, on cases large enough that
chance agreement is out of the question: the same inputs, fresh copies, several calls of
forward and backward with the same upstream gradient, and every result compared with the
first.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from gradcheck.contract import repeatable
from gradcheck.report import Report
from gradcheck.search import search_cases
from gradcheck.specs import Case, Spec

__all__ = ["case_size", "explain_nondeterminism", "find_nondeterminism", "sample_cases"]

SAMPLES = 12
REPEATS = 3


def sample_cases(spec: Spec, seed: int, dtype: Any, count: int = SAMPLES) -> list[Case]:
    """``count`` generated cases of the CS231n geometry (fewer if hypothesis cannot draw
    that many), largest first; the same ones for the same seed."""
    found: list[Case] = []
    # Whatever stops hypothesis early (a strategy it cannot satisfy): what was drawn is enough.
    search_cases(spec.cases(dtype=np.dtype(dtype), general=False), found.append, examples=count,
                 seed=seed, shrink=False, explicit=False, settled=lambda: True)
    return sorted(found, key=case_size, reverse=True)


def case_size(case: Case) -> int:
    """The number of array entries in a case."""
    return sum(a.size for a in case.args if isinstance(a, np.ndarray))


def _arrays(value: Any) -> list[np.ndarray]:
    """Every array in a (nested) result, in order; anything else is left out."""
    if isinstance(value, (tuple, list)):
        return [a for v in value for a in _arrays(v)]
    if isinstance(value, (np.ndarray, np.number, float, int)) and not isinstance(value, bool):
        return [np.asarray(value)]
    return []


def _call(spec: Spec, forward: Callable[..., Any], backward: Callable[..., Any] | None,
          case: Case) -> list[tuple[str, np.ndarray]]:
    """Labelled results of one forward (and backward, with a fixed dout) on fresh copies."""
    result = forward(*copy.deepcopy(case.args))
    if spec.kind == "loss" or backward is None:
        values = _arrays(result)
        return [("loss" if i == 0 else "gradient", v) for i, v in enumerate(values)]
    outputs = _arrays(tuple(result[:-1]))
    dout_rng = np.random.default_rng(0)
    douts = [dout_rng.standard_normal(y.shape).astype(y.dtype if np.issubdtype(y.dtype, np.floating)
                                                       else np.float64) for y in outputs]
    grads = _arrays(backward(*douts, result[-1]))
    names = [f"d{n}" for n in spec.wrt] if len(grads) == len(spec.wrt) else ["a gradient"] * len(grads)
    return [*(("forward output", y) for y in outputs), *zip(names, grads)]


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape:
        return False
    if np.issubdtype(a.dtype, np.inexact):
        eps = float(np.finfo(np.real(a).dtype).eps)
        return repeatable(a, b, eps)
    return bool(np.array_equal(a, b))


def _differs(spec: Spec, forward: Callable[..., Any], backward: Callable[..., Any] | None,
             case: Case, repeats: int) -> str | None:
    try:
        first = _call(spec, forward, backward, case)
        for _ in range(repeats):
            again = _call(spec, forward, backward, case)
            if len(again) != len(first):
                return "results of a different structure"
            for (label, a), (_, b) in zip(first, again):
                if not _same(a, b):
                    return label
    except (Exception, SystemExit):
        return None  # a layer that cannot run this case tells nothing about determinism
    return None


def find_nondeterminism(
    spec: Spec, forward: Callable[..., Any], backward: Callable[..., Any] | None,
    cases: Iterable[Case], repeats: int = REPEATS,
) -> str | None:
    """A sentence for the first case on which repeated calls with the same inputs differ."""
    for case in cases:
        what = _differs(spec, forward, backward, case, repeats)
        if what is not None:
            return (f"calls with the same inputs returned different values ({what}; case "
                    f"{case.describe()}): your layer is not deterministic. Seed any randomness "
                    "and draw it in forward only (backward reuses the mask in the cache), and "
                    "keep no state between calls.")
    return None


def explain_nondeterminism(
    spec: Spec, forward: Callable[..., Any], backward: Callable[..., Any] | None, case: Case,
    report: Report | None, samples: Iterable[Case],
) -> str | None:
    """Whether a layer that failed on ``case`` is nondeterministic: ``None`` when no call
    (on ``case``, then on ``samples``) shows it, ``""`` when ``report`` says so already,
    else a sentence for the verdict."""
    if report is not None and any(v.kind.is_nondeterminism for v in report.violations):
        return ""
    return find_nondeterminism(spec, forward, backward, [case, *samples])
