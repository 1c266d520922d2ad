"""Where a torch layer's tensors live, and the hazards of tensors it creates itself.

A layer checked on the CPU can still be one that breaks on the GPU the course runs it on:
``torch.zeros(*x.shape)`` without ``device=`` makes a CPU tensor, and the first operation
that combines it with the inputs fails on CUDA. :class:`TensorWatch` sees this where it
happens, through a torch function mode: every tensor a factory makes without ``device=``
is marked (and what is computed from marked tensors alone stays marked); an operation that
combines a marked tensor with the inputs' tensors is recorded with the student's line of
the creation and of the use. On the CPU that is a warning, on CUDA the operation raises.

Factories that make a floating tensor of another dtype than the check's (torch's default
float32 inside a float64 check) are recorded too: the checker names them when a gradient
fails and passes once torch's default dtype is the check's. So is a tensor asked for on
another device than the check's (``device='cuda'`` written into the layer, ``.cuda()``):
on a machine without CUDA it raises, and the verdict says why instead of a traceback.
A model's parameters made without ``device=`` are recorded where the model keeps them.

:func:`watched_check` runs a torch check and turns what the watch saw into verdicts.

torch is imported by this module: import it only when a torch layer is checked.
"""

from __future__ import annotations

import contextlib
import linecache
import os
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from gradcheck.contract import Violation
from gradcheck.kinds import ViolationKind
from gradcheck.options import CheckOptions
from gradcheck.outcome import Outcome

__all__ = ["DEVICES", "Hazard", "TensorWatch", "resolve_device", "watched_check"]

DEVICES = ("auto", "cpu", "cuda")

# Functions that make a new tensor on the default device unless given device=.
_FACTORIES = frozenset({
    "zeros", "ones", "empty", "full", "rand", "randn", "randint", "randperm", "arange",
    "linspace", "logspace", "eye", "tensor", "as_tensor", "from_numpy",
})
# Operations that move a tensor, or copy across devices: no hazard, no mark kept.
_MOVES = frozenset({"to", "cuda", "type_as", "copy_", "cpu", "new_tensor"})
_MARK = "_gradcheck_created_at"
_WRITTEN_CPU = re.compile(r"device\s*=\s*(torch\.device\(\s*)?['\"]cpu['\"]")


def resolve_device(device: str) -> str:
    """``auto`` becomes ``cuda`` when a GPU is usable, else ``cpu``; ``cuda`` without a GPU
    is a ``ValueError`` naming the option."""
    if device not in DEVICES:
        raise ValueError(f"device={device!r} is not one of {', '.join(DEVICES)}")
    available = torch.cuda.is_available()
    if device == "auto":
        return "cuda" if available else "cpu"
    if device == "cuda" and not available:
        raise ValueError("device='cuda' cannot be used: torch finds no CUDA device here "
                         "(torch.cuda.is_available() is False); use --device cpu or auto")
    return device


@dataclass(frozen=True)
class Hazard:
    """A tensor the layer made itself: made without ``device=`` (``kind="device"``), of
    another dtype than the check's (``kind="dtype"``), or asked for on another device than
    the check's (``kind="fixed_device"``, ``device`` the one asked for)."""

    kind: str
    function: str  # "torch.zeros"
    created: str  # "line 57 of fully_connected_networks.py (Linear.backward)"
    used: str = ""  # "combined with the inputs at line 60 of ...", "kept in model.params['b1']"
    dtype: str = ""
    device: str = ""


@dataclass
class _Found:
    hazards: dict[tuple[str, str], Hazard] = field(default_factory=dict)


