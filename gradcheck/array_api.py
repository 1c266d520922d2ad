"""Any array library that follows the array API standard, checked on its own device.

:func:`check_array_api` checks a pair (or a loss) written for an array API namespace
(``array_api_strict``, CuPy, NumPy, torch, anything ``array_api_compat.array_namespace``
knows): its inputs are that library's arrays, on their device (or numpy arrays and
``xp=``), and the checker sees numpy copies of them; every call of the user's code gets
the library's arrays again, through the one conversion of every library
(:mod:`gradcheck.array_conversion`) with a :class:`NamespaceLibrary`. torch is one case:
its namespace gets :class:`gradcheck.torch_adapter.TorchLibrary`, and :func:`check_torch`
(a ``torch.autograd.Function``) is a call of :func:`check_array_api`.

Numerics are those of every check, in float64: a device without float64 is refused. The
complex step is used where the namespace has complex128 on the device and the forward's
operations take it (``array_api_strict``'s ``maximum`` and comparisons do not: a ReLU is
checked by central differences and Richardson extrapolation, and the report says why).

``array_api_compat`` (and the library) is imported only when these functions are called:
``pip install 'gradcheck[arrays]'``.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from gradcheck.array_conversion import ArrayLibrary, Conversion, numpy_pair
from gradcheck.report import Report
from gradcheck.torch_adapter import TorchLibrary, autograd_pair

__all__ = ["LibraryUnusable", "NamespaceLibrary", "check_array_api", "check_torch", "host_arguments",
           "open_library"]

INSTALL = "pip install 'gradcheck[arrays]' (or: pip install array-api-compat)"
# Why a library may install and still make no array here.
_NEEDS = {"cupy": "CuPy needs an NVIDIA GPU with CUDA, and this machine has none usable"}
_ERRORS = (BufferError, TypeError, ValueError, RuntimeError, AttributeError, NotImplementedError)


class LibraryUnusable(ValueError):
    """The array library is installed but cannot make arrays here (CuPy without a GPU)."""


def _compat() -> Any:
    try:
        import array_api_compat
    except ImportError as exc:
        raise ImportError(f"checking array API code needs array-api-compat: {INSTALL}") from exc
    return array_api_compat


class NamespaceLibrary(ArrayLibrary):
    """The arrays of the array API namespace ``xp`` on ``device`` (``None``: its default).

    Shared with the checker's arrays through DLPack where the namespace can (on the host),
    copies elsewhere. Raises ``ValueError`` naming ``device`` when the namespace cannot
    make float64 arrays there.
    """

    def __init__(self, xp: Any, device: Any = None, name: str = "") -> None:
        self.compat = _compat()
        self.xp = xp
        self.name = name or library_name(xp)
        info = xp.__array_namespace_info__() if hasattr(xp, "__array_namespace_info__") else None
        self.device = device if device is not None or info is None else info.default_device()
        try:
            xp.asarray(0.0, device=self.device)
        except _ERRORS as exc:
            known = f" (its devices: {', '.join(map(str, info.devices()))})" if info is not None else ""
            raise ValueError(f"device={device!r} is not a device of {self.name}{known}: {exc}") from None
        dtypes = info.dtypes(device=self.device) if info is not None else vars(xp)
        if "float64" not in dtypes:
            raise ValueError(f"device={self.device!r}: {self.name} has no float64 there, and gradcheck's "
                             "numerics run in float64 on the inputs' device; use a device that has it")
        self.complex_refused = "" if "complex128" in dtypes else (
            f"{self.name} has no complex128 on {self.device}: checked by finite differences (the "
            "complex step needs complex128)")

    def is_array(self, value: Any) -> bool:
        return bool(self.compat.is_array_api_obj(value)) and not isinstance(value, (np.ndarray, np.generic))

    def shared(self, array: np.ndarray) -> Any:
        try:
            out = self.xp.from_dlpack(array)
            same = self.compat.device(out) == self.device and np.shares_memory(np.from_dlpack(out), array)
        except _ERRORS:
            return None
        return out if same else None

    def copied(self, array: np.ndarray) -> Any:
        return self.xp.asarray(array, copy=True, device=self.device)

    def device_of(self, value: Any) -> Any:
        return self.compat.device(value)

    def to_numpy(self, value: Any) -> np.ndarray:
        try:
            return np.from_dlpack(value, device="cpu", copy=True)
        except _ERRORS:
            pass
        get = getattr(value, "get", None)  # CuPy's copy to the host
        return np.array(get() if callable(get) else value)


def library_name(xp: Any) -> str:
    """``array_api_strict``, ``cupy``, ``torch``: the library of a namespace or module."""
    name = str(getattr(xp, "__name__", type(xp).__name__))
    return name.removeprefix("array_api_compat.").split(".")[0]


def open_library(xp: Any, device: Any = None) -> ArrayLibrary:
    """The :class:`ArrayLibrary` of ``xp`` (a module, an array API namespace or a module's
    name) on ``device``: torch's for torch (no array_api_compat needed), a
    :class:`NamespaceLibrary` otherwise.

    Raises ``ImportError`` when ``xp`` names a library that is not installed,
    ``TypeError`` when it is no array library, :class:`LibraryUnusable` when it cannot make
    an array here (CuPy without a GPU), ``ValueError`` for a device it does not have.
    """
    module = _module(xp)
    name = library_name(module)
    if name == "torch":
        return _torch_library(device)
    try:
        sample = module.asarray(0.0)
    except AttributeError:
        raise TypeError(f"xp={xp!r} is not an array library: it has no asarray") from None
    except Exception as exc:  # CUDA errors of any library's own type
        need = f"; {_NEEDS[name]}" if name in _NEEDS else ""
        first = (str(exc).strip().splitlines() or [""])[0]
        said = f"{type(exc).__name__}: {first}"
        raise LibraryUnusable(f"{name} cannot make an array here ({said}){need}") from None
    compat = _compat()
    try:
        namespace = compat.array_namespace(sample)
    except TypeError:
        raise TypeError(f"xp={xp!r} is not an array API library (array_api_compat does not know "
                        f"{type(sample).__module__}.{type(sample).__name__})") from None
    return NamespaceLibrary(namespace, device, name)


def _module(xp: Any) -> Any:
    if not isinstance(xp, str):
        return xp
    try:
        return importlib.import_module(xp)
    except ImportError as exc:
        pip = {"cupy": "pip install cupy-cuda12x (CuPy needs an NVIDIA GPU with CUDA)"}.get(
            xp.split(".")[0], f"pip install {xp.split('.')[0].replace('_', '-')}")
        raise ImportError(f"xp={xp!r} cannot be used: {exc}; {pip}") from None


def _torch_library(device: Any) -> ArrayLibrary:
    library = TorchLibrary("cpu" if device is None else str(device))
    if library.device.startswith("cuda") and not library.torch.cuda.is_available():
        raise ValueError(f"device={device!r} cannot be used: torch finds no CUDA device here")
    return library


def host_arguments(args: tuple[Any, ...], xp: Any = None,
                   device: Any = None) -> tuple[ArrayLibrary, list[Any]]:
    """The library of the arguments (or of ``xp``) on their device (or ``device``), and the
    arguments with its arrays as numpy copies (in dicts too), for the checker."""
    if xp is None:
        xp = _namespace_of(args)
    library = open_library(xp, device)
    theirs = [(i, a) for i, arg in enumerate(args)
              for a in (arg.values() if isinstance(arg, dict) else [arg]) if library.is_array(a)]
    if device is None and theirs:
        devices = [(i, library.device_of(a)) for i, a in theirs]
        other = next(((i, d) for i, d in devices if d != devices[0][1]), None)
        if other is not None:
            raise ValueError(f"argument {other[0]} is on {other[1]}, argument {devices[0][0]} on "
                             f"{devices[0][1]}: pass every input on one device (or device=)")
        if devices[0][1] != library.device:
            library = open_library(xp, devices[0][1])
    conversion = Conversion(library)
    return library, [conversion.arrays(a, None) for a in args]


def _namespace_of(args: tuple[Any, ...]) -> Any:
    """The array API namespace of the arguments' arrays (none is numpy)."""
    compat = _compat()
    theirs = [a for arg in args for a in (arg.values() if isinstance(arg, dict) else [arg])
              if compat.is_array_api_obj(a) and not isinstance(a, (np.ndarray, np.generic))]
    if not theirs:
        raise TypeError("xp= is needed: every input is a NumPy array or a number, so nothing says "
                        "which array library to check in (xp='array_api_strict', xp=cupy, ...); "
                        "for NumPy code use check_layer")
    try:
        return compat.array_namespace(*theirs)
    except TypeError as exc:
        raise TypeError(f"the inputs mix array libraries: {exc}") from None


