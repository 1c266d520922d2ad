"""A loss ``loss_fn(x, ...) -> (loss, dx)`` reduced to a :class:`~gradcheck.adapters.Problem`.

Only the first argument is differentiated. The same contract steps as a layer: the *first
call* (a finite loss, no writes into the arguments, a gradient of the right shape) is made
here; the *repeat call* (the same loss and gradient again) is deferred to
``Problem.finish``; for float32 losses the round-off is measured against the same loss on
float64 copies.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gradcheck.adapters import (
    Problem,
    argument_names,
    as_float64,
    batch_info,
    copy_argument,
    deferred,
    dtype_eps,
    is_differentiable,
    note_float64_spread,
    validate_args,
)
from gradcheck.contract import (
    Stop,
    UserCodeError,
    Violation,
    check_unchanged,
    parse_gradients,
    repeatable,
)
from gradcheck.kinds import ViolationKind

__all__ = ["loss_problem"]


def split_loss(result: Any, name: str) -> tuple[np.ndarray, Any]:
    """``(loss, gradient)`` from what a loss returned, or a :class:`Stop` saying why not."""
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise Stop(Violation(
            ViolationKind.LOSS_RETURN,
            f"a loss must return (loss, d{name}); it returned {type(result).__name__}"
            + (f" of length {len(result)}" if isinstance(result, (tuple, list)) else ""),
        ))
    loss = np.asarray(result[0])
    if loss.size != 1 or not np.issubdtype(loss.dtype, np.inexact):
        raise Stop(Violation(
            ViolationKind.LOSS_RETURN,
            f"the loss must be a single floating-point number; got {type(result[0]).__name__} "
            f"of shape {loss.shape}",
        ))
    return loss.reshape(()), result[1]


def loss_problem(
    loss_fn: Callable[..., Any],
    args: Sequence[Any],
    *,
    label: str | None = None,
) -> Problem:
    """Run ``loss_fn(x, ...) -> (loss, dx)`` on copies and collect what to compare."""
    names = argument_names(loss_fn, len(args))
    validate_args(args, names)
    if not args or not is_differentiable(args[0]):
        raise TypeError(
            "check_loss differentiates the first argument, which must be a floating-point "
            f"ndarray; got {type(args[0]).__name__ if args else 'no arguments'}"
        )
    pristine = [copy_argument(a) for a in args]
    batch_size, batch_axis = batch_info(args, names, [0])
    problem = Problem(
        label=label or str(getattr(loss_fn, "__name__", "loss")), kind="loss", names=[names[0]],
        base=[np.asarray(args[0], dtype=np.float64).copy()], analytic=[],
        objective=lambda values: 0.0, batch_size=batch_size, batch_axis=batch_axis,
        analytic_noise=[0.0],
    )

    def run(values: Sequence[Any]) -> tuple[np.ndarray, Any]:
        return split_loss(problem.evaluator.call("loss", loss_fn, *values), names[0])

    def objective(values: Sequence[np.ndarray]) -> complex:
        try:
            loss, _ = run([values[0].copy()] + [copy_argument(a) for a in pristine[1:]])
        except Stop as stop:
            raise UserCodeError("loss", TypeError(stop.args[0].message)) from None
        problem.evaluator.note_outputs([loss])
        return complex(loss.item())

    def objectives(points: Sequence[Sequence[np.ndarray]]) -> list[complex]:
        """The objective at each point, in one call of the loss's ``many`` (a loss in the
        worker process: one message for the lot)."""
        calls = [[values[0].copy()] + [copy_argument(a) for a in pristine[1:]] for values in points]
        found = []
        for result in problem.evaluator.call_many("loss", getattr(loss_fn, "many"), calls):  # noqa: B009
            try:
                loss, _ = split_loss(result, names[0])
            except Stop as stop:
                raise UserCodeError("loss", TypeError(stop.args[0].message)) from None
            problem.evaluator.note_outputs([loss])
            found.append(complex(loss.item()))
        return found

    if hasattr(loss_fn, "many"):
        objective.batch = objectives  # type: ignore[attr-defined]
    problem.objective = objective
    try:
        loss = _first_call(problem, run, pristine, names)
    except (Stop, UserCodeError) as err:
        problem.stop(err)
        return problem
    problem.finish = functools.partial(
        deferred, problem, functools.partial(_repeat_call, problem, run, pristine, loss))
    return problem


def _first_call(problem: Problem, run: Callable[[Sequence[Any]], tuple[np.ndarray, Any]],
                pristine: list[Any], names: list[str]) -> np.ndarray:
    """The loss and gradient once; arms the round-off measurement of a float32 loss."""
    call = [copy_argument(a) for a in pristine]
    loss, grad = run(call)
    if not np.isfinite(loss):
        raise Stop(Violation(ViolationKind.FORWARD_NONFINITE, f"the loss is {float(loss)}"))
    problem.violations += check_unchanged(pristine, call, names, "the loss function")
    grads, found = parse_gradients((grad,), pristine, [0], names)
    problem.violations += found
    problem.analytic = grads
    problem.scale = abs(float(loss))
    problem.out_eps = dtype_eps(loss.dtype)
    first = grads[0]
    problem.grad_eps = [max(dtype_eps(pristine[0].dtype), problem.out_eps,
                            dtype_eps(first.dtype) if first is not None else 0.0)]
    if first is not None and problem.grad_eps[0] > 1e-10:

        def float64_gradient() -> list[np.ndarray | None]:
            call64 = [as_float64(a) for a in pristine]
            _, g64 = run(call64)
            return parse_gradients((g64,), call64, [0], names)[0]

        problem.measure_round_off = lambda: note_float64_spread(problem, [first], float64_gradient)
    return loss


def _repeat_call(problem: Problem, run: Callable[[Sequence[Any]], tuple[np.ndarray, Any]],
                 pristine: list[Any], loss: np.ndarray) -> None:
    """The same loss and gradient again: a loss must be deterministic."""
    loss_b, grad_b = run([copy_argument(a) for a in pristine])
    first = problem.analytic[0]
    grad_b_arr = np.asarray(grad_b, dtype=np.float64) if grad_b is not None else None
    same_grad = first is None or repeatable(first, grad_b_arr, problem.grad_eps[0])
    if not repeatable(loss, np.asarray(loss_b), problem.out_eps) or not same_grad:
        problem.violations.append(Violation(
            ViolationKind.NONDETERMINISTIC_LOSS,
            "the loss function is not deterministic: two calls with the same inputs returned "
            "different results. Seed any randomness.",
        ))
