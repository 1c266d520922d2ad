"""Layer objects and whole models, reduced to a :class:`~gradcheck.adapters.Problem`.

Layer objects: ``layer.forward(x) -> out`` and ``layer.backward(dout) -> dx``, with
parameters either in dicts ``layer.params`` / ``layer.grads`` or as attribute pairs
``W`` / ``dW``. Gradients are zeroed before each backward call, so a layer that
accumulates (``self.dW += ...``) and one that assigns are both checked correctly.

Models (the CS231n convention): ``model.params`` is a dict of arrays and
``model.loss(X, y) -> (loss, grads)`` returns a dict with one gradient per parameter.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from gradcheck.adapters import Problem, _eps
from gradcheck.check import _validate_options, check_problem, checker_rng
from gradcheck.contract import (
    UserCodeError,
    Violation,
    check_unchanged,
    describe_mutation,
    parse_gradients,
    repeatable,
)
from gradcheck.progress import check_progress
from gradcheck.report import Report

__all__ = ["check_model", "check_object"]


def _is_float_array(value: Any) -> bool:
    return isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating)


class _Parameters:
    """Read and write a layer's parameters and gradients, whatever the convention."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        params = getattr(layer, "params", None)
        if isinstance(params, dict):
            self.style = "dict"
            self.names = [k for k, v in params.items() if _is_float_array(v)]
        else:
            self.style = "attributes"
            attrs = vars(layer) if hasattr(layer, "__dict__") else {}
            self.names = [k for k, v in attrs.items() if _is_float_array(v) and f"d{k}" in attrs]

    def get(self, name: str) -> np.ndarray:
        if self.style == "dict":
            return np.asarray(self.layer.params[name])
        return np.asarray(getattr(self.layer, name))

    def set(self, name: str, value: np.ndarray) -> None:
        if self.style == "dict":
            self.layer.params[name] = value
        else:
            setattr(self.layer, name, value)

    def zero_grads(self) -> None:
        for name in self.names:
            zeros = np.zeros_like(self.get(name))
            if self.style == "dict":
                grads = getattr(self.layer, "grads", None)
                if not isinstance(grads, dict):
                    grads = {}
                    self.layer.grads = grads
                grads[name] = zeros
            else:
                setattr(self.layer, f"d{name}", zeros)

    def grad(self, name: str) -> Any:
        if self.style == "dict":
            return (getattr(self.layer, "grads", None) or {}).get(name)
        return getattr(self.layer, f"d{name}", None)


def _call(stage: str, fn: Callable[..., Any], *args: Any) -> Any:
    try:
        return fn(*args)
    except (Exception, SystemExit) as exc:
        raise UserCodeError(stage, exc) from exc


def _fatal(problem: Problem, err: UserCodeError) -> Problem:
    problem.violations.append(
        Violation(f"{err.stage}_error", f"{err.stage} raised {type(err.original).__name__}: {err.original}")
    )
    problem.error_detail = err.user_traceback
    problem.fatal = True
    return problem


