"""The public ``check_*`` and ``assert_*`` functions.

Each builds its :class:`~gradcheck.options.CheckOptions` once, reduces the calling
convention to a :class:`~gradcheck.adapters.Problem` (whose first call of the user's code
is made there) and hands it to :class:`~gradcheck.checker.Checker`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gradcheck.adapters import Problem
from gradcheck.checker import Checker
from gradcheck.draws import Draws, checker_rng
from gradcheck.layer_adapter import layer_problem
from gradcheck.loss_adapter import loss_problem
from gradcheck.options import CheckOptions
from gradcheck.report import Report, raise_or_warn

__all__ = [
    "assert_gradients",
    "assert_loss_gradients",
    "check_layer",
    "check_loss",
    "check_problem",
    "checker_rng",
]


def check_layer(
    forward: Callable[..., Any],
    backward: Callable[..., Any],
    *args: Any,
    wrt: Sequence[str | int] | None = None,
    options: CheckOptions | None = None,
    **overrides: Any,
) -> Report:
    """Check ``backward`` against numerical derivatives of ``forward``.

    Parameters
    ----------
    forward : callable
        ``forward(*args) -> (out, cache)``, or ``(out1, ..., outk, cache)``.
    backward : callable
        ``backward(dout, cache)`` (or ``backward(dout1, ..., doutk, cache)``) returning the
        gradients of the differentiable arguments, in argument order, as a tuple (or a
        single array when there is one).
    *args
        The inputs. Floating-point ndarrays are differentiable; integer arrays, dicts and
        scalars are passed through (dicts are copied for every call).
    wrt : sequence of str or int, optional
        Restrict the check to these arguments (names or positions). ``backward`` may return
        the gradients of just these, or of every floating-point array argument.
    options : CheckOptions, optional
        How to check (method, mode, seed, tolerances, ...); see :class:`CheckOptions`.
    **overrides
        Any :class:`CheckOptions` field by name, e.g. ``mode="directional"``, ``seed=3``.
        ``mode="full"`` (the default) checks every entry and locates every wrong one;
        for large layers (an affine of 64x3072 @ 3072x100 takes tens of seconds in full)
        pick ``mode="sample"`` or ``mode="directional"``, which localise a mismatch.
        ``progress`` shows a long check's progress on stderr (in a terminal or notebook
        by default).

    Returns
    -------
    Report
        ``report.passed`` is the verdict; ``print(report)`` explains it.

    Notes
    -----
    The checked scalar is ``L = sum_j <dout_j, out_j>`` for a random ``dout`` (never all
    ones), so one backward call gives every gradient and the numeric side needs only
    forward evaluations of ``L``, in float64 whatever the layer's dtype.
    """
    opts = CheckOptions.build(options, **overrides)
    if not callable(forward) or not callable(backward):
        raise TypeError("forward and backward must be callables")
    rng = Draws(opts.seed)  # the same draws for every check with this seed
    problem = layer_problem(forward, backward, args, wrt=wrt, rng=rng)
    return check_problem(problem, opts, rng=rng)


def check_loss(
    loss_fn: Callable[..., Any],
    *args: Any,
    options: CheckOptions | None = None,
    **overrides: Any,
) -> Report:
    """Check ``loss_fn(x, ...) -> (loss, dx)``: ``dx`` against numerical ``d loss / dx``.

    Only the first argument is differentiated (``x`` for ``softmax_loss(x, y)``, ``W`` for
    ``svm_loss_naive(W, X, y, reg)``). Options as in :func:`check_layer`.
    """
    opts = CheckOptions.build(options, **overrides)
    if not callable(loss_fn):
        raise TypeError("loss_fn must be callable")
    problem = loss_problem(loss_fn, args)
    return check_problem(problem, opts)


def assert_gradients(*args: Any, strict: bool = False, **kwargs: Any) -> Report:
    """:func:`check_layer`, raising :class:`GradientMismatch` (an AssertionError) on failure.

    Warnings (a write into ``dout`` or an input) are emitted as
    :class:`~gradcheck.report.GradcheckWarning`; ``strict=True`` raises on them too.
    """
    __tracebackhide__ = True
    return raise_or_warn(check_layer(*args, **kwargs), strict=strict)


def assert_loss_gradients(*args: Any, strict: bool = False, **kwargs: Any) -> Report:
    """:func:`check_loss`, raising :class:`GradientMismatch` (an AssertionError) on failure
    (and warning as :func:`assert_gradients` does)."""
    __tracebackhide__ = True
    return raise_or_warn(check_loss(*args, **kwargs), strict=strict)


def check_problem(problem: Problem, options: CheckOptions | None = None, *,
                  rng: Draws | np.random.Generator | None = None) -> Report:
    """Run the numeric comparison on an already-built problem (with the draws of
    ``options.seed`` unless ``rng`` is given)."""
    opts = options if options is not None else CheckOptions()
    checker = Checker(problem, opts, Draws.of(rng) if rng is not None else Draws(opts.seed))
    return checker.run()
