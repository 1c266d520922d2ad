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

from gradcheck.contract import Violation
from gradcheck.kinds import ViolationKind
from gradcheck.options import CheckOptions
from gradcheck.outcome import Outcome
from gradcheck.specs.eecs498 import CLASS_LAYERS, COURSE_CODE, NOT_CHECKED, course_spec

__all__ = ["check_torch_match", "find_torch_layers", "is_torch_module"]


def is_torch_module(module: ModuleType) -> bool:
    """Whether the module computes with torch: it imports torch and not numpy, or uses
    ``torch.`` more often than ``np.`` in its source."""
    roots = {v.__name__.split(".")[0] for v in vars(module).values() if isinstance(v, ModuleType)}
    if "torch" not in roots:
        return False
    if "numpy" not in roots:
        return True
    try:
        source = inspect.getsource(module)
    except (OSError, TypeError):
        return False
    return source.count("torch.") > source.count("np.") + source.count("numpy.")


def find_torch_layers(module: ModuleType, matches: list[Any], skipped: list[str]) -> list[Any]:
    """The matches of a torch file: its function matches as torch ones (models and
    naive-vs-vectorized agreements dropped) plus the course's classes; classes not checked
    go to ``skipped`` with the reason. A numpy file's matches come back unchanged."""
    from gradcheck.discover import Match

    if not is_torch_module(module):
        return matches
    found = [Match(m.spec, m.forward, m.backward, kind="torch", config=m.spec)
             for m in matches if m.kind == "layer"]
    for name, cls in vars(module).items():
        if not isinstance(cls, type) or cls.__module__ != module.__name__ or name in COURSE_CODE:
            continue
        if name in NOT_CHECKED:
            skipped.append(f"{name}: {NOT_CHECKED[name]}")
        for spec, forward, backward in CLASS_LAYERS.get(name, ()):
            if callable(getattr(cls, forward, None)) and callable(getattr(cls, backward, None)):
                label = name if backward == "backward" else f"{name}.{backward}"
                found.append(Match(label, f"{name}.{forward}", f"{name}.{backward}", kind="torch",
                                   config=spec))
    return found


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
    import torch

    from gradcheck.candidate import check_candidate
    from gradcheck.devices import resolve_device
    from gradcheck.specs import get_spec

    spec = course_spec(get_spec(spec_name))
    device = resolve_device(options.device)
    make = make_pair or _local_pair(module, forward, backward, options)

    def run(float64_default: bool = False) -> tuple[Outcome, Any]:
        pair_forward, pair_backward, watch = make(float64_default, device)
        return check_candidate(spec, pair_forward, pair_backward, options), watch

    threads = torch.get_num_threads()
    # Tiny tensors: one thread. Several threads waiting on each other on a busy machine
    # (layers are checked in parallel) cost milliseconds per operation.
    torch.set_num_threads(1)
    try:
        outcome, watch = run()
        if not outcome.passed and watch.of_kind("dtype") and options.dtype == "float64":
            _float32_culprit(outcome, watch, run)
    finally:
        torch.set_num_threads(threads)
    outcome.spec = label
    outcome.kind = "layer"
    outcome.functions = (forward, backward)
    _device_verdict(outcome, watch, device)
    return outcome


def _local_pair(module: ModuleType, forward: str, backward: str | None,
                options: CheckOptions) -> Callable[[bool, str], tuple[Any, Any, Any]]:
    """The layer's numpy pair and tensor watch, made in this process."""
    import torch

    from gradcheck.devices import TensorWatch
    from gradcheck.torch_adapter import numpy_pair

    def make(float64_default: bool, device: str) -> tuple[Any, Any, Any]:
        watch = TensorWatch(getattr(module, "__file__", "") or "", getattr(torch, options.dtype))
        pair = numpy_pair(resolve(module, forward), resolve(module, backward) if backward else None,
                          device=device, watch=watch, label=forward.rpartition(".")[0] or None)
        return pair[0], pair[1], watch

    return make


def _sites(hazards: list[Any], limit: int = 3) -> str:
    shown = [f"{h.function} at {h.created}" + (f", combined with the inputs at {h.used}" if h.used else "")
             for h in hazards[:limit]]
    more = f" (and {len(hazards) - limit} more)" if len(hazards) > limit else ""
    return "; ".join(shown) + more


def _device_verdict(outcome: Outcome, watch: Any, device: str) -> None:
    hazards = watch.of_kind("device")
    if not hazards:
        return
    text = (f"a tensor created without device=: {_sites(hazards)}. It is made on the CPU "
            "whatever device the inputs are on")
    if device == "cpu":
        outcome.add_warning(Violation(
            ViolationKind.DEVICE, f"{text}: this passes on the CPU and fails when the course runs on cuda. "
            "Pass device=x.device (and dtype=x.dtype), or use torch.zeros_like(x)."))
    else:
        outcome.notes.append(f"{text}: on {device} that operation fails. Pass device=x.device.")


def _float32_culprit(outcome: Outcome, watch: Any, run: Callable[[bool], tuple[Outcome, Any]]) -> None:
    """Failed with float32 tensors made inside a float64 check: if the layer passes once
    torch's default dtype is float64, those tensors are the cause; say so."""
    import torch

    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        again, _ = run(True)
    finally:
        torch.set_default_dtype(previous)
    if not again.passed:
        return
    outcome.contract.append("float32_intermediate")
    outcome.notes.insert(0, (
        f"float32 intermediate: {_sites(watch.of_kind('dtype'))} makes a float32 tensor (torch's "
        "default dtype) inside this float64 check, and the layer passes once torch's default "
        "dtype is float64: that float32 tensor is the cause. Pass dtype=x.dtype (or use "
        "torch.zeros_like(x))."))
