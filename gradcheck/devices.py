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
fails and passes once torch's default dtype is the check's.

torch is imported by this module: import it only when a torch layer is checked.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

__all__ = ["DEVICES", "Hazard", "TensorWatch", "resolve_device"]

DEVICES = ("auto", "cpu", "cuda")

# Functions that make a new tensor on the default device unless given device=.
_FACTORIES = frozenset({
    "zeros", "ones", "empty", "full", "rand", "randn", "randint", "randperm", "arange",
    "linspace", "logspace", "eye", "tensor", "as_tensor", "from_numpy",
})
# Operations that move a tensor, or copy across devices: no hazard, no mark kept.
_MOVES = frozenset({"to", "cuda", "type_as", "copy_", "cpu", "new_tensor"})
_MARK = "_gradcheck_created_at"


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
    """A tensor the layer made itself: on the wrong device (``kind="device"``), or of
    another dtype than the check's (``kind="dtype"``)."""

    kind: str
    function: str  # "torch.zeros"
    created: str  # "line 57 of fully_connected_networks.py (Linear.backward)"
    used: str = ""  # where it met the inputs' tensors (device hazards)
    dtype: str = ""


@dataclass
class _Found:
    hazards: dict[tuple[str, str], Hazard] = field(default_factory=dict)


class TensorWatch(TorchFunctionMode):
    """A torch function mode that records :class:`Hazard` s in the student's code.

    ``source`` is the student's file: sites are its lines. ``dtype`` is the check's
    floating dtype. Enter it around every call of the student's code.
    """

    def __init__(self, source: str, dtype: Any) -> None:
        super().__init__()
        self.source = os.path.abspath(source) if source else ""
        self.dtype = dtype
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
        if "device" not in kwargs and out.ndim >= 1:
            site = self._site()
            setattr(out, _MARK, (f"torch.{name}", site))
        if (out.is_floating_point() and out.dtype != self.dtype and "dtype" not in kwargs
                and out.ndim >= 1 and self.dtype is not None):
            site = site or self._site()
            self._record(Hazard("dtype", f"torch.{name}", site, dtype=str(out.dtype).replace("torch.", "")))

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
            self._record(Hazard("device", function, created, used=self._site()))
            return []
        return home

    def _record(self, hazard: Hazard) -> None:
        self._found.hazards.setdefault((hazard.kind, hazard.created), hazard)

    def _site(self) -> str:
        """The innermost line of the student's file on the stack, with its function."""
        frame = sys._getframe(2)
        while frame is not None:
            filename = os.path.abspath(frame.f_code.co_filename)
            if filename == self.source:
                where = getattr(frame.f_code, "co_qualname", frame.f_code.co_name)
                return f"line {frame.f_lineno} of {os.path.basename(filename)} ({where})"
            frame = frame.f_back  # type: ignore[assignment]
        return "a line outside your file"


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
