"""Layers written in torch tensors: EECS 498/598's classes and torch files' functions.

Discovery (no torch import): a file that works in torch (it imports torch, and not numpy
or less than torch) gets its CS231n-named functions checked through the torch adapter,
and the course's classes with ``forward``/``backward`` methods (``Linear``, ``ReLU``,
``BatchNorm`` with ``backward_alt``, ...) are found under their class names.

Checking: the student's methods become functions on numpy arrays
(:func:`gradcheck.torch_adapter.numpy_pair`) and go through the same checker as any
CS231n pair: generated cases, the forward against the reference, gradients against
numerics (central differences and Richardson: the complex step does not pass through
torch), shrunk failures, diagnoses. A :class:`~gradcheck.devices.TensorWatch` around every
call finds tensors made without ``device=`` (a warning on the CPU) and float32 tensors
made inside a float64 check (named when a gradient fails because of them).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from types import ModuleType
from typing import Any

from gradcheck.array_layers import computes_with
from gradcheck.options import CheckOptions
from gradcheck.outcome import Outcome
from gradcheck.specs.eecs498 import CLASS_LAYERS, COURSE_CODE, course_spec
from gradcheck.torch_models import find_torch_models

__all__ = ["check_torch_match", "find_torch_layers", "is_torch_module"]


def is_torch_module(module: ModuleType) -> bool:
    """Whether the module computes with torch: it imports torch and not numpy, or uses
    ``torch.`` more often than ``np.`` in its source."""
    return computes_with(module, "torch")


def find_torch_layers(module: ModuleType, matches: list[Any]) -> list[Any]:
    """The matches of a torch file: its function matches as torch ones (CS231n's models and
    naive-vs-vectorized agreements dropped), the course's layer classes and its models
    (:func:`gradcheck.torch_models.find_torch_models`). A numpy file's matches come back
    unchanged."""
    from gradcheck.discover import Match

    if not is_torch_module(module):
        return matches
    found = [Match(m.spec, m.forward, m.backward, kind="torch", config=m.spec)
             for m in matches if m.kind == "layer"]
    for name, cls in vars(module).items():
        if not isinstance(cls, type) or cls.__module__ != module.__name__ or name in COURSE_CODE:
            continue
        for spec, forward, backward in CLASS_LAYERS.get(name, ()):
            if callable(getattr(cls, forward, None)) and callable(getattr(cls, backward, None)):
                label = name if backward == "backward" else f"{name}.{backward}"
                found.append(Match(label, f"{name}.{forward}", f"{name}.{backward}", kind="torch",
                                   config=spec))
    return found + find_torch_models(module)


def resolve(module: ModuleType, dotted: str) -> Callable[..., Any]:
    """``Linear.forward`` of the module; a plain method taking ``self`` is bound to an
    instance made without arguments."""
    owner, _, method = dotted.rpartition(".")
    if not owner:
        return getattr(module, method)
    cls = getattr(module, owner)
    fn = getattr(cls, method)
    params = list(inspect.signature(fn).parameters)
    if isinstance(inspect.getattr_static(cls, method), staticmethod) or not params or params[0] != "self":
        return fn
    return getattr(cls(), method)


def check_torch_match(module: ModuleType, spec_name: str, label: str, forward: str,
                      backward: str | None, options: CheckOptions,
                      make_pair: Callable[[bool, str], tuple[Any, Any, Any]] | None = None) -> Outcome:
    """Check one torch layer of ``module`` (see the module docstring).

    ``make_pair(float64_default, device)`` gives the layer as numpy functions and the
    record of the tensors it makes (:class:`~gradcheck.devices.TensorWatch`); by default
    made here, in the judge's process by the worker (:mod:`gradcheck.judge`).
    """
    from gradcheck.candidate import check_candidate
    from gradcheck.devices import resolve_device, watched_check
    from gradcheck.specs import get_spec

    spec = course_spec(get_spec(spec_name))
    device = resolve_device(options.device)
    make = make_pair or _local_pair(module, forward, backward, options)

    def run(float64_default: bool) -> tuple[Outcome, Any]:
        pair_forward, pair_backward, watch = make(float64_default, device)
        return check_candidate(spec, pair_forward, pair_backward, options), watch

    outcome = watched_check(run, options, device)
    outcome.spec = label
    outcome.kind = "layer"
    outcome.functions = (forward, backward)
    return outcome


def _local_pair(module: ModuleType, forward: str, backward: str | None,
                options: CheckOptions) -> Callable[[bool, str], tuple[Any, Any, Any]]:
    """The layer's numpy pair and tensor watch, made in this process."""
    import torch

    from gradcheck.devices import TensorWatch
    from gradcheck.torch_adapter import numpy_pair

    def make(float64_default: bool, device: str) -> tuple[Any, Any, Any]:
        watch = TensorWatch(getattr(module, "__file__", "") or "", getattr(torch, options.dtype), device)
        pair = numpy_pair(resolve(module, forward), resolve(module, backward) if backward else None,
                          device=device, watch=watch, label=forward.rpartition(".")[0] or None)
        return pair[0], pair[1], watch

    return make