def object_problem(layer: Any, inputs: Sequence[np.ndarray], rng: np.random.Generator) -> Problem:
    """Build the problem for a layer object called as ``layer.forward(*inputs)``."""
    for i, x in enumerate(inputs):
        if not _is_float_array(x):
            raise TypeError(f"input {i} must be a floating-point ndarray; got {type(x).__name__}")
    if not callable(getattr(layer, "forward", None)) or not callable(getattr(layer, "backward", None)):
        raise TypeError("layer must have forward(x) and backward(dout) methods")
    params = _Parameters(layer)
    originals = {name: params.get(name).copy() for name in params.names}
    input_names = ["x"] if len(inputs) == 1 else [f"x{i}" for i in range(len(inputs))]
    douts: list[np.ndarray] = []

    def objective(values: Sequence[np.ndarray]) -> complex:
        problem.evaluations[0] += 1
        xs = [v.copy() for v in values[: len(inputs)]]
        for name, v in zip(params.names, values[len(inputs):]):
            params.set(name, v.copy())
        try:
            out = _call("forward", layer.forward, *xs)
        finally:
            for name, v in originals.items():
                params.set(name, v.copy())
        outputs = out if isinstance(out, tuple) else (out,)
        return sum((np.vdot(d, np.asarray(o)) for d, o in zip(douts, outputs)), 0.0)

    problem = Problem(
        label=type(layer).__name__, kind="object",
        names=input_names + params.names,
        base=[np.asarray(x, dtype=np.float64).copy() for x in inputs]
        + [originals[n].astype(np.float64) for n in params.names],
        analytic=[], objective=objective, analytic_noise=[0.0] * (len(inputs) + len(params.names)),
        batch_size=int(inputs[0].shape[0]) if inputs[0].ndim else None,
        batch_axis=[x.ndim >= 2 for x in inputs] + [False] * len(params.names),
    )
    try:
        xs = [x.copy() for x in inputs]
        problem.evaluations[0] += 1
        out = _call("forward", layer.forward, *xs)
        outputs = [np.asarray(o) for o in (out if isinstance(out, tuple) else (out,))]
        douts += [rng.standard_normal(o.shape).astype(o.dtype) for o in outputs]
        problem.scale = float(sum(np.sum(np.abs(d * o)) for d, o in zip(douts, outputs)))
        problem.out_eps = max(_eps(o.dtype) for o in outputs)
        problem.violations += check_unchanged(inputs, xs, input_names, "forward")
        given = [d.copy() for d in douts]
        params.zero_grads()
        dx = _call("backward", layer.backward, *given)
        for before, after in zip(douts, given):
            if not np.array_equal(before, after):
                problem.violations.append(Violation(
                    "dout_mutated", f"backward wrote into the upstream gradient dout: "
                    f"{describe_mutation(before, after)}. Never modify dout in place."))
                break
        dxs = dx if isinstance(dx, tuple) else (dx,)
        grads_in, found = parse_gradients(dxs, list(inputs), list(range(len(inputs))), input_names)
        problem.violations += found
        grads_p: list[np.ndarray | None] = []
        for name in params.names:
            g = params.grad(name)
            if g is None:
                problem.violations.append(
                    Violation("gradient_type", f"backward did not set the gradient of {name}", name))
                grads_p.append(None)
                continue
            (gp,), found = parse_gradients((np.asarray(g).copy(),), [originals[name]], [0], [name])
            problem.violations += found
            grads_p.append(gp)
        problem.analytic = grads_in + grads_p
        problem.grad_eps = [max(problem.out_eps, _eps(b.dtype)) for b in problem.base]
        problem.evaluations[0] += 1
        again = _call("forward", layer.forward, *[x.copy() for x in inputs])
        again_outputs = again if isinstance(again, tuple) else (again,)
        if not all(repeatable(a, np.asarray(b), problem.out_eps) for a, b in zip(outputs, again_outputs)):
            problem.violations.append(Violation(
                "nondeterministic_forward", "forward is not deterministic: two calls with the "
                "same inputs returned different values. Seed any randomness."))
    except UserCodeError as err:
        return _fatal(problem, err)
    finally:
        for name, v in originals.items():
            params.set(name, v.copy())
    return problem


