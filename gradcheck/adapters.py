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
    max_difference,
)
from gradcheck.kinds import ViolationKind

__all__ = ["Evaluator", "Problem"]


@dataclass
class Evaluator:
    """Calls the user's forward (or loss) for one check: counts every call, the cost the
    report states, and keeps the precision of what the numeric side's float64 calls return."""

    count: int = 0
    eps: float | None = None  # of the outputs of the numeric side's evaluations, once one ran

    def call(self, stage: str, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)``, counted; what it raises is a :class:`UserCodeError` of ``stage``."""
        self.count += 1
        return call_user(stage, fn, *args)

    def call_many(self, stage: str, many: Callable[[list[Any]], list[Any]], calls: list[Any]) -> list[Any]:
        """``many(calls)``: the user's function at every argument list of ``calls`` at once
        (a function in the worker process), counted as that many calls."""
        self.count += len(calls)
        return call_user(stage, many, calls)

    def note_outputs(self, outputs: Sequence[np.ndarray]) -> None:
        """The numeric side evaluated: its outputs set the precision the numerics work at."""
        self.eps = max(dtype_eps(y.dtype) for y in outputs)


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
    evaluator: Evaluator = field(default_factory=Evaluator)
    fatal: bool = False
    error_detail: str = ""
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
        return self.evaluator.count

    @property
    def numeric_out_eps(self) -> float:
        """Precision of the outputs the numerics work with: of the float64 evaluations once
        one ran, else of the first call's."""
        return self.evaluator.eps if self.evaluator.eps is not None else self.out_eps

    def complete(self) -> None:
        """Make the deferred contract calls (once)."""
        finish, self.finish = self.finish, None
        if finish is not None:
            finish()

    def stop(self, err: Stop | UserCodeError) -> None:
        """Record what ended the contract calls early: the check cannot go on."""
        if isinstance(err, Stop):
            self.violations.append(err.args[0])
        else:
            message = f"{err.stage} raised {type(err.original).__name__}: {err.original}"
            self.violations.append(Violation(ViolationKind.raised_in(err.stage), message))
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


_PLAIN = frozenset({int, float, str, bool, type(None), np.float64, np.float32, np.int64})


def _shallow_copies(value: dict[Any, Any]) -> bool:
    """Whether copying the dict's arrays and keeping its other values is a full copy."""
    return all(type(v) in _PLAIN or (type(v) is np.ndarray and v.dtype.kind != "O")
               for v in value.values())


def copy_argument(value: Any) -> Any:
    """A private copy of an argument: arrays copied, dicts and lists deep-copied (a dict of
    plain values and arrays, such as ``{"stride": 1, "pad": 1}`` or batchnorm's parameters
    with their running averages, by a cheap shallow copy with its arrays copied)."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, dict) and _shallow_copies(value):
        return {k: v.copy() if type(v) is np.ndarray else v for k, v in value.items()}
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
    return isinstance(value, np.ndarray) and value.dtype.kind == "f"


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
        if isinstance(a, np.ndarray) and a.dtype.kind == "c":
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
