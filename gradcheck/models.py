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

from gradcheck.model_build import BuildError, Built, build, parameters_of
from gradcheck.objects import check_model
from gradcheck.options import CheckOptions
from gradcheck.outcome import Outcome

__all__ = ["MODEL_NAMES", "check_model_config", "configurations", "find_models", "model_label"]

MODEL_NAMES = ("TwoLayerNet", "FullyConnectedNet", "ThreeLayerConvNet", "CaptioningRNN")


def configurations(cls: type) -> list[str]:
    """The configurations of ``cls`` to check, as labels ("" for a model with one)."""
    params = parameters_of(cls)
    name = cls.__name__
    if name == "CaptioningRNN":
        return ["rnn", "lstm"]
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
    opts = CheckOptions.build(options if options is not None else CheckOptions(mode="directional"),
                              **overrides)
    seed = opts.seed
    started = time.monotonic()
    outcome = Outcome(spec=model_label(name, config), functions=(name, None), kind="model")
    try:
        built = build(getattr(module, name), config, seed)
    except BuildError as exc:
        outcome.forward = "FAILED"
        outcome.forward_message = str(exc)
        outcome.seconds = time.monotonic() - started
        return outcome
    outcome.failing_case = built.describe()
    _compare_loss(outcome, built)
    report = check_model(built.model, built.X, built.y, options=opts)
    report.label = outcome.spec
    outcome.n_cases = 1
    outcome.n_evaluations = report.n_evaluations
    outcome.gradients = {}
    outcome.take_verdicts(report)
    for warning in report.warnings:
        outcome.add_warning(warning)
    if not report.passed or outcome.forward != "ok":
        outcome.report = report
        outcome.report_text = str(report)
    else:
        outcome.failing_case = None
    outcome.notes += built.notes
    outcome.seconds = time.monotonic() - started
    return outcome


def _compare_loss(outcome: Outcome, built: Built) -> None:
    """The model's loss against the reference model's with the same parameters."""
    from gradcheck.forward import describe_difference

    if not built.references:
        return
    try:
        loss = np.real(np.asarray(built.model.loss(built.X, built.y)[0], dtype=np.complex128))
    except Exception:  # the gradient check reports the crash
        return
    if loss.size != 1:
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
