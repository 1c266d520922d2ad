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
    describe_mutation,
    max_difference,
    parse_gradients,
    repeatable,
)

__all__ = ["Problem", "layer_problem", "loss_problem"]

ROUND_OFF_FACTORS = (1.25, 0.8125, 1.4375)


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

    @property
    def n_evaluations(self) -> int:
        return self.evaluations[0]


@functools.lru_cache(maxsize=64)
def _eps(dtype: Any) -> float:
    dt = np.dtype(dtype)
    if np.issubdtype(dt, np.complexfloating):
        dt = np.empty(0, dtype=dt).real.dtype
    if np.issubdtype(dt, np.floating):
        return float(np.finfo(dt).eps)
    return float(np.finfo(np.float64).eps)


def _copy(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, (dict, list)):
        try:
            return copy.deepcopy(value)
        except Exception:
            return value
    return value


def argument_names(fn: Callable[..., Any], n_args: int) -> list[str]:
    """Names of the first ``n_args`` positional parameters of ``fn``."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return [f"arg{i}" for i in range(n_args)]
    names: list[str] = []
    for p in params:
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            names.append(p.name)
        elif p.kind == p.VAR_POSITIONAL:
            names += [f"{p.name}[{j}]" for j in range(n_args - len(names))]
            break
    names += [f"arg{i}" for i in range(len(names), n_args)]
    return names[:n_args]


def _is_differentiable(value: Any) -> bool:
    return isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating)


def _resolve_wrt(
    wrt: Sequence[str | int] | None, args: Sequence[Any], names: list[str]
) -> list[int]:
    if wrt is None:
        return [i for i, a in enumerate(args) if _is_differentiable(a)]
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
        if not _is_differentiable(args[pos]):
            raise TypeError(
                f"wrt names {names[pos]!r}, which is not a floating-point ndarray "
                f"(got {type(args[pos]).__name__})"
            )
        positions.append(pos)
    return positions


def _validate_args(args: Sequence[Any], names: list[str]) -> None:
    for name, a in zip(names, args):
        if isinstance(a, np.ndarray) and np.issubdtype(a.dtype, np.complexfloating):
            raise TypeError(
                f"argument {name!r} is complex ({a.dtype}); gradcheck checks real layers: "
                "pass real floating-point arrays (complex step is applied internally)"
            )


def _call(stage: str, fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except (Exception, SystemExit) as exc:  # sys.exit() in user code is a verdict, not an exit
        raise UserCodeError(stage, exc) from exc


def _batch_info(args: Sequence[Any], names: list[str], positions: list[int]) -> tuple[int | None, list[bool]]:
    arrays = [i for i, a in enumerate(args) if isinstance(a, np.ndarray) and a.ndim >= 1]
    if not arrays:
        return None, [False] * len(positions)
    first = next((i for i in arrays if names[i].lower() in ("x", "inputs", "input")), arrays[0])
    n = int(args[first].shape[0])
    return n, [pos == first and args[pos].ndim >= 2 for pos in positions]


def _split_forward(result: Any, stage: str) -> tuple[list[np.ndarray], Any]:
    if not isinstance(result, (tuple, list)) or len(result) < 2:
        what = type(result).__name__
        if isinstance(result, np.ndarray):
            what = f"a single array of shape {result.shape}"
        raise Stop(
            Violation(
                "forward_return",
                f"{stage} must return (out, cache), or (out1, out2, ..., cache) for several "
                f"outputs; it returned {what}",
            )
        )
    outputs = []
    for j, out in enumerate(result[:-1]):
        arr = np.asarray(out) if out is not None else None
        if arr is None or not np.issubdtype(arr.dtype, np.inexact):
            raise Stop(
                Violation(
                    "forward_return",
                    f"{stage} output {j} must be a floating-point array; it is "
                    f"{type(out).__name__}" + (f" of dtype {arr.dtype}" if arr is not None else ""),
                )
            )
        outputs.append(arr)
    return outputs, result[-1]


def layer_problem(
    forward: Callable[..., Any],
    backward: Callable[..., Any],
    args: Sequence[Any],
    *,
    wrt: Sequence[str | int] | None,
    rng: np.random.Generator,
    label: str | None = None,
) -> Problem:
    """Run a CS231n pair on copies of ``args`` and collect everything to compare."""
    names = argument_names(forward, len(args))
    _validate_args(args, names)
    positions = _resolve_wrt(wrt, args, names)
    if not positions:
        raise ValueError(
            "no differentiable argument: pass at least one floating-point ndarray "
            f"(got {[type(a).__name__ for a in args]})"
        )
    pristine = [_copy(a) for a in args]
    batch_size, batch_axis = _batch_info(args, names, positions)
    douts64: list[np.ndarray] = []
    copy_inputs = [False]
    diff_set = set(positions)
    problem = Problem(
        label=label or str(getattr(forward, "__name__", "layer")),
        kind="layer",
        names=[names[p] for p in positions],
        base=[np.asarray(args[p], dtype=np.float64).copy() for p in positions],
        analytic=[],
        objective=lambda values: 0.0,
        batch_size=batch_size,
        batch_axis=batch_axis,
    )

    def evaluate(values: Sequence[np.ndarray]) -> list[np.ndarray]:
        problem.evaluations[0] += 1
        call = [None if i in diff_set else _copy(a) for i, a in enumerate(pristine)]
        for pos, v in zip(positions, values):
            call[pos] = v.copy() if copy_inputs[0] else v
        result = _call("forward", forward, *call)
        try:
            outputs, _ = _split_forward(result, "forward")
        except Stop as stop:
            raise UserCodeError("forward", TypeError(stop.args[0].message)) from None
        problem.numeric_eps = max(_eps(y.dtype) for y in outputs)
        for j, (dout, y) in enumerate(zip(douts64, outputs)):
            if y.shape != dout.shape:
                raise UserCodeError(
                    "forward",
                    ValueError(
                        f"output {j} has shape {y.shape} at a perturbed input but "
                        f"{dout.shape} at the original one"
                    ),
                )
        return outputs

    def objective(values: Sequence[np.ndarray]) -> complex:
        total: complex = 0.0
        for dout, y in zip(douts64, evaluate(values)):
            total += np.vdot(dout, y)
        return total

    problem.objective = objective
    problem.evaluate = evaluate
    problem.douts = douts64
    try:
        _analyse_layer(problem, forward, backward, pristine, positions, names, douts64, rng)
    except Stop as stop:
        problem.violations.append(stop.args[0])
        problem.fatal = True
    except UserCodeError as err:
        message = f"{err.stage} raised {type(err.original).__name__}: {err.original}"
        problem.violations.append(Violation(f"{err.stage}_error", message))
        problem.error_detail = err.user_traceback
        problem.fatal = True
    copy_inputs[0] = any(v.kind == "input_mutated" for v in problem.violations)
    return problem


def _analyse_layer(
    problem: Problem,
    forward: Callable[..., Any],
    backward: Callable[..., Any],
    pristine: list[Any],
    positions: list[int],
    names: list[str],
    douts64: list[np.ndarray],
    rng: np.random.Generator,
) -> None:
    violations = problem.violations
    every = [i for i, a in enumerate(pristine) if _is_differentiable(a)]

    def select(result: Any) -> Any:
        # With ``wrt``, backward may return only the selected gradients or all of them.
        if (isinstance(result, (tuple, list)) and len(result) == len(every) != len(positions)
                and set(positions) <= set(every)):
            return tuple(result[every.index(p)] for p in positions)
        return result

    def run_forward(reuse: list[Any] | None = None) -> tuple[list[Any], list[np.ndarray], Any]:
        call = reuse if reuse is not None else [_copy(a) for a in pristine]
        problem.evaluations[0] += 1
        outputs, cache = _split_forward(_call("forward", forward, *call), "forward")
        return call, outputs, cache

    call_a, outputs, cache_a = run_forward()
    for j, y in enumerate(outputs):
        bad = ~np.isfinite(y)
        if np.any(bad):
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise Stop(
                Violation(
                    "forward_nonfinite",
                    f"forward output {j} contains NaN or inf at {int(bad.sum())} of {y.size} "
                    f"entries (first at index {first})",
                )
            )
    violations += check_unchanged(pristine, call_a, names, "forward")
    douts = [rng.standard_normal(y.shape).astype(y.dtype) for y in outputs]
    douts64 += [d.astype(np.float64) for d in douts]
    problem.scale = float(sum(np.sum(np.abs(d * y)) for d, y in zip(douts64, outputs)))
    problem.out_eps = max(_eps(y.dtype) for y in outputs)

    dout_a = [d.copy() for d in douts]
    grads_raw = select(_call("backward", backward, *dout_a, cache_a))
    if not any(v.kind == "input_mutated" for v in violations):
        violations += check_unchanged(pristine, call_a, names, "backward")
    for j, (before, after) in enumerate(zip(douts, dout_a)):
        if not np.array_equal(before, after):
            label = "dout" if len(douts) == 1 else f"dout{j + 1}"
            violations.append(
                Violation(
                    "dout_mutated",
                    f"backward wrote into the upstream gradient {label}: "
                    f"{describe_mutation(before, after)}. Never modify dout in place "
                    "(dx = dout.copy(); dx[mask] = 0).",
                )
            )
    grads, found = parse_gradients(grads_raw, pristine, positions, names)
    violations += found
    problem.analytic = grads
    problem.grad_eps = [
        max(_eps(pristine[p].dtype), problem.out_eps, _eps(g.dtype) if g is not None else 0.0)
        for p, g in zip(positions, grads)
    ]
    problem.analytic_noise = [0.0] * len(grads)

    # Arrays the first calls left untouched (checked above) can serve the second forward;
    # dicts are copied again (a forward may write into them, as batchnorm does).
    untouched = not any(v.kind == "input_mutated" for v in violations)
    reuse = [a if isinstance(a, np.ndarray) else _copy(a) for a in call_a] if untouched else None
    _, outputs_b, cache_b = run_forward(reuse)
    for j, (ya, yb) in enumerate(zip(outputs, outputs_b)):
        if not repeatable(ya, yb, _eps(ya.dtype)):
            violations.append(
                Violation(
                    "nondeterministic_forward",
                    "forward is not deterministic: two calls with the same inputs returned "
                    f"different values for output {j} (max difference "
                    f"{max_difference(ya, yb) if ya.shape == yb.shape else float('nan'):.3g}). "
                    "Seed any randomness (e.g. dropout_param['seed']) so that results repeat.",
                )
            )
            return
    complete = [g for g in grads if g is not None]
    if len(complete) != len(grads):
        return
    eps = [_eps(g.dtype) for g in complete]

    def backward_at(factor: float, cache: Any = None) -> list[np.ndarray | None]:
        if cache is None:
            _, _, cache = run_forward()
        scaled = [(d.astype(np.float64) * factor).astype(d.dtype) for d in douts]
        raw = select(_call("backward", backward, *scaled, cache))
        result, _ = parse_gradients(raw, pristine, positions, names)
        if factor == 2.0:  # exact: halving is exact too, but comparing with 2 * g avoids a pass
            return result
        return [None if g is None else np.divide(g, factor, dtype=np.float64) for g in result]

    def doubles(g: np.ndarray, twice: np.ndarray | None, eps: float) -> bool:
        if twice is None or twice.shape != g.shape:
            return False
        return bool(np.array_equal(twice, g * 2)) or repeatable(g, twice / 2, eps)

    # Doubling dout doubles every intermediate of a backward that is linear in dout, without
    # changing a single rounding, so backward(2 dout) / 2 must reproduce backward(dout).
    doubled = backward_at(2.0, cache_b)
    off = [i for i, (ga, gd) in enumerate(zip(complete, doubled)) if not doubles(ga, gd, eps[i])]
    if off:
        # Not doubled: nonlinear in dout, or not deterministic. Repeats tell (several: a
        # random mask of a few entries agrees with a fresh draw by chance).
        repeats = [backward_at(1.0) for _ in range(3)]
        doubled_again = [backward_at(2.0) for _ in range(2)]
        for i in off:
            name = problem.names[i]
            first_doubled = doubled[i]
            varies = not all(repeatable(complete[i], again[i], eps[i]) for again in repeats) or any(
                first_doubled is None or other is None or not np.array_equal(first_doubled, other)
                for other in (again[i] for again in doubled_again))
            if varies:
                violations.append(Violation(
                    "nondeterministic_backward",
                    f"backward is not deterministic: two calls with the same dout and cache "
                    f"returned different d{name}. Keep random state out of backward: reuse "
                    "the mask stored in the cache.",
                    name,
                ))
                return
            twice = doubled[i]
            diff = max_difference(complete[i], twice / 2) if twice is not None else float("nan")
            size = float(np.max(np.abs(complete[i]), initial=0.0))
            violations.append(Violation(
                "nonlinear_backward",
                f"backward is not linear in dout: backward(2 * dout) is not 2 * backward(dout) "
                f"for d{name} (max difference {diff:.3g} against entries up to {size:.3g}). Every "
                "gradient must be dout multiplied by something that depends only on the forward "
                "inputs.",
                name,
            ))
        return
    def measure_round_off() -> None:
        # Any factor but a power of two changes the roundings: the spread measures the
        # backward's round-off (large for a backward that computes in float32, or that
        # cancels large terms). Needed only for entry-wise tolerances, so done on demand.
        # One sample can come out small by chance on a gradient of one or two entries;
        # where round-off can matter (float32 precision), the largest of three is used.
        low_precision = max(problem.grad_eps) > 1e-10
        factors = ROUND_OFF_FACTORS if low_precision else ROUND_OFF_FACTORS[:1]
        for factor in factors:
            for i, (ga, gn) in enumerate(zip(complete, backward_at(factor))):
                if gn is not None:
                    problem.analytic_noise[i] = max(problem.analytic_noise[i], max_difference(ga, gn))
        if low_precision:
            # Round-off in factors that do not involve dout (1 - s of a saturated sigmoid)
            # does not change with dout; the same layer on float64 copies shows all of it.
            _note_float64_spread(problem, complete, lambda: float64_gradients())

    def float64_gradients() -> list[np.ndarray | None]:
        call = [_as_float64(a) for a in pristine]
        _, cache64 = _split_forward(_call("forward", forward, *call), "forward")
        raw = select(_call("backward", backward, *douts64, cache64))
        return parse_gradients(raw, call, positions, names)[0]

    problem.measure_round_off = measure_round_off


def _as_float64(value: Any) -> Any:
    if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
        return value.astype(np.float64)
    return _copy(value)


def _note_float64_spread(
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


def loss_problem(
    loss_fn: Callable[..., Any],
    args: Sequence[Any],
    *,
    label: str | None = None,
) -> Problem:
    """Run ``loss_fn(x, ...) -> (loss, dx)`` on copies and collect what to compare."""
    names = argument_names(loss_fn, len(args))
    _validate_args(args, names)
    if not args or not _is_differentiable(args[0]):
        raise TypeError(
            "check_loss differentiates the first argument, which must be a floating-point "
            f"ndarray; got {type(args[0]).__name__ if args else 'no arguments'}"
        )
    pristine = [_copy(a) for a in args]
    batch_size, batch_axis = _batch_info(args, names, [0])
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
        call = [values[0].copy()] + [_copy(a) for a in pristine[1:]]
        try:
            loss, _ = split(_call("loss", loss_fn, *call))
        except Stop as stop:
            raise UserCodeError("loss", TypeError(stop.args[0].message)) from None
        problem.numeric_eps = _eps(loss.dtype)
        return complex(loss.item())

    problem.objective = objective
    try:
        call = [_copy(a) for a in pristine]
        problem.evaluations[0] += 1
        loss, grad = split(_call("loss", loss_fn, *call))
        if not np.isfinite(loss):
            raise Stop(Violation("forward_nonfinite", f"the loss is {float(loss)}"))
        problem.violations += check_unchanged(pristine, call, names, "the loss function")
        problems_found: list[Violation]
        grads, problems_found = parse_gradients((grad,), pristine, [0], names)
        problem.violations += problems_found
        problem.analytic = grads
        problem.scale = abs(float(loss))
        problem.out_eps = _eps(loss.dtype)
        problem.grad_eps = [
            max(_eps(args[0].dtype), problem.out_eps, _eps(grads[0].dtype) if grads[0] is not None else 0.0)
        ]
        problem.evaluations[0] += 1
        loss_b, grad_b = split(_call("loss", loss_fn, *[_copy(a) for a in pristine]))

        def float64_gradient() -> list[np.ndarray | None]:
            call64 = [_as_float64(a) for a in pristine]
            _, g64 = split(_call("loss", loss_fn, *call64))
            return parse_gradients((g64,), call64, [0], names)[0]

        if grads[0] is not None and problem.grad_eps[0] > 1e-10:
            complete_grad = grads[0]
            problem.measure_round_off = lambda: _note_float64_spread(
                problem, [complete_grad], float64_gradient)
        grad_b_arr = np.asarray(grad_b, dtype=np.float64) if grad_b is not None else None
        same_grad = grads[0] is None or repeatable(grads[0], grad_b_arr, problem.grad_eps[0])
        if not repeatable(loss, np.asarray(loss_b), problem.out_eps) or not same_grad:
            problem.violations.append(
                Violation(
                    "nondeterministic_loss",
                    "the loss function is not deterministic: two calls with the same inputs "
                    "returned different results. Seed any randomness.",
                )
            )
    except Stop as stop:
        problem.violations.append(stop.args[0])
        problem.fatal = True
    except UserCodeError as err:
        problem.violations.append(
            Violation("loss_error", f"loss raised {type(err.original).__name__}: {err.original}")
        )
        problem.error_detail = err.user_traceback
        problem.fatal = True
    return problem
