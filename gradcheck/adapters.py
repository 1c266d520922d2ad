"""Calling conventions, reduced to one :class:`Problem` the checker can work on.

A *problem* is a list of differentiable inputs (float64 copies), the analytic gradient of
each as the user's code computed it, and an objective ``L(values)`` whose gradient those
should be. For a layer, ``L = sum_j <dout_j, y_j>`` with a random ``dout_j`` per output;
for a loss, ``L`` is the loss. Building the problem calls the user's code on private
copies, and records every breach of the backward contract on the way.
"""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradcheck.contract import (
    Stop,
    UserCodeError,
    Violation,
    check_unchanged,
    max_difference,
    parse_gradients,
    repeatable,
)

__all__ = ["Problem", "loss_problem"]

@dataclass
class Problem:
    """What the numeric comparison needs, whatever the calling convention."""

    label: str
    kind: str
    names: list[str]
    base: list[np.ndarray]
    analytic: list[np.ndarray | None]
    objective: Callable[[Sequence[np.ndarray]], complex]
    scale: float = 0.0
    out_eps: float = float(np.finfo(np.float64).eps)
    grad_eps: list[float] = field(default_factory=list)
    analytic_noise: list[float] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    batch_size: int | None = None
    batch_axis: list[bool] = field(default_factory=list)
    evaluations: list[int] = field(default_factory=lambda: [0])
    fatal: bool = False
    error_detail: str = ""
    numeric_eps: float | None = None  # precision of the outputs of the float64 evaluations
    # Per-output access, for layers: the outputs at given inputs, and the upstream gradients
    # that weight them in the objective. Lets many coordinates be estimated per evaluation.
    evaluate: Callable[[Sequence[np.ndarray]], list[np.ndarray]] | None = None
    douts: list[np.ndarray] = field(default_factory=list)
    # Fills ``analytic_noise`` (one more backward call); run before entry-wise comparisons.
    measure_round_off: Callable[[], None] | None = None
    # The contract calls a cheap first look deferred (a second forward, the linearity run of
    # backward): made by :meth:`complete` unless a directional verdict settled the check.
    finish: Callable[[], None] | None = None

    @property
    def n_evaluations(self) -> int:
        return self.evaluations[0]

    def complete(self) -> None:
        """Make the deferred contract calls (once), and give the numerics private copies
        of the inputs to perturb."""
        finish, self.finish = self.finish, None
        if finish is not None:
            self.base = [b.copy() for b in self.base]
            finish()

    def stop(self, err: Stop | UserCodeError) -> None:
        """Record what ended the contract calls early: the check cannot go on."""
        if isinstance(err, Stop):
            self.violations.append(err.args[0])
        else:
            message = f"{err.stage} raised {type(err.original).__name__}: {err.original}"
            self.violations.append(Violation(f"{err.stage}_error", message))
            self.error_detail = err.user_traceback
        self.fatal = True


@functools.lru_cache(maxsize=64)
def dtype_eps(dtype: Any) -> float:
    dt = np.dtype(dtype)
    if np.issubdtype(dt, np.complexfloating):
        dt = np.empty(0, dtype=dt).real.dtype
    if np.issubdtype(dt, np.floating):
        return float(np.finfo(dt).eps)
    return float(np.finfo(np.float64).eps)


_PLAIN = (int, float, str, bool, type(None), np.generic)


def copy_argument(value: Any) -> Any:
    """A private copy of an argument: arrays copied, dicts and lists deep-copied (a dict of
    plain values, such as ``{"stride": 1, "pad": 1}``, by a cheap shallow copy)."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict) and all(isinstance(v, _PLAIN) for v in value.values()):
        return dict(value)
    if isinstance(value, (dict, list)):
        try:
            return copy.deepcopy(value)
        except Exception:
            return value
    return value


def argument_names(fn: Callable[..., Any], n_args: int) -> list[str]:
    """Names of the first ``n_args`` positional parameters of ``fn``."""
    try:
        return list(_argument_names(fn, n_args))
    except TypeError:  # not hashable
        return list(_argument_names.__wrapped__(fn, n_args))


@functools.lru_cache(maxsize=256)
def _argument_names(fn: Callable[..., Any], n_args: int) -> tuple[str, ...]:
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return tuple(f"arg{i}" for i in range(n_args))
    names: list[str] = []
    for p in params:
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            names.append(p.name)
        elif p.kind == p.VAR_POSITIONAL:
            names += [f"{p.name}[{j}]" for j in range(n_args - len(names))]
            break
    names += [f"arg{i}" for i in range(len(names), n_args)]
    return tuple(names[:n_args])


def is_differentiable(value: Any) -> bool:
    return isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating)


def resolve_wrt(
    wrt: Sequence[str | int] | None, args: Sequence[Any], names: list[str]
) -> list[int]:
    if wrt is None:
        return [i for i, a in enumerate(args) if is_differentiable(a)]
    if isinstance(wrt, (str, int)):
        wrt = [wrt]
    positions = []
    for item in wrt:
        if isinstance(item, str):
            if item not in names:
                raise ValueError(f"wrt={item!r} is not an argument name; the names are {names}")
            pos = names.index(item)
        elif isinstance(item, (int, np.integer)) and 0 <= int(item) < len(args):
            pos = int(item)
        else:
            raise ValueError(f"wrt entry {item!r} must be an argument name or a position < {len(args)}")
        if not is_differentiable(args[pos]):
            raise TypeError(
                f"wrt names {names[pos]!r}, which is not a floating-point ndarray "
                f"(got {type(args[pos]).__name__})"
            )
        positions.append(pos)
    return positions


def validate_args(args: Sequence[Any], names: list[str]) -> None:
    for name, a in zip(names, args):
        if isinstance(a, np.ndarray) and np.issubdtype(a.dtype, np.complexfloating):
            raise TypeError(
                f"argument {name!r} is complex ({a.dtype}); gradcheck checks real layers: "
                "pass real floating-point arrays (complex step is applied internally)"
            )


def call_user(stage: str, fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except (Exception, SystemExit) as exc:  # sys.exit() in user code is a verdict, not an exit
        raise UserCodeError(stage, exc) from exc


def batch_info(args: Sequence[Any], names: list[str], positions: list[int]) -> tuple[int | None, list[bool]]:
    arrays = [i for i, a in enumerate(args) if isinstance(a, np.ndarray) and a.ndim >= 1]
    if not arrays:
        return None, [False] * len(positions)
    first = next((i for i in arrays if names[i].lower() in ("x", "inputs", "input")), arrays[0])
    n = int(args[first].shape[0])
    return n, [pos == first and args[pos].ndim >= 2 for pos in positions]


def as_float64(value: Any) -> Any:
    if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
        return value.astype(np.float64)
    return copy_argument(value)


def note_float64_spread(
    problem: Problem, gradients: Sequence[np.ndarray], compute: Callable[[], list[np.ndarray | None]]
) -> None:
    """Widen each gradient's round-off estimate to its distance from the float64 result."""
    try:
        precise = compute()
    except (UserCodeError, Stop):
        return  # the code does not take float64 inputs: nothing to learn here
    for i, (g, g64) in enumerate(zip(gradients, precise)):
        if g64 is not None and g64.shape == g.shape:
            problem.analytic_noise[i] = max(problem.analytic_noise[i], max_difference(g, g64))


