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
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gradcheck.adapters import Evaluator, Problem, call_user, deferred, dtype_eps
from gradcheck.check import check_problem
from gradcheck.contract import (
    Stop,
    UserCodeError,
    Violation,
    check_unchanged,
    doubles,
    dout_writes,
    nonlinear_or_random,
    output_scale,
    parse_gradients,
    repeatable,
    unrepeated_forward,
)
from gradcheck.draws import Draws, upstream
from gradcheck.kinds import ViolationKind
from gradcheck.options import CheckOptions
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


def _outputs(out: Any) -> list[np.ndarray]:
    return [np.asarray(o) for o in (out if isinstance(out, tuple) else (out,))]


@dataclass
class _ObjectCalls:
    """A layer object and its parameters, called the ways the contract steps need."""

    layer: Any
    inputs: Sequence[np.ndarray]
    params: _Parameters
    originals: dict[str, np.ndarray]
    names: list[str]  # of the inputs
    evaluator: Evaluator = field(default_factory=Evaluator)
    douts: list[np.ndarray] = field(default_factory=list)

    def restore(self) -> None:
        for name, v in self.originals.items():
            self.params.set(name, v.copy())

    def forward(self, xs: Sequence[np.ndarray]) -> list[np.ndarray]:
        try:
            return _outputs(self.evaluator.call("forward", self.layer.forward, *[x.copy() for x in xs]))
        finally:
            self.restore()

    def objective(self, values: Sequence[np.ndarray]) -> complex:
        n = len(self.inputs)
        for name, v in zip(self.params.names, values[n:]):
            self.params.set(name, v.copy())
        outputs = self.forward(values[:n])
        return sum((np.vdot(d, o) for d, o in zip(self.douts, outputs)), 0.0)

    def backward(self, douts: Sequence[np.ndarray]) -> tuple[list[np.ndarray | None], list[Violation]]:
        """backward(douts) after a forward at the originals: every gradient, and the breaches."""
        self.params.zero_grads()
        dx = call_user("backward", self.layer.backward, *douts)
        dxs = dx if isinstance(dx, tuple) else (dx,)
        count = len(self.inputs)
        grads, found = parse_gradients(dxs, list(self.inputs), list(range(count)), self.names)
        for name in self.params.names:
            grad, found_p = _param_gradient(self.params, name, self.originals)
            grads.append(grad)
            found += found_p
        return grads, found

    def gradients(self, douts: Sequence[np.ndarray]) -> list[np.ndarray | None]:
        """A fresh forward at the originals, then backward(douts)."""
        self.forward(self.inputs)
        try:
            return self.backward(douts)[0]
        finally:
            self.restore()


def object_problem(layer: Any, inputs: Sequence[np.ndarray], rng: Draws) -> Problem:
    """Build the problem for a layer object called as ``layer.forward(*inputs)``.

    The same contract steps as a function pair: finite outputs, no writes into the inputs
    or ``dout``, gradients of the right shapes, a forward that repeats itself, a backward
    linear in ``dout`` (deferred to ``Problem.finish``, like the pair's).
    """
    for i, x in enumerate(inputs):
        if not _is_float_array(x):
            raise TypeError(f"input {i} must be a floating-point ndarray; got {type(x).__name__}")
    if not callable(getattr(layer, "forward", None)) or not callable(getattr(layer, "backward", None)):
        raise TypeError("layer must have forward(x) and backward(dout) methods")
    params = _Parameters(layer)
    originals = {name: params.get(name).copy() for name in params.names}
    input_names = ["x"] if len(inputs) == 1 else [f"x{i}" for i in range(len(inputs))]
    calls = _ObjectCalls(layer, inputs, params, originals, input_names)
    problem = Problem(
        label=type(layer).__name__, kind="object",
        names=input_names + params.names,
        base=[np.asarray(x, dtype=np.float64).copy() for x in inputs]
        + [originals[n].astype(np.float64) for n in params.names],
        analytic=[], objective=calls.objective, analytic_noise=[0.0] * (len(inputs) + len(params.names)),
        batch_size=int(inputs[0].shape[0]) if inputs[0].ndim else None,
        batch_axis=[x.ndim >= 2 for x in inputs] + [False] * len(params.names),
        evaluator=calls.evaluator,
    )
    try:
        outputs = _first_object_call(problem, calls, rng)
    except (Stop, UserCodeError) as err:
        problem.stop(err)
        return problem
    finally:
        calls.restore()
    repeat = functools.partial(_repeat_object, problem, calls.forward, calls.gradients, inputs,
                               outputs, calls.douts)
    problem.finish = functools.partial(deferred, problem, repeat)
    return problem