def check_array_api(forward: Callable[..., Any], backward: Callable[..., Any] | None, *args: Any,
                    xp: Any = None, device: Any = None, **options: Any) -> Report:
    """Check ``backward`` against numerical derivatives of ``forward``, both written for an
    array API library, on the device the inputs live on.

    Parameters
    ----------
    forward, backward : callable
        A CS231n pair on the library's arrays, as for :func:`gradcheck.check_layer`;
        ``backward=None`` makes ``forward`` a loss ``loss(x, ...) -> (loss, dx)`` as for
        :func:`gradcheck.check_loss`.
    *args
        The inputs: the library's arrays (on one device), or NumPy arrays with ``xp``.
    xp : module, namespace or str, optional
        The library (``"array_api_strict"``, ``cupy``, ``torch``); by default that of the
        inputs.
    device : optional
        Where the code runs (the library's device object, or torch's ``"cpu"``/``"cuda"``);
        by default the inputs' device, else the library's default.
    **options
        Those of :func:`gradcheck.check_layer` (``mode=``, ``seed=``, ``wrt=``, ...).
    """
    from gradcheck.check import check_layer, check_loss

    if not callable(forward) or (backward is not None and not callable(backward)):
        raise TypeError("forward and backward must be callables (backward=None for a loss)")
    library, host = host_arguments(args, xp, device)
    forward_np, backward_np = numpy_pair(forward, backward, library)
    if backward_np is None:
        return check_loss(forward_np, *host, **options)
    return check_layer(forward_np, backward_np, *host, **options)


