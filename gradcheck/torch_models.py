"""The torch course's models (EECS 498/598): found in a torch file, checked like CS231n's.

``TwoLayerNet``, ``FullyConnectedNet`` (plain and with dropout), ``ThreeLayerConvNet`` and
``DeepConvNet`` (plain and with batch norm) keep torch tensors in ``model.params`` and
take ``dtype=`` and ``device=``. Each is built small from its own signature, in float64
on the check's device, seeded (torch's generator too), through
:func:`gradcheck.torch_adapter.numpy_model`: the checker sees its parameters and its
``loss(X, y) -> (loss, grads)`` as numpy arrays, and the tensors never leave the process
that runs the student's code. Every parameter's gradient is checked against numerical
derivatives of the loss, and the loss against the same model built from the reference
layers, with the regularisation the course asks of that model (see
:data:`gradcheck.specs.eecs498.MODEL_REG_FACTORS`). A :class:`~gradcheck.devices.TensorWatch`
around every call finds tensors made without ``device=`` (parameters included) and on a
device written into the code.

Discovery imports no torch; checking does.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

from gradcheck.models import check_model_class, configurations, model_label
from gradcheck.options import CheckOptions
from gradcheck.outcome import Outcome
from gradcheck.specs.eecs498 import MODEL_REG_FACTORS

__all__ = ["check_torch_model", "find_torch_models"]

MakeModel = Callable[[bool, str], tuple[Any, Any]]


def find_torch_models(module: ModuleType) -> list[Any]:
    """A match of kind ``torch_model`` per configuration of each course model the (torch)
    module defines itself."""
    from gradcheck.discover import Match

    found = []
    for name in MODEL_REG_FACTORS:
        cls = vars(module).get(name)
        if isinstance(cls, type) and cls.__module__ == module.__name__:
            found += [Match(model_label(name, config), name, None, kind="torch_model", config=config)
                      for config in configurations(cls)]
    return found


def check_torch_model(module: ModuleType, name: str, config: str, options: CheckOptions,
                      make_model: MakeModel | None = None) -> Outcome:
    """Check ``module.name`` in ``config`` (see the module docstring).

    ``make_model(float64_default, device)`` gives the model's numpy-facing constructor and
    the record of the tensors its code makes; by default made here, in the judge's
    process by the worker (:mod:`gradcheck.judge`).
    """
    from gradcheck.devices import resolve_device, watched_check

    device = resolve_device(options.device)
    make = make_model or _local_model(module, name, options)

    def run(float64_default: bool) -> tuple[Outcome, Any]:
        constructor, watch = make(float64_default, device)
        return check_model_class(constructor, config, options, factors=MODEL_REG_FACTORS), watch

    return watched_check(run, options, device)


def _local_model(module: ModuleType, name: str, options: CheckOptions) -> MakeModel:
    """The model's numpy-facing constructor and tensor watch, made in this process."""
    import torch

    from gradcheck.devices import TensorWatch
    from gradcheck.torch_adapter import numpy_model

    def make(float64_default: bool, device: str) -> tuple[Any, Any]:
        watch = TensorWatch(getattr(module, "__file__", "") or "", getattr(torch, options.dtype), device)
        return numpy_model(getattr(module, name), device=device, seed=options.seed, watch=watch), watch

    return make
