"""The course's models in a student's file: found by class name, built small, checked.

``TwoLayerNet`` (assignment 1's ``loss(X, y, reg)`` with a ``params`` dict, and
``fc_net.py``'s ``loss(X, y)``), ``FullyConnectedNet`` with each normalisation and
dropout setting its constructor offers, ``ThreeLayerConvNet`` and ``CaptioningRNN`` with
rnn and lstm cells. Constructor arguments are named differently by course years
(``input_size`` or ``input_dim``, ``std`` or ``weight_scale``, ``use_batchnorm`` or
``normalization``, ``dropout`` or ``dropout_keep_ratio``): each model is built from its
own signature, seeded, in float64. Every parameter's gradient from ``model.loss`` is
checked against numerical derivatives of the loss, and the loss against the same model
built from the reference layers (:mod:`reference_layers.models`).
"""

from __future__ import annotations

import time
from types import ModuleType
from typing import Any

import numpy as np

import reference_layers as ref
from gradcheck.model_build import REG, BuildError, Built, Factors, build, parameters_of, reference_params
from gradcheck.objects import check_model
from gradcheck.options import CheckOptions
from gradcheck.outcome import Outcome

__all__ = ["MODEL_NAMES", "check_model_class", "check_model_config", "configurations", "find_models",
           "model_label"]

MODEL_NAMES = ("TwoLayerNet", "FullyConnectedNet", "ThreeLayerConvNet", "CaptioningRNN")


def configurations(cls: type) -> list[str]:
    """The configurations of ``cls`` to check, as labels ("" for a model with one)."""
    params = parameters_of(cls)
    name = cls.__name__
    if name == "CaptioningRNN":
        return ["rnn", "lstm"]
    if name == "DeepConvNet":  # EECS 498/598: batchnorm=True or False
        return ["plain", "batchnorm"] if "batchnorm" in params else ["plain"]
    if name != "FullyConnectedNet":
        return [""]
    norms = (["batchnorm", "layernorm"] if "normalization" in params
             else ["batchnorm"] if "use_batchnorm" in params else [])
    dropout = "dropout" in params or "dropout_keep_ratio" in params
    return (["plain", *norms] + (["dropout"] if dropout else [])
            + ([f"{norms[0]}, dropout"] if norms and dropout else []))


def model_label(name: str, config: str) -> str:
    """``FullyConnectedNet(batchnorm, dropout)``; the bare name for a single configuration."""
    return f"{name}({config})" if config else name


def find_models(module: ModuleType) -> list[Any]:
    """A :class:`~gradcheck.discover.Match` per configuration of each model class the module
    defines under a course name."""
    from gradcheck.discover import Match

    found = []
    for name in MODEL_NAMES:
        cls = vars(module).get(name)
        if not isinstance(cls, type) or cls.__module__ != module.__name__:
            continue
        for config in configurations(cls):
            found.append(Match(model_label(name, config), name, None, kind="model", config=config))
    return found


def check_model_config(module: ModuleType, name: str, config: str,
                       options: CheckOptions | None = None, **overrides: Any) -> Outcome:
    """Build ``module.name`` in ``config`` and check its loss and every gradient (in
    ``options.mode``, directional when none is given)."""
    return check_model_class(getattr(module, name), config, options, **overrides)