def deferred(problem: Problem, step: Callable[[], None]) -> None:
    """Run a deferred contract step; what stops it stops the check."""
    try:
        step()
    except (Stop, UserCodeError) as err:
        problem.stop(err)


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
        label=label or str(getattr(loss_fn, "__name__", "loss")),
        kind="loss",
        names=[names[0]],
        base=[np.asarray(args[0], dtype=np.float64).copy()],
        analytic=[],
        objective=lambda values: 0.0,
        batch_size=batch_size,
        batch_axis=batch_axis,
        analytic_noise=[0.0],
    )

    def split(result: Any) -> tuple[Any, Any]:
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise Stop(
                Violation(
                    "loss_return",
                    f"a loss must return (loss, d{names[0]}); it returned {type(result).__name__}"
                    + (f" of length {len(result)}" if isinstance(result, (tuple, list)) else ""),
                )
            )
        loss = np.asarray(result[0])
        if loss.size != 1 or not np.issubdtype(loss.dtype, np.inexact):
            raise Stop(
                Violation(
                    "loss_return",
                    f"the loss must be a single floating-point number; got "
                    f"{type(result[0]).__name__} of shape {loss.shape}",
                )
            )
        return loss.reshape(()), result[1]

    def objective(values: Sequence[np.ndarray]) -> complex:
        problem.evaluations[0] += 1
        call = [values[0].copy()] + [copy_argument(a) for a in pristine[1:]]
        try:
            loss, _ = split(call_user("loss", loss_fn, *call))
        except Stop as stop:
            raise UserCodeError("loss", TypeError(stop.args[0].message)) from None
        problem.numeric_eps = dtype_eps(loss.dtype)
        return complex(loss.item())

    problem.objective = objective
    try:
        call = [copy_argument(a) for a in pristine]
        problem.evaluations[0] += 1
        loss, grad = split(call_user("loss", loss_fn, *call))
        if not np.isfinite(loss):
            raise Stop(Violation("forward_nonfinite", f"the loss is {float(loss)}"))
        problem.violations += check_unchanged(pristine, call, names, "the loss function")
        problems_found: list[Violation]
        grads, problems_found = parse_gradients((grad,), pristine, [0], names)
        problem.violations += problems_found
        problem.analytic = grads
        problem.scale = abs(float(loss))
        problem.out_eps = dtype_eps(loss.dtype)
        problem.grad_eps = [
            max(dtype_eps(args[0].dtype), problem.out_eps,
                dtype_eps(grads[0].dtype) if grads[0] is not None else 0.0)
        ]

        def float64_gradient() -> list[np.ndarray | None]:
            call64 = [as_float64(a) for a in pristine]
            _, g64 = split(call_user("loss", loss_fn, *call64))
            return parse_gradients((g64,), call64, [0], names)[0]

        if grads[0] is not None and problem.grad_eps[0] > 1e-10:
            complete_grad = grads[0]
            problem.measure_round_off = lambda: note_float64_spread(
                problem, [complete_grad], float64_gradient)

        def repeat() -> None:
            problem.evaluations[0] += 1
            loss_b, grad_b = split(call_user("loss", loss_fn, *[copy_argument(a) for a in pristine]))
            grad_b_arr = np.asarray(grad_b, dtype=np.float64) if grad_b is not None else None
            same_grad = grads[0] is None or repeatable(grads[0], grad_b_arr, problem.grad_eps[0])
            if not repeatable(loss, np.asarray(loss_b), problem.out_eps) or not same_grad:
                problem.violations.append(Violation(
                    "nondeterministic_loss",
                    "the loss function is not deterministic: two calls with the same inputs "
                    "returned different results. Seed any randomness.",
                ))

        problem.finish = functools.partial(deferred, problem, repeat)
    except (Stop, UserCodeError) as err:
        problem.stop(err)
    return problem
