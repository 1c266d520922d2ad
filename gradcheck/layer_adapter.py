"""A CS231n function pair ``forward(*args) -> (out, cache)``, ``backward(dout, cache)``,
reduced to a :class:`~gradcheck.adapters.Problem`.

The contract is checked in named steps, each a call (or two) of the user's code:

1. :func:`_first_call` - forward on private copies, backward on a random ``dout``:
   finite outputs, no writes into the inputs or ``dout``, one gradient of the right
   shape per differentiable argument. Always made; its results are the analytic side.
2. :func:`_repeat_calls` - forward again and ``backward(2 * dout)`` on the new cache:
   the forward repeats itself, the backward is deterministic and linear in ``dout``.
   Deferred (``Problem.finish``): a directional verdict that agrees settles a check
   without them, since a random forward or backward cannot agree with numerics there;
   any disagreement makes them before anything is reported.
3. ``Problem.measure_round_off`` - backward at other ``dout`` scalings for entry-wise
   tolerances; only the entry-wise comparisons need it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradcheck.adapters import (
    Problem,
    argument_names,
    as_float64,
    batch_info,
    call_user,
    copy_argument,
    deferred,
    dtype_eps,
    is_differentiable,
    note_float64_spread,
    resolve_wrt,
    validate_args,
)
from gradcheck.contract import (
    Stop,
    UserCodeError,
    Violation,
    check_unchanged,
    doubles,
    dout_writes,
    max_difference,
    nonlinear_or_random,
    output_scale,
    parse_gradients,
    repeatable,
    unrepeated_forward,
)
from gradcheck.draws import Draws, upstream
from gradcheck.kinds import ViolationKind

__all__ = ["layer_problem"]

ROUND_OFF_FACTORS = (1.25, 0.8125, 1.4375)


def split_forward(result: Any, stage: str = "forward") -> tuple[list[np.ndarray], Any]:
    """``(outputs, cache)`` from what a forward returned, or a :class:`Stop` saying why not."""
    if not isinstance(result, (tuple, list)) or len(result) < 2:
        what = type(result).__name__
        if isinstance(result, np.ndarray):
            what = f"a single array of shape {result.shape}"
        raise Stop(Violation(
            ViolationKind.FORWARD_RETURN,
            f"{stage} must return (out, cache), or (out1, out2, ..., cache) for several "
            f"outputs; it returned {what}",
        ))
    outputs = []
    for j, out in enumerate(result[:-1]):
        arr = np.asarray(out) if out is not None else None
        if arr is None or arr.dtype.kind not in "fc":  # floating or complex
            raise Stop(Violation(
                ViolationKind.FORWARD_RETURN,
                f"{stage} output {j} must be a floating-point array; it is "
                f"{type(out).__name__}" + (f" of dtype {arr.dtype}" if arr is not None else ""),
            ))
        outputs.append(arr)
    return outputs, result[-1]


@dataclass
class _Pair:
    """The user's pair and everything the contract steps share."""

    problem: Problem
    forward: Callable[..., Any]
    backward: Callable[..., Any]
    pristine: list[Any]
    positions: list[int]
    names: list[str]
    rng: Draws
    douts: list[np.ndarray]  # in the outputs' dtype, as backward receives them
    douts64: list[np.ndarray]
    differentiable: list[int] = field(default_factory=list)  # positions of every float array
    copy_inputs: bool = False
    first_call: list[Any] = field(default_factory=list)  # the arguments of the first forward
    first_outputs: list[np.ndarray] = field(default_factory=list)

    def select(self, result: Any) -> Any:
        """With ``wrt``, backward may return only the selected gradients or all of them."""
        every = self.differentiable
        if (isinstance(result, (tuple, list)) and len(result) == len(every) != len(self.positions)
                and set(self.positions) <= set(every)):
            return tuple(result[every.index(p)] for p in self.positions)
        return result

    def run_forward(self, reuse: list[Any] | None = None) -> tuple[list[Any], list[np.ndarray], Any]:
        call = reuse if reuse is not None else [copy_argument(a) for a in self.pristine]
        outputs, cache = split_forward(self.problem.evaluator.call("forward", self.forward, *call))
        return call, outputs, cache

    def run_backward(self, douts: Sequence[np.ndarray], cache: Any) -> list[np.ndarray | None]:
        raw = self.select(call_user("backward", self.backward, *douts, cache))
        return parse_gradients(raw, self.pristine, self.positions, self.names)[0]

    def backward_at(self, factor: float, cache: Any = None) -> list[np.ndarray | None]:
        """``backward(factor * dout) / factor`` (on a fresh forward's cache by default)."""
        if cache is None:
            _, _, cache = self.run_forward()
        scaled = [(d.astype(np.float64) * factor).astype(d.dtype) for d in self.douts]
        result = self.run_backward(scaled, cache)
        if factor == 2.0:  # compared with 2 * g by the caller: no division
            return result
        return [None if g is None else np.divide(g, factor, dtype=np.float64) for g in result]

    def _call(self, values: Sequence[np.ndarray]) -> list[Any]:
        diff = set(self.positions)
        call = [None if i in diff else copy_argument(a) for i, a in enumerate(self.pristine)]
        for pos, v in zip(self.positions, values):
            call[pos] = v.copy() if self.copy_inputs else v
        return call

    def _outputs(self, result: Any) -> list[np.ndarray]:
        try:
            outputs, _ = split_forward(result)
        except Stop as stop:
            raise UserCodeError("forward", TypeError(stop.args[0].message)) from None
        self.problem.evaluator.note_outputs(outputs)
        for j, (dout, y) in enumerate(zip(self.douts64, outputs)):
            if y.shape != dout.shape:
                raise UserCodeError("forward", ValueError(
                    f"output {j} has shape {y.shape} at a perturbed input but {dout.shape} at "
                    "the original one"))
        return outputs

    def evaluate(self, values: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The outputs at ``values`` of the differentiable arguments (numeric side)."""
        return self._outputs(self.problem.evaluator.call("forward", self.forward, *self._call(values)))

    def objective(self, values: Sequence[np.ndarray]) -> complex:
        return self._total(self.evaluate(values))

    def _total(self, outputs: list[np.ndarray]) -> complex:
        total: complex = 0.0
        for dout, y in zip(self.douts64, outputs):
            total += np.vdot(dout, y)
        return total

    def evaluate_many(self, points: Sequence[Sequence[np.ndarray]]) -> list[list[np.ndarray]]:
        """:meth:`evaluate` at each of ``points``, from one call of the forward's ``many``
        (a forward in the worker process: one message for the lot)."""
        many = getattr(self.forward, "many")  # noqa: B009 - only forwards that have it get here
        results = self.problem.evaluator.call_many("forward", many, [self._call(v) for v in points])
        return [self._outputs(r) for r in results]

    def objectives(self, points: Sequence[Sequence[np.ndarray]]) -> list[complex]:
        return [self._total(outputs) for outputs in self.evaluate_many(points)]


class _Batched:
    """A function of the pair (``one``), and the same at many points at once (``batch``)."""

    def __init__(self, one: Callable[..., Any], many: Callable[..., list[Any]]) -> None:
        self.one, self.batch = one, many

    def __call__(self, values: Sequence[np.ndarray]) -> Any:
        return self.one(values)


def layer_problem(
    forward: Callable[..., Any],
    backward: Callable[..., Any],
    args: Sequence[Any],
    *,
    wrt: Sequence[str | int] | None,
    rng: Draws | np.random.Generator,
    label: str | None = None,
) -> Problem:
    """Run a CS231n pair on copies of ``args`` and collect everything to compare.

    The first call is made here; the repeat calls are left in ``problem.finish``.
    """
    names = argument_names(forward, len(args))
    validate_args(args, names)
    positions = resolve_wrt(wrt, args, names)
    if not positions:
        raise ValueError(
            "no differentiable argument: pass at least one floating-point ndarray "
            f"(got {[type(a).__name__ for a in args]})"
        )
    # The caller's arrays are never handed to the user's code, so they serve as the
    # pristine values; dicts and lists are copied (forward may write into them).
    pristine = [a if isinstance(a, np.ndarray) else copy_argument(a) for a in args]
    batch_size, axes = batch_info(args, names, positions)
    problem = Problem(
        label=label or str(getattr(forward, "__name__", "layer")),
        kind="layer",
        names=[names[p] for p in positions],
        # Read-only until the thorough path starts: private copies are made then.
        base=[np.asarray(args[p], dtype=np.float64) for p in positions],
        analytic=[],
        objective=lambda values: 0.0,
        batch_size=batch_size,
        batch_axis=axes,
    )
    pair = _Pair(problem, forward, backward, pristine, positions, names, Draws.of(rng), [], [],
                 differentiable=[i for i, a in enumerate(args) if is_differentiable(a)])
    batched = hasattr(forward, "many")  # a forward in the worker process
    problem.objective = _Batched(pair.objective, pair.objectives) if batched else pair.objective
    problem.evaluate = _Batched(pair.evaluate, pair.evaluate_many) if batched else pair.evaluate
    problem.douts = pair.douts64
    try:
        _first_call(pair)
    except (Stop, UserCodeError) as err:
        problem.stop(err)
        return problem
    pair.copy_inputs = any(v.kind == ViolationKind.INPUT_MUTATED for v in problem.violations)

    problem.finish = functools.partial(deferred, problem, functools.partial(_repeat_calls, pair))
    return problem


def _first_call(pair: _Pair) -> None:
    """Forward and backward once: the analytic gradients, and the contract breaches seen."""
    problem, violations = pair.problem, pair.problem.violations
    call_a, outputs, cache_a = pair.run_forward()
    pair.douts += [upstream(pair.rng, y) for y in outputs]
    pair.douts64 += [np.asarray(d, dtype=np.float64) for d in pair.douts]  # never handed out
    problem.scale = output_scale(outputs, pair.douts64)
    problem.out_eps = max(dtype_eps(y.dtype) for y in outputs)

    handed = [d.copy() for d in pair.douts]
    raw = pair.select(call_user("backward", pair.backward, *handed, cache_a))
    violations += _input_writes(pair, call_a)
    violations += dout_writes(pair.douts, handed)
    grads, found_grads = parse_gradients(raw, pair.pristine, pair.positions, pair.names)
    violations += found_grads
    problem.analytic = grads
    problem.grad_eps = [
        max(dtype_eps(pair.pristine[p].dtype), problem.out_eps, dtype_eps(g.dtype) if g is not None else 0.0)
        for p, g in zip(pair.positions, grads)
    ]
    problem.analytic_noise = [0.0] * len(grads)
    pair.first_outputs, pair.first_call = outputs, call_a


def _input_writes(pair: _Pair, used: list[Any]) -> list[Violation]:
    """Writes into the arguments of the first forward and backward, blamed on the forward
    if it writes (seen by calling it once more, only when something was written)."""
    written = check_unchanged(pair.pristine, used, pair.names, "backward")
    if not written:
        return []
    again, _, _ = pair.run_forward()
    by_forward = check_unchanged(pair.pristine, again, pair.names, "forward")
    return by_forward or written


def _repeat_calls(pair: _Pair) -> None:
    """Forward again (it must repeat itself) and ``backward(2 * dout)`` on its cache (must
    be exactly twice the first gradients); then arm the round-off measurement."""
    problem, violations = pair.problem, pair.problem.violations
    # The thorough path perturbs the inputs: private copies now (until here ``base`` could
    # be the caller's own arrays, only read).
    problem.base = [b.copy() for b in problem.base]
    # Arrays the first calls left untouched can serve the second forward; dicts are
    # copied again (a forward may write into them, as batchnorm does).
    reuse = None if pair.copy_inputs else [
        a if isinstance(a, np.ndarray) else copy_argument(a) for a in pair.first_call]
    _, outputs_b, cache_b = pair.run_forward(reuse)
    found = unrepeated_forward(pair.first_outputs, outputs_b)
    if found is not None:
        violations.append(found)
        return
    grads = problem.analytic
    if any(g is None for g in grads):
        return
    complete: list[np.ndarray] = [g for g in grads if g is not None]
    eps = [dtype_eps(g.dtype) for g in complete]
    # Doubling dout doubles every intermediate of a backward that is linear in dout, without
    # changing a single rounding, so backward(2 dout) / 2 must reproduce backward(dout).
    doubled = pair.backward_at(2.0, cache_b)
    off = [i for i, (ga, gd) in enumerate(zip(complete, doubled)) if not doubles(ga, gd, eps[i])]
    if off:
        # Not doubled: nonlinear in dout, or not deterministic. Repeats tell (several: a
        # random mask of a few entries agrees with a fresh draw by chance).
        repeats = [pair.backward_at(1.0) for _ in range(3)]
        doubled_again = [pair.backward_at(2.0) for _ in range(2)]
        for i in off:
            once, twice = complete[i], doubled[i]
            varies = not all(repeatable(once, again[i], eps[i]) for again in repeats) or any(
                twice is None or other is None or not np.array_equal(twice, other)
                for other in (again[i] for again in doubled_again))
            violations.append(nonlinear_or_random(problem.names[i], complete[i], doubled[i], varies))
            if varies:
                return
        return
    problem.measure_round_off = lambda: _measure_round_off(pair, complete)


def _measure_round_off(pair: _Pair, complete: list[np.ndarray]) -> None:
    """The backward's round-off, for entry-wise tolerances.

    Any factor but a power of two changes the roundings: the spread measures the
    backward's round-off (large for a backward that computes in float32, or that cancels
    large terms). One sample can come out small by chance on a gradient of one or two
    entries; where round-off can matter (float32 precision), the largest of three is used.
    """
    problem = pair.problem
    low_precision = max(problem.grad_eps) > 1e-10
    factors = ROUND_OFF_FACTORS if low_precision else ROUND_OFF_FACTORS[:1]
    for factor in factors:
        for i, (ga, gn) in enumerate(zip(complete, pair.backward_at(factor))):
            if gn is not None:
                problem.analytic_noise[i] = max(problem.analytic_noise[i], max_difference(ga, gn))
    if low_precision:
        # Round-off in factors that do not involve dout (1 - s of a saturated sigmoid)
        # does not change with dout; the same layer on float64 copies shows all of it.
        note_float64_spread(problem, complete, lambda: _float64_gradients(pair))


def _float64_gradients(pair: _Pair) -> list[np.ndarray | None]:
    call = [as_float64(a) for a in pair.pristine]
    _, cache64 = split_forward(call_user("forward", pair.forward, *call))
    raw = pair.select(call_user("backward", pair.backward, *[d.copy() for d in pair.douts64], cache64))
    return parse_gradients(raw, call, pair.positions, pair.names)[0]