def check_torch(fn: Callable[..., Any], *inputs: Any, **options: Any) -> Report:
    """Check ``fn(*tensors) -> tensor or tuple of tensors`` on ``inputs`` (numpy arrays or
    tensors).

    Floating-point inputs become tensors that require gradients; the gradients torch's
    autograd computes through ``fn``'s own ``backward`` are checked against numerical
    derivatives of its forward: :func:`check_array_api` with ``xp="torch"``. Options are
    those of :func:`gradcheck.check_layer`.
    """
    owner = getattr(fn, "__self__", None)
    forward, backward = autograd_pair(fn)
    forward.__name__ = str(getattr(owner, "__name__", None) or getattr(fn, "__name__", "torch_function"))
    forward.__signature__ = _signature(fn, len(inputs))  # type: ignore[attr-defined]
    return check_array_api(forward, backward, *inputs, xp="torch", **options)


def _signature(fn: Callable[..., Any], n: int) -> inspect.Signature:
    """Argument names of the function's forward (without ``ctx`` for autograd Functions)."""
    owner = getattr(fn, "__self__", None)
    target = getattr(owner, "forward", fn) if isinstance(owner, type) else fn
    try:
        names = [p.name for p in inspect.signature(target).parameters.values()
                 if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        names = []
    if isinstance(owner, type) and names and names[0] == "ctx":
        names = names[1:]
    names = (names + [f"arg{i}" for i in range(len(names), n)])[:n]
    kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
    return inspect.Signature([inspect.Parameter(name, kind) for name in names])
