"""Naive against vectorized: two implementations of one classifier must agree.

The notebooks of assignment 1 compare ``svm_loss_naive`` with ``svm_loss_vectorized``
(and the softmax pair) on the same data; so does ``gradcheck check``, on generated cases
of every size it checks, besides checking each against the reference on its own. The
loss and ``dW`` of the two must agree within the tolerance a forward has.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from gradcheck.contract import user_traceback
from gradcheck.determinism import sample_cases
from gradcheck.forward import describe_difference
from gradcheck.options import CheckOptions
from gradcheck.outcome import Outcome
from gradcheck.specs import Case, get_spec

__all__ = ["check_agreement", "disagreement"]


def _call(fn: Callable[..., Any], case: Case) -> tuple[np.ndarray, np.ndarray] | str:
    """``(loss, dW)`` as float64 arrays, or why there are none."""
    name = getattr(fn, "__name__", "the function")
    try:
        result = fn(*copy.deepcopy(case.args))
    except (Exception, SystemExit) as exc:
        return f"{name} raised {type(exc).__name__}: {exc}\n{user_traceback(exc)}"
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        return f"{name} must return (loss, dW); it returned {type(result).__name__}"
    try:
        loss, dW = (np.real(np.asarray(r, dtype=np.complex128)) for r in result)
    except (TypeError, ValueError):
        return f"{name} returned (loss, dW) that are not numbers"
    return loss, dW


def disagreement(first: Callable[..., Any], second: Callable[..., Any], case: Case) -> tuple[str, str]:
    """``(what, message)``: ``what`` is ``""`` when both agree on ``case``, else ``"loss"``,
    ``"W"`` (their dW) or ``"error"``."""
    names = [getattr(f, "__name__", "?") for f in (first, second)]
    a, b = _call(first, case), _call(second, case)
    if isinstance(a, str) or isinstance(b, str):
        return "error", f"not compared: {a if isinstance(a, str) else b}"
    if a[0].size != 1 or b[0].size != 1:
        return "loss", f"the losses are not single numbers: shapes {a[0].shape} and {b[0].shape}"
    differs = describe_difference(a[0].reshape(()), b[0].reshape(()))
    if differs:
        return "loss", (f"the loss of {names[0]} is {float(a[0]):.8g}, of {names[1]} "
                        f"{float(b[0]):.8g}")
    if a[1].shape != b[1].shape:
        return "W", f"dW of {names[0]} has shape {a[1].shape}, of {names[1]} {b[1].shape}"
    differs = describe_difference(a[1], b[1])
    if differs:
        return "W", f"dW of {names[0]} {differs.replace('the reference', names[1])}"
    return "", ""


def check_agreement(module: Any, first: str, second: str, options: CheckOptions | None = None,
                    **overrides: Any) -> Outcome:
    """Compare ``module.first`` with ``module.second`` (a classifier's naive and vectorized
    forms) on ``options.examples`` generated cases of the first one's spec."""
    opts = CheckOptions.build(options, **overrides)
    started = time.monotonic()
    outcome = Outcome(spec=f"{first} vs {second}", functions=(first, second), kind="agreement")
    outcome.gradients = {"W": "ok"}
    cases = sample_cases(get_spec(first), opts.seed, np.dtype(opts.dtype), count=opts.examples)
    for case in sorted(cases, key=lambda c: sum(a.size for a in c.args[:2])):
        what, message = disagreement(getattr(module, first), getattr(module, second), case)
        outcome.n_cases += 1
        if what:
            outcome.failing_case = case.describe()
            outcome.forward_message = message
            if what == "W":
                outcome.gradients["W"] = "FAILED"
                outcome.report_text = f"  {message}"
            else:
                outcome.forward = "FAILED"
                outcome.gradients["W"] = "-"
            break
    outcome.seconds = time.monotonic() - started
    return outcome