class TensorWatch(TorchFunctionMode):
    """A torch function mode that records :class:`Hazard` s in the student's code.

    ``source`` is the student's file: sites are its lines. ``dtype`` is the check's
    floating dtype, ``device`` the device of its inputs. Enter it around every call of the
    student's code.
    """

    def __init__(self, source: str, dtype: Any, device: str = "cpu") -> None:
        super().__init__()
        self.source = os.path.abspath(source) if source else ""
        self.dtype = dtype
        self.device = torch.device(device).type
        self._found = _Found()

    @property
    def hazards(self) -> list[Hazard]:
        return list(self._found.hazards.values())

    def of_kind(self, kind: str) -> list[Hazard]:
        return [h for h in self.hazards if h.kind == kind]

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        factory = name in _FACTORIES and getattr(func, "__module__", None) == "torch"
        home = [] if factory or name in _MOVES else self._combined(name, args, kwargs)
        self._fixed_device(name, func, args, kwargs)
        out = func(*args, **kwargs)  # on CUDA, a combination of devices raises here
        if factory:
            self._created(name, args, kwargs, out)
        elif name in _MOVES:
            _moved(name, args, kwargs, out)
        elif home and isinstance(out, torch.Tensor) and out is not home[0]:
            with contextlib.suppress(AttributeError, RuntimeError):
                setattr(out, _MARK, getattr(home[0], _MARK))
        return out

    def _created(self, name: str, args: Any, kwargs: Any, out: Any) -> None:
        if not isinstance(out, torch.Tensor):
            return
        if name in ("tensor", "as_tensor") and args and isinstance(args[0], torch.Tensor):
            return  # follows the tensor it was given
        site = None
        written = "device" in kwargs and self._written_cpu(kwargs["device"])
        if ("device" not in kwargs or written) and out.ndim >= 1:
            site = self._site()
            setattr(out, _MARK, (f"torch.{name}(device='cpu')" if written else f"torch.{name}", site))
        if (out.is_floating_point() and out.dtype != self.dtype and "dtype" not in kwargs
                and out.ndim >= 1 and self.dtype is not None):
            site = site or self._site()
            self._record(Hazard("dtype", f"torch.{name}", site, dtype=str(out.dtype).replace("torch.", "")))

    def _written_cpu(self, value: Any) -> bool:
        """``device='cpu'`` (or ``torch.device("cpu")``) written into the student's line, in a
        check on the CPU: it works here as a tensor made without ``device=`` does, and
        fails the same way on cuda (on cuda itself it is a ``fixed_device``)."""
        try:
            on_cpu = torch.device(value).type == "cpu" == self.device
        except (RuntimeError, TypeError):
            return False
        return on_cpu and bool(_WRITTEN_CPU.search(self._line()))

    def _line(self) -> str:
        """The text of the innermost line of the student's file on the stack."""
        frame = self._student_frame()
        return linecache.getline(frame.f_code.co_filename, frame.f_lineno) if frame else ""

    def _student_frame(self) -> FrameType | None:
        """The innermost frame of the student's file on the stack, or None."""
        frame = sys._getframe(1)
        while frame is not None and os.path.abspath(frame.f_code.co_filename) != self.source:
            frame = frame.f_back  # type: ignore[assignment]
        return frame

    def _combined(self, name: str, args: Any, kwargs: Any) -> list[Any]:
        """Record a marked tensor meeting the inputs' tensors; returns the marked operands
        when there are only such (the result is marked too)."""
        operands = list(_tensors(args[:1] + args[2:3] if name == "__setitem__"
                                 else args[:1] if name == "__getitem__" else (args, kwargs)))
        home = [t for t in operands if getattr(t, _MARK, None) is not None and t.ndim >= 1]
        if not home:
            return []
        if any(getattr(t, _MARK, None) is None for t in operands):
            function, created = getattr(home[0], _MARK)
            used = f"combined with the inputs at {self._site()}"
            self._record(Hazard("device", function, created, used=used))
            return []
        return home

    def _fixed_device(self, name: str, func: Any, args: Any, kwargs: Any) -> None:
        """Record a tensor asked for on another device than the inputs' (before the call,
        which raises when that device is not there)."""
        wanted = [kwargs.get("device")] if "device" in kwargs else []
        if name == "to":
            wanted += [a for a in args[1:] if isinstance(a, (str, torch.device))]
        elif name == "cuda":
            wanted.append(args[1] if len(args) > 1 and isinstance(args[1], (str, torch.device)) else "cuda")
        for value in wanted:
            try:
                device = torch.device(value) if isinstance(value, (str, torch.device)) else None
            except RuntimeError:
                device = None
            if device is not None and device.type != self.device:
                function = f"torch.{name}" if getattr(func, "__module__", None) == "torch" else f".{name}()"
                self._record(Hazard("fixed_device", function, self._site(), device=str(device)))

    def kept(self, where: str, value: Any) -> None:
        """``value`` is kept by the code as ``where`` (a model's ``params[...]``): if it is a
        tensor made without ``device=``, that is a device hazard there."""
        mark = getattr(value, _MARK, None) if isinstance(value, torch.Tensor) else None
        if mark is not None:
            self._record(Hazard("device", mark[0], mark[1], used=f"kept in {where}"))
        if (isinstance(value, torch.Tensor) and value.is_floating_point() and self.dtype is not None
                and value.dtype != self.dtype):
            self._record(Hazard("param_dtype", where, where, dtype=str(value.dtype).replace("torch.", "")))

    def _record(self, hazard: Hazard) -> None:
        self._found.hazards.setdefault((hazard.kind, hazard.created), hazard)

    def _site(self) -> str:
        """The innermost line of the student's file on the stack, with its function."""
        frame = self._student_frame()
        if frame is None:
            return "a line outside your file"
        where = getattr(frame.f_code, "co_qualname", frame.f_code.co_name)
        return f"line {frame.f_lineno} of {os.path.basename(self.source)} ({where})"


def _moved(name: str, args: Any, kwargs: Any, out: Any) -> None:
    """A move to a device (``.to(x.device)``, ``.to(x)``, ``.cuda()``, ``.type_as(x)``)
    clears the mark, even when the tensor is already there and comes back unchanged; a
    dtype-only ``.to`` keeps it."""
    if not isinstance(out, torch.Tensor) or not args or getattr(args[0], _MARK, None) is None:
        return
    targets = (torch.device, str, torch.Tensor)
    if name in ("cuda", "type_as") or "device" in kwargs or any(isinstance(a, targets) for a in args[1:]):
        if getattr(out, _MARK, None) is not None:
            delattr(out, _MARK)
    elif name == "to" and out is not args[0]:
        setattr(out, _MARK, getattr(args[0], _MARK))