def _first_object_call(problem: Problem, calls: _ObjectCalls, rng: Draws) -> list[np.ndarray]:
    """Forward and backward once: the analytic gradients and the breaches seen."""
    xs = [x.copy() for x in calls.inputs]
    outputs = _outputs(calls.evaluator.call("forward", calls.layer.forward, *xs))
    calls.douts += [upstream(rng, o) for o in outputs]
    problem.scale = output_scale(outputs, calls.douts)
    problem.out_eps = max(dtype_eps(o.dtype) for o in outputs)
    problem.violations += check_unchanged(calls.inputs, xs, calls.names, "forward")
    given = [d.copy() for d in calls.douts]
    grads, found_grads = calls.backward(given)
    problem.violations += dout_writes(calls.douts, given) + found_grads
    problem.analytic = grads
    problem.grad_eps = [max(problem.out_eps, dtype_eps(b.dtype)) for b in problem.base]
    return outputs


def _param_gradient(params: _Parameters, name: str, originals: dict[str, np.ndarray],
                    ) -> tuple[np.ndarray | None, list[Violation]]:
    g = params.grad(name)
    if g is None:
        return None, [Violation(ViolationKind.GRADIENT_TYPE,
                                f"backward did not set the gradient of {name}", name)]
    (gp,), found = parse_gradients((np.asarray(g).copy(),), [originals[name]], [0], [name])
    return gp, found


def _repeat_object(problem: Problem, forward: Callable[[Sequence[np.ndarray]], list[np.ndarray]],
                   gradients: Callable[[Sequence[np.ndarray]], list[np.ndarray | None]],
                   inputs: Sequence[np.ndarray], outputs: list[np.ndarray],
                   douts: list[np.ndarray]) -> None:
    """The repeat step for a layer object: forward repeats, backward(2 dout) doubles."""
    found = unrepeated_forward(outputs, forward(inputs), hint="the layer's random seed")
    if found is not None:
        problem.violations.append(found)
        return
    if any(g is None for g in problem.analytic):
        return
    first = [g for g in problem.analytic if g is not None]
    doubled = gradients([(d.astype(np.float64) * 2).astype(d.dtype) for d in douts])
    for name, g, twice in zip(problem.names, first, doubled):
        if not doubles(g, twice, dtype_eps(g.dtype)):
            again = gradients(douts)[problem.names.index(name)]
            varies = not repeatable(g, again, dtype_eps(g.dtype))
            problem.violations.append(nonlinear_or_random(name, g, twice, varies))
            return


@dataclass
class _ModelCalls:
    """A model and one batch: ``model.loss(X, y)`` at given parameter values, with the
    original parameters put back after every call."""

    model: Any
    X: Any
    y: Any
    originals: dict[str, np.ndarray]
    evaluator: Evaluator = field(default_factory=Evaluator)

    def __post_init__(self) -> None:
        # A model that takes its parameters with the call (a torch model seen through
        # gradcheck.torch_adapter.NumpyModel): one call per evaluation, where setting and
        # putting back each parameter is a call each (across processes, a message each).
        self.loss_at = getattr(self.model, "gradcheck_loss_at", None)

    def loss(self, values: dict[str, np.ndarray] | None = None) -> tuple[Any, dict[str, Any]]:
        """``model.loss(X, y)`` at ``values`` (the original parameters by default)."""
        if values is None:
            values = {k: v.copy() for k, v in self.originals.items()}
        if self.loss_at is not None:
            result = self.evaluator.call("loss", self.loss_at, values, copy.deepcopy(self.X),
                                         copy.deepcopy(self.y))
        else:
            result = self._loss_set(values)
        if not isinstance(result, tuple) or len(result) != 2 or not isinstance(result[1], dict):
            raise UserCodeError("loss", TypeError(
                f"model.loss(X, y) must return (loss, grads) with grads a dict; got {type(result).__name__}"))
        return result

    def _loss_set(self, values: dict[str, np.ndarray]) -> Any:
        """``model.loss(X, y)`` with ``values`` set in ``model.params``, the originals put back."""
        for k, v in values.items():
            self.model.params[k] = v
        try:
            return self.evaluator.call("loss", self.model.loss, copy.deepcopy(self.X), copy.deepcopy(self.y))
        finally:
            for k, v in self.originals.items():
                self.model.params[k] = v.copy()

    def objective(self, values: Sequence[np.ndarray]) -> complex:
        loss, _ = self.loss({k: v.copy() for k, v in zip(self.originals, values)})
        return complex(np.asarray(loss).item())


def model_problem(model: Any, X: Any, y: Any) -> Problem:
    """Build the problem for ``model.loss(X, y) -> (loss, grads)`` over ``model.params``."""
    if not isinstance(getattr(model, "params", None), dict) or not callable(getattr(model, "loss", None)):
        raise TypeError("model must have a params dict and a loss(X, y) method")
    names = [k for k, v in model.params.items() if _is_float_array(v)]
    if not names:
        raise ValueError("model.params holds no floating-point arrays to check")
    calls = _ModelCalls(model, X, y, {k: np.asarray(model.params[k]).copy() for k in names})
    problem = Problem(
        label=type(model).__name__, kind="model", names=names,
        base=[calls.originals[k].astype(np.float64) for k in names], analytic=[],
        objective=calls.objective, analytic_noise=[0.0] * len(names),
        batch_axis=[False] * len(names),
        batch_size=int(X.shape[0]) if isinstance(X, np.ndarray) and X.ndim else None,
        evaluator=calls.evaluator,
    )
    try:
        loss = _first_model_call(problem, calls)
    except (Stop, UserCodeError) as err:
        problem.stop(err)
        return problem
    repeat = functools.partial(_repeat_model, problem, calls, loss)
    problem.finish = functools.partial(deferred, problem, repeat)
    return problem


