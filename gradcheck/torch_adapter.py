"""Optional: torch code checked with the numpy machinery, through one adapter.

The checker works on numpy arrays. :func:`numpy_pair` turns a forward/backward pair (or a
loss) written for torch tensors into one on numpy arrays, through the conversion every
array library shares (:mod:`gradcheck.array_conversion`) with :class:`TorchLibrary`: each
floating or integer array becomes a tensor on the chosen device (on the CPU, sharing
memory, so that a write into an input or into ``dout`` is seen by the contract checks as
it would be in numpy; elsewhere copied back after the call), dict arguments (``bn_param``)
get tensors for arrays and their updates copied back as arrays, and results come back as
numpy arrays in the check's dtype, so that a float32 intermediate is judged at float64
tolerances in a float64 check. Complex inputs are refused with a reason: the complex step
does not pass through torch, so the numeric method falls back to central differences and
Richardson extrapolation.

``gradcheck.check_torch(MyFunction.apply, x, w)`` is one case of it (see
:mod:`gradcheck.array_api`): the pair is :func:`autograd_pair`, the function's forward and
torch's autograd through its own ``backward``. :func:`numpy_model` does the
same for a model (``model.params`` of tensors, ``model.loss(X, y) -> (loss, grads)``, the
EECS 498/598 ``TwoLayerNet`` ... ``DeepConvNet``): the checker and the channel to the
worker see a :class:`NumpyModel`, whose ``params`` and ``loss`` are numpy arrays. torch is
imported only when this module's functions are called.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from gradcheck import array_conversion
from gradcheck.array_conversion import ArrayLibrary, Conversion, dtype_of

__all__ = ["COMPLEX_REFUSED", "NumpyModel", "TorchLibrary", "autograd_pair", "numpy_model", "numpy_pair"]

COMPLEX_REFUSED = ("torch code is checked by finite differences: the complex step does not "
                   "pass through torch operations")


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("check_torch needs torch: pip install torch (any recent version; see "
                          "https://pytorch.org for a CPU-only build)") from exc
    return torch


class TorchLibrary(ArrayLibrary):
    """torch tensors on ``device``: on the CPU sharing memory with the checker's arrays
    (``torch.from_numpy``), elsewhere copies; complex inputs refused
    (:data:`COMPLEX_REFUSED`)."""

    name = "torch"
    complex_refused = COMPLEX_REFUSED

    def __init__(self, device: str = "cpu") -> None:
        self.torch = _torch()
        self.device = device

    def is_array(self, value: Any) -> bool:
        return isinstance(value, self.torch.Tensor)

    def shared(self, array: np.ndarray) -> Any:
        return self.torch.from_numpy(array) if self.device == "cpu" else None

    def copied(self, array: np.ndarray) -> Any:
        return self.torch.tensor(array, device=self.device)

    def device_of(self, value: Any) -> Any:
        return "cpu" if value.device.type == "cpu" else str(value.device)

    def to_numpy(self, value: Any) -> np.ndarray:
        return np.array(value.detach().cpu().resolve_conj().numpy())


def numpy_pair(
    forward: Callable[..., Any],
    backward: Callable[..., Any] | None,
    *,
    device: str = "cpu",
    watch: Any = None,
    label: str | None = None,
) -> tuple[Callable[..., Any], Callable[..., Any] | None]:
    """``forward``/``backward`` on tensors as functions on numpy arrays (see the module).

    ``backward=None`` is a loss ``loss(x, ...) -> (loss, dx)``. ``watch`` is a torch
    function mode entered around every call (:class:`gradcheck.devices.TensorWatch`).
    ``label`` names the functions (``Linear``: ``Linear.forward``/``Linear.backward``).
    """
    return array_conversion.numpy_pair(forward, backward, TorchLibrary(device), watch=watch, label=label)


class NumpyModel:
    """A torch model seen through numpy arrays: ``params`` is a plain dict of arrays (what
    the next :meth:`loss` hands the model, as fresh tensors on the device), ``loss(X, y)``
    takes and returns arrays (the loss and every gradient in ``X``'s dtype). What is not a
    tensor stays as it is (the checker reports what it cannot use)."""

    def __init__(self, model: Any, device: str, watch: Any = None) -> None:
        self.model, self.device, self.watch = model, device, watch
        params = getattr(model, "params", None)
        if isinstance(params, dict):
            if watch is not None:
                for key, value in params.items():
                    watch.kept(f"model.params[{key!r}]", value)
            conversion = Conversion(TorchLibrary(device))
            params = {key: conversion.array(value, None) for key, value in params.items()}
        self.params: Any = params

    def loss(self, X: Any, y: Any = None) -> Any:
        conversion = Conversion(TorchLibrary(self.device))
        tensors = self.model.params
        for key, value in self.params.items():
            if isinstance(value, np.ndarray):  # a copy: what the model writes into it stays its own
                tensors[key] = conversion.handed(np.array(value))
        with self.watch if self.watch is not None else contextlib.nullcontext():
            result = self.model.loss(conversion.handed(X), conversion.handed(y))
        return conversion.arrays(result, dtype_of((X,)))

    def gradcheck_loss_at(self, values: dict[str, Any], X: Any, y: Any = None) -> Any:
        """:meth:`loss` with the parameters in ``values`` in place of ``params`` (which stay
        as they are): the checker's one call per evaluation."""
        kept = self.params
        self.params = {**kept, **values}
        try:
            return self.loss(X, y)
        finally:
            self.params = kept


def numpy_model(cls: type, *, device: str = "cpu", seed: int = 0,
                watch: Any = None) -> Callable[..., NumpyModel]:
    """``cls``'s constructor, making :class:`NumpyModel` s: named and signed as ``cls``, with
    ``dtype=`` given as a NumPy type turned into torch's, ``device=`` set (when the
    constructor takes it and it is not given), and torch's and NumPy's global generators
    seeded with ``seed`` first (the course's constructors draw from them)."""
    torch = _torch()
    signature = inspect.signature(cls)

    def make(*args: Any, **kwargs: Any) -> NumpyModel:
        dtype = kwargs.get("dtype")
        if isinstance(dtype, type) and issubclass(dtype, np.generic):
            kwargs["dtype"] = getattr(torch, np.dtype(dtype).name)
        if "device" in signature.parameters:
            kwargs.setdefault("device", device)
        torch.manual_seed(seed)
        np.random.seed(seed)  # noqa: NPY002 - the course's code may draw from it
        with watch if watch is not None else contextlib.nullcontext():
            model = cls(*args, **kwargs)
        return NumpyModel(model, device, watch)

    make.__name__, make.__qualname__, make.__doc__ = cls.__name__, cls.__qualname__, cls.__doc__
    make.__module__ = cls.__module__
    make.__signature__ = signature  # type: ignore[attr-defined]
    return make


def autograd_pair(fn: Callable[..., Any]) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """``fn(*tensors) -> tensor(s)`` (an autograd Function's ``apply``) as a pair on tensors:
    the forward keeps the graph in its cache, the backward is torch's autograd through it."""
    torch = _torch()

    def forward(*args: Any) -> tuple[Any, ...]:
        leaves = [a.detach().requires_grad_(True) if isinstance(a, torch.Tensor) and a.is_floating_point()
                  else a for a in args]
        with torch.enable_grad():
            out = fn(*leaves)
        outs = out if isinstance(out, tuple) else (out,)
        return (*[o.detach() for o in outs], (leaves, outs))

    def backward(*args: Any) -> tuple[Any, ...]:
        *douts, (leaves, outs) = args
        wrt = [t for t in leaves if isinstance(t, torch.Tensor) and t.requires_grad]
        grads = torch.autograd.grad(outs, wrt, grad_outputs=douts, allow_unused=True, retain_graph=True)
        return tuple(torch.zeros_like(t) if g is None else g for g, t in zip(grads, wrt))

    return forward, backward