def model_problem(model: Any, X: Any, y: Any) -> Problem:
    """Build the problem for ``model.loss(X, y) -> (loss, grads)`` over ``model.params``."""
    if not isinstance(getattr(model, "params", None), dict) or not callable(getattr(model, "loss", None)):
        raise TypeError("model must have a params dict and a loss(X, y) method")
    names = [k for k, v in model.params.items() if _is_float_array(v)]
    if not names:
        raise ValueError("model.params holds no floating-point arrays to check")
    originals = {k: np.asarray(model.params[k]).copy() for k in names}

    def run(values: dict[str, np.ndarray]) -> tuple[Any, Any]:
        for k, v in values.items():
            model.params[k] = v
        try:
            result = _call("loss", model.loss, copy.deepcopy(X), copy.deepcopy(y))
        finally:
            for k, v in originals.items():
                model.params[k] = v.copy()
        if not isinstance(result, tuple) or len(result) != 2 or not isinstance(result[1], dict):
            raise UserCodeError("loss", TypeError(
                f"model.loss(X, y) must return (loss, grads) with grads a dict; got {type(result).__name__}"))
        return result

    def objective(values: Sequence[np.ndarray]) -> complex:
        problem.evaluations[0] += 1
        loss, _ = run({k: v.copy() for k, v in zip(names, values)})
        return complex(np.asarray(loss).item())

    problem = Problem(
        label=type(model).__name__, kind="model", names=names,
        base=[originals[k].astype(np.float64) for k in names], analytic=[],
        objective=objective, analytic_noise=[0.0] * len(names),
        batch_axis=[False] * len(names),
        batch_size=int(X.shape[0]) if isinstance(X, np.ndarray) and X.ndim else None,
    )
    try:
        problem.evaluations[0] += 1
        loss, grads = run({k: v.copy() for k, v in originals.items()})
        problem.scale = abs(float(np.real(loss)))
        problem.out_eps = _eps(np.asarray(loss).dtype)
        missing = [k for k in names if k not in grads]
        for k in missing:
            problem.violations.append(
                Violation("gradient_type", f"model.loss returned no gradient for {k!r}", k))
        listed = [grads.get(k) if k in grads else np.zeros_like(originals[k]) for k in names]
        parsed, found = parse_gradients(tuple(listed), [originals[k] for k in names],
                                        list(range(len(names))), names)
        problem.violations += [v for v in found if v.argument not in missing]
        problem.analytic = [None if k in missing else g for k, g in zip(names, parsed)]
        problem.grad_eps = [max(problem.out_eps, _eps(originals[k].dtype)) for k in names]
        problem.evaluations[0] += 1
        loss_b, _ = run({k: v.copy() for k, v in originals.items()})
        if not repeatable(np.asarray(loss, dtype=np.float64), np.asarray(loss_b, dtype=np.float64),
                          problem.out_eps):
            problem.violations.append(Violation(
                "nondeterministic_loss", "model.loss is not deterministic: seed any randomness "
                "(e.g. the dropout seed)"))
    except UserCodeError as err:
        return _fatal(problem, err)
    return problem


def check_object(layer: Any, *inputs: np.ndarray, method: str = "auto", mode: str = "full",
                 seed: int = 0, rtol: float | None = None, atol: float | None = None,
                 progress: bool | None = None) -> Report:
    """Check a layer object: ``forward(x) -> out``, ``backward(dout) -> dx``, parameters
    in ``params``/``grads`` dicts or ``W``/``dW`` attribute pairs. Options (and when to
    pick which ``mode``) as in :func:`gradcheck.check_layer`."""
    _validate_options(method, mode, seed, rtol, atol, 10, 2)
    check_progress(progress)
    rng = checker_rng(seed)
    problem = object_problem(layer, inputs, rng)
    return check_problem(problem, method=method, mode=mode, seed=seed, rtol=rtol, atol=atol, rng=rng,
                         progress=progress)


def check_model(model: Any, X: Any, y: Any, *, method: str = "auto", mode: str = "full",
                seed: int = 0, rtol: float | None = None, atol: float | None = None,
                samples: int = 10, progress: bool | None = None) -> Report:
    """Check ``model.loss(X, y) -> (loss, grads)`` against numerical derivatives of the loss
    with respect to every array in ``model.params`` (CS231n TwoLayerNet, FullyConnectedNet,
    ThreeLayerConvNet). For large models use ``mode="sample"``; options as in
    :func:`gradcheck.check_layer`."""
    _validate_options(method, mode, seed, rtol, atol, samples, 2)
    check_progress(progress)
    problem = model_problem(model, X, y)
    return check_problem(problem, method=method, mode=mode, seed=seed, rtol=rtol, atol=atol,
                         samples=samples, progress=progress)