def check_model_class(cls: Any, config: str, options: CheckOptions | None = None, *,
                      factors: dict[str, Factors] | None = None, **overrides: Any) -> Outcome:
    """:func:`check_model_config` of the class (or constructor) ``cls``; ``factors``: the
    factors of ``reg * sum(W**2)`` the course accepts per model (see
    :func:`gradcheck.model_build.build`)."""
    opts = CheckOptions.build(options if options is not None else CheckOptions(mode="directional"),
                              **overrides)
    seed = opts.seed
    started = time.monotonic()
    name = cls.__name__
    outcome = Outcome(spec=model_label(name, config), functions=(name, None), kind="model")
    try:
        built = build(cls, config, seed, factors)
    except BuildError as exc:
        outcome.forward = "FAILED"
        outcome.forward_message = str(exc)
        outcome.seconds = time.monotonic() - started
        return outcome
    outcome.failing_case = built.describe()
    first = _first_call(built)
    _compare_loss(outcome, built, first)
    _compare_small_batch(outcome, built, config)
    _compare_test_mode(outcome, built, name)
    unregistered = _unregistered(built, config, first)
    report = check_model(built.model, built.X, built.y, options=opts)
    report.label = outcome.spec
    outcome.n_cases = 1
    outcome.n_evaluations = report.n_evaluations
    outcome.gradients = {}
    outcome.take_verdicts(report)
    if unregistered:
        outcome.contract.append("unregistered_params")
    for warning in report.warnings:
        outcome.add_warning(warning)
    if not outcome.passed:
        outcome.report = report
        outcome.report_text = "\n\n".join(filter(None, [unregistered and f"  {unregistered}", str(report)]))
    else:
        outcome.failing_case = None
    outcome.notes += built.notes
    outcome.seconds = time.monotonic() - started
    return outcome


def _first_call(built: Built) -> tuple[Any, Any] | None:
    """``(loss, grads)`` of one call of ``model.loss``; None when it fails (the gradient check
    reports the crash)."""
    try:
        result = built.model.loss(built.X, built.y)
        return result[0], result[1]
    except Exception:
        return None


def _unregistered(built: Built, config: str, first: tuple[Any, Any] | None) -> str:
    """Why a solver could not train the model with these gradients, or "".

    The course's solver updates ``model.params[k]`` with ``grads[k]``: a gradient under a
    name that is not in ``model.params`` is never applied, and a normalisation whose gamma
    and beta are not in it is never learned (the notebook's own check looks them up there)."""
    grads = first[1] if first is not None else None
    params = built.model.params
    stray = sorted(set(grads) - set(params)) if isinstance(grads, dict) else []
    if stray:
        return (f"model.loss returns gradients for {', '.join(map(str, stray))}, which are not in "
                f"model.params: the solver updates only model.params, so they are never trained "
                f"(register them in __init__: self.params[{str(stray[0])!r}] = ...)")
    norm = config.split(",")[0]
    if norm in ("batchnorm", "layernorm") and not any(str(k).startswith("gamma") for k in params):
        return (f"built with {norm}, but gamma and beta are not in model.params: the solver never "
                "learns them (register them in __init__ as self.params['gamma1'], "
                "self.params['beta1'], ...)")
    return ""


SMALL_BATCH = 0.1  # the batch scaled so that the first normalisation sees a small variance


def _compare_small_batch(outcome: Outcome, built: Built, config: str) -> None:
    """A normalised FullyConnectedNet's loss on the batch scaled by :data:`SMALL_BATCH`,
    against the reference model's.

    Where normalisation's eps sits (inside the square root, 1e-5 by the course's
    ``bn_param.get("eps", 1e-5)``) shows in the output only where the variance it is added
    to is small: on the model's usual batch an eps outside the square root changes the loss
    by about 1e-6 relative, within the loss's tolerance, while the layer check of the same
    ``batchnorm_forward`` fails it. The scaled batch gives the first layer's activations a
    variance of about 0.01, as the course's own notebook check of this model does
    (``weight_scale=5e-2``); a right model agrees with the reference there to round-off.
    """
    from gradcheck.forward import describe_difference

    norm = config.split(",")[0]
    if (outcome.forward == "FAILED" or not built.references or "dropout" in config
            or norm not in ("batchnorm", "layernorm")):
        return
    X = built.X * SMALL_BATCH
    try:
        loss = np.real(np.asarray(built.model.loss(X, built.y)[0], dtype=np.complex128))
        want = [ref.fully_connected_net_loss(reference_params(built.model.params), X, built.y, REG, norm, f)
                for f in (1.0, 0.5)]
    except Exception:  # a crash is the gradient check's to report
        return
    if loss.size == 1 and all(describe_difference(loss.reshape(()), np.asarray(w)) for w in want):
        outcome.forward = "FAILED"
        outcome.forward_message = (
            f"on the same batch scaled by {SMALL_BATCH} (small variance before the first {norm}), "
            f"the loss is {float(loss.reshape(())):.8g}; the same model built from the reference "
            f"layers, with your parameters, gives {' or '.join(f'{float(w):.8g}' for w in want)}. "
            "The two agree on the unscaled batch: look at where eps enters your normalisation "
            "(the course divides by np.sqrt(var + eps), eps = 1e-5 unless the param dict gives one).")