def _first_model_call(problem: Problem, calls: _ModelCalls) -> Any:
    """The loss and its gradients once, and the breaches seen; returns the loss."""
    loss, grads = calls.loss()
    value = np.asarray(loss)
    if value.size != 1 or not np.issubdtype(value.dtype, np.number):
        raise Stop(Violation(ViolationKind.LOSS_RETURN, "model.loss must return the loss as a single "
                             f"number; got {type(loss).__name__} of shape {value.shape}"))
    if not np.isfinite(value).all():
        raise Stop(Violation(ViolationKind.FORWARD_NONFINITE, f"model.loss returned the loss {loss}"))
    problem.scale = abs(float(np.real(value.reshape(()))))  # (1, 1) too: see models.loss_shape
    problem.out_eps = dtype_eps(np.asarray(loss).dtype)
    names, originals = problem.names, calls.originals
    missing = [k for k in names if k not in grads]
    problem.violations += [
        Violation(ViolationKind.GRADIENT_TYPE, f"model.loss returned no gradient for {k!r}", k)
        for k in missing]
    listed = [_broadcastable(problem, k, grads[k], originals[k]) if k in grads
              else np.zeros_like(originals[k]) for k in names]
    parsed, found = parse_gradients(tuple(listed), [originals[k] for k in names],
                                    list(range(len(names))), names)
    problem.violations += [v for v in found if v.argument not in missing]
    problem.analytic = [None if k in missing else g for k, g in zip(names, parsed)]
    problem.grad_eps = [max(problem.out_eps, dtype_eps(originals[k].dtype)) for k in names]
    return loss


def _broadcastable(problem: Problem, name: str, grad: Any, param: np.ndarray) -> Any:
    """A gradient of the parameter's size in a shape that broadcasts onto it (``db`` of shape
    ``(H,)`` for ``b`` of ``(1, H)``) as the parameter's shape, with a warning: the course's
    solver (``w -= lr * dw``) and its notebook check (``rel_error``) broadcast it, so the model
    trains; other shapes are left to the shape check."""
    shape = getattr(grad, "shape", None)
    if not isinstance(grad, np.ndarray) or shape == param.shape or grad.size != param.size:
        return grad
    try:
        fits = np.broadcast_shapes(grad.shape, param.shape) == param.shape
    except ValueError:
        return grad
    if not fits:
        return grad
    problem.violations.append(Violation(
        ViolationKind.BROADCAST_GRADIENT,
        f"grads[{name!r}] has shape {grad.shape} but model.params[{name!r}] has {param.shape}: the "
        "course's solver and gradient check broadcast it onto the parameter, so the model trains, "
        f"but code that compares shapes rejects it (reshape it to model.params[{name!r}].shape)", name))
    return grad.reshape(param.shape)


def _repeat_model(problem: Problem, calls: _ModelCalls, loss: Any) -> None:
    """The repeat step for a model: the loss repeats itself."""
    again, _ = calls.loss()
    if not repeatable(np.asarray(loss, dtype=np.float64), np.asarray(again, dtype=np.float64),
                      problem.out_eps):
        problem.violations.append(Violation(
            ViolationKind.NONDETERMINISTIC_LOSS, "model.loss is not deterministic: seed any randomness "
            "(e.g. the dropout seed)"))


def check_object(layer: Any, *inputs: np.ndarray, options: CheckOptions | None = None,
                 **overrides: Any) -> Report:
    """Check a layer object: ``forward(x) -> out``, ``backward(dout) -> dx``, parameters
    in ``params``/``grads`` dicts or ``W``/``dW`` attribute pairs. Options as in
    :func:`gradcheck.check_layer` (:class:`~gradcheck.CheckOptions`)."""
    opts = CheckOptions.build(options, **overrides)
    rng = Draws(opts.seed)
    problem = object_problem(layer, inputs, rng)
    return check_problem(problem, opts, rng=rng)


def check_model(model: Any, X: Any, y: Any, *, options: CheckOptions | None = None,
                **overrides: Any) -> Report:
    """Check ``model.loss(X, y) -> (loss, grads)`` against numerical derivatives of the loss
    with respect to every array in ``model.params`` (CS231n TwoLayerNet, FullyConnectedNet,
    ThreeLayerConvNet). Options as in :func:`gradcheck.check_layer`; for large models use
    ``mode="sample"`` or ``mode="directional"``."""
    opts = CheckOptions.build(options, **overrides)
    problem = model_problem(model, X, y)
    return check_problem(problem, opts)