def _tensors(value: Any) -> Iterator[Any]:
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item)


def watched_check(run: Callable[[bool], tuple[Outcome, Any]], options: CheckOptions, device: str) -> Outcome:
    """``run(float64_default)``: a check of torch code with the :class:`TensorWatch` (or the
    worker's record of it) around its calls, on one thread; then what the watch saw, as
    verdicts: float32 tensors named when they are why a float64 check failed, a tensor on a
    fixed other device (FAILED, said plainly), tensors made without ``device=`` (a warning
    on the CPU)."""
    threads = torch.get_num_threads()
    # Tiny tensors: one thread. Several threads waiting on each other on a busy machine
    # (layers are checked in parallel) cost milliseconds per operation.
    torch.set_num_threads(1)
    try:
        outcome, watch = run(False)
        if not outcome.passed and watch.of_kind("dtype") and options.dtype == "float64":
            _float32_culprit(outcome, watch, run)
    finally:
        torch.set_num_threads(threads)
    _fixed_device_verdict(outcome, watch.of_kind("fixed_device"), device)
    _device_verdict(outcome, watch.of_kind("device"), device)
    _param_dtype_verdict(outcome, watch.of_kind("param_dtype"), options.dtype)
    return outcome


def _param_dtype_verdict(outcome: Outcome, hazards: list[Any], dtype: str) -> None:
    """Parameters the constructor made in another dtype than the ``dtype=`` it was given:
    checked in that dtype here (converted), but the course's notebook checks the model's
    gradients in float64, where float32 parameters give errors of 1e-3 and more."""
    if not hazards:
        return
    kept = ", ".join(f"{h.function} ({h.dtype})" for h in hazards[:4]) + (" ..." if len(hazards) > 4 else "")
    text = (f"the model was built with dtype=torch.{dtype}, but keeps {kept}: gradcheck converted them to "
            f"{dtype}. The course's notebook checks this model's gradients in {dtype}, where they fail: pass "
            "dtype=dtype (and device=device) to every tensor the constructor makes.")
    if outcome.passed:
        outcome.add_warning(Violation(ViolationKind.PARAM_DTYPE, text))
    else:
        outcome.notes.append(text)


def _sites(hazards: list[Any], limit: int = 3) -> str:
    shown = [f"{h.function} at {h.created}" + (f", {h.used}" if h.used else "") for h in hazards[:limit]]
    more = f" (and {len(hazards) - limit} more)" if len(hazards) > limit else ""
    return "; ".join(shown) + more


def _device_verdict(outcome: Outcome, hazards: list[Any], device: str) -> None:
    if not hazards:
        return
    text = (f"a tensor created without device= (or with device='cpu' written into the code): "
            f"{_sites(hazards)}. It is made on the CPU whatever device the inputs are on")
    if device == "cpu":
        outcome.add_warning(Violation(
            ViolationKind.DEVICE, f"{text}: this passes on the CPU and fails when the course runs on cuda. "
            "Pass device=x.device (and dtype=x.dtype), or use torch.zeros_like(x)."))
    else:
        outcome.notes.append(f"{text}: on {device} that operation fails. Pass device=x.device.")


def _fixed_device_verdict(outcome: Outcome, hazards: list[Any], device: str) -> None:
    """A tensor asked for on another device than the inputs': the layer cannot run with
    inputs on ``device`` (the course runs it on the CPU and on cuda). Said plainly, in place
    of the traceback of the error it raised."""
    if not hazards:
        return
    wanted = sorted({h.device for h in hazards})
    missing = [d for d in wanted if d.startswith("cuda") and not torch.cuda.is_available()]
    text = (f"creates a tensor on {' and '.join(wanted)} ({_sites(hazards)}) while the inputs are on "
            f"{device}" + (": this machine has no CUDA device, so it cannot run here" if missing else "")
            + ". The course runs the same code on the CPU and on cuda: make every tensor on the inputs' "
            "device (device=x.device, torch.zeros_like(x)), never on a device written into the code.")
    if outcome.passed:
        outcome.add_warning(Violation(ViolationKind.DEVICE, text))
        return
    outcome.contract.append(ViolationKind.FIXED_DEVICE)
    if outcome.forward == "FAILED":
        raised = outcome.forward_message.strip().splitlines()[:1]
        outcome.forward_message = text + (f" (what it raised: {raised[0]})" if raised else "")
    else:
        outcome.notes.insert(0, text)


def _float32_culprit(outcome: Outcome, watch: Any, run: Callable[[bool], tuple[Outcome, Any]]) -> None:
    """Failed with float32 tensors made inside a float64 check: if the layer passes once
    torch's default dtype is float64, those tensors are the cause; say so."""
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