def _compare_test_mode(outcome: Outcome, built: Built, name: str) -> None:
    """The scores of ``model.loss(X)`` (test mode: no ``y``) for the last two samples, alone
    and in the whole batch (the last: a mask drawn again from the same seed covers the first
    rows alike).

    The course's solver measures accuracy with ``model.loss(X)`` batch by batch: a sample's
    test-mode scores must not depend on the rest of the batch, which they do when batch norm
    normalises with the batch's statistics instead of the running averages, or dropout is
    still on. Made after the gradient check, so that train-mode calls have set the running
    averages."""
    if name == "CaptioningRNN" or outcome.forward == "FAILED":
        return
    try:
        results = built.model.loss(built.X, None), built.model.loss(built.X[-2:], None)
    except Exception as exc:  # the solver's accuracy check would raise the same
        text = f"{type(exc).__name__}: {exc}".strip()
        outcome.forward = "FAILED"
        outcome.forward_message = (f"model.loss(X) in test mode (no y, as the course's solver calls it "
                                   f"to measure accuracy) raised {text[:300]}")
        return
    if not all(isinstance(r, np.ndarray) and np.issubdtype(r.dtype, np.number) for r in results):
        return  # not scores (a model whose test mode returns something else): not judged here
    whole, alone = (np.asarray(r, dtype=np.float64) for r in results)
    if whole.ndim != 2 or alone.shape != (2, whole.shape[1]) or whole.shape[0] < 3:
        return
    scale = float(np.max(np.abs(whole[-2:]), initial=0.0))
    if np.max(np.abs(whole[-2:] - alone)) > 1e-8 * max(scale, 1e-300):
        outcome.forward = "FAILED"
        outcome.forward_message = (
            "in test mode (model.loss(X) without y, as the course's solver calls it to measure "
            "accuracy) the scores of a sample depend on the rest of the batch: the last two "
            f"samples score {np.array2string(alone[-1], precision=5)} (the last) alone but "
            f"{np.array2string(whole[-1], precision=5)} in the batch of {whole.shape[0]}. Test mode "
            "uses batch norm's running averages and no dropout: is mode 'test' set for every "
            "layer when y is None?")


def _compare_loss(outcome: Outcome, built: Built, first: tuple[Any, Any] | None) -> None:
    """The model's loss against the reference model's with the same parameters."""
    from gradcheck.forward import describe_difference, loss_shape_warning

    if first is None:
        return
    try:
        loss = np.real(np.asarray(first[0], dtype=np.complex128))
    except (TypeError, ValueError):
        return
    if loss.size != 1:
        return
    if loss.shape != ():
        outcome.add_warning(loss_shape_warning(loss.shape))
    if not built.references:
        return
    differences = [describe_difference(loss.reshape(()), np.asarray(r, dtype=np.float64))
                   for r in built.references]
    if all(differences):
        want = " or ".join(f"{float(r):.8g}" for r in built.references)
        outcome.forward = "FAILED"
        outcome.forward_message = (
            f"the loss is {float(loss):.8g}; the same model built from the reference layers, with "
            f"your parameters, gives {want}. A forward bug with a backward consistent with it "
            "passes a gradient check, so the loss is compared too.")
        for penalty, other in built.others:
            if not describe_difference(loss.reshape(()), np.asarray(other, dtype=np.float64)):
                outcome.forward_message += (
                    f" Yours is the loss with {penalty}, which this course's {outcome.functions[0]} "
                    "does not use (its notebook and tests compare the loss).")
