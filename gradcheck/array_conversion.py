"""The checker's numpy arrays as the arrays of another library, and back: one conversion.

The checker works on numpy arrays. :func:`numpy_pair` turns a forward/backward pair (or a
loss) written for another array library into one on numpy arrays, through an
:class:`ArrayLibrary` that knows how that library makes arrays on one device and gives
them back: each floating, complex, integer or boolean array becomes the library's array
on the device (sharing memory where the library can, so that a write into an input or
into ``dout`` is seen by the contract checks as in numpy; elsewhere copied back after the
call), dict arguments (``bn_param``) get the library's arrays and their updates come back
as numpy arrays, and results come back as numpy arrays in the check's dtype, so that a
float32 intermediate is judged at float64 tolerances in a float64 check. A library that
cannot take complex inputs refuses them with its reason (``complex_refused``): the numeric
method then falls back to central differences and Richardson extrapolation and says why.

The libraries are :class:`gradcheck.torch_adapter.TorchLibrary` (torch tensors) and
:class:`gradcheck.array_api.NamespaceLibrary` (any array API namespace). This module
imports neither.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["ArrayLibrary", "Conversion", "dtype_of", "numpy_pair"]


class ArrayLibrary:
    """How one array library makes arrays on one device, and gives them back.

    ``name`` names the library in messages, ``device`` is where its arrays are made, and
    ``complex_refused`` is why complex inputs cannot be handed to it ("" when they can).
    """

    name = "numpy"
    device: Any = None
    complex_refused = ""

    def is_array(self, value: Any) -> bool:
        """Whether ``value`` is an array of this library (to give back as numpy)."""
        raise NotImplementedError

    def shared(self, array: np.ndarray) -> Any:
        """``array`` as the library's array on the device, sharing its memory; ``None``
        when the library cannot share it there."""
        raise NotImplementedError

    def copied(self, array: np.ndarray) -> Any:
        """A copy of ``array`` as the library's array on the device."""
        raise NotImplementedError

    def device_of(self, value: Any) -> Any:
        """The device of the library's array ``value``, as ``device`` names devices."""
        raise NotImplementedError

    def to_numpy(self, value: Any) -> np.ndarray:
        """A numpy copy (on the host) of the library's array ``value``."""
        raise NotImplementedError


class Conversion:
    """numpy arrays in, the library's arrays to the user's code, numpy arrays back."""

    def __init__(self, library: ArrayLibrary) -> None:
        self.library = library
        self.written: list[tuple[np.ndarray, Any]] = []  # copies to bring back (not shared)

    def handed(self, value: Any) -> Any:
        """``value`` as the user's code gets it."""
        if isinstance(value, np.ndarray):
            return self._array_handed(value)
        if isinstance(value, np.integer):
            return int(value)
        if isinstance(value, np.floating):
            return float(value)
        if isinstance(value, dict):
            return {k: self.handed(v) if isinstance(v, np.ndarray) else v for k, v in value.items()}
        if isinstance(value, (list, tuple)) and any(isinstance(v, np.ndarray) for v in value):
            return type(value)(self.handed(v) for v in value)
        return value

    def _array_handed(self, value: np.ndarray) -> Any:
        if np.iscomplexobj(value) and self.library.complex_refused:
            raise TypeError(self.library.complex_refused)
        if value.dtype.kind not in "fciub":
            return value
        if value.flags.writeable and all(s >= 0 for s in value.strides):
            shared = self.library.shared(value)
            if shared is not None:
                return shared
        copy = self.library.copied(np.ascontiguousarray(value))
        if value.flags.writeable:
            self.written.append((value, copy))
        return copy

    def bring_back(self, given: list[Any], handed: list[Any], before: list[Any]) -> None:
        """Writes into arrays that were copies, and what the code stored in dict arguments
        (``before`` holds each handed dict's values as they were handed)."""
        for array, copy in self.written:
            np.copyto(array, self.library.to_numpy(copy))
        self.written.clear()
        for mine, theirs, then in zip(given, handed, before):
            if isinstance(mine, dict) and isinstance(theirs, dict) and then is not None:
                for key, value in theirs.items():
                    if key not in then or value is not then[key]:
                        mine[key] = self.array(value, None)

    def array(self, value: Any, dtype: Any) -> Any:
        """``value`` as a numpy array in ``dtype`` (a floating one only; ``None``: as it
        is) when it is one of the library's arrays; anything else as it is."""
        if not self.library.is_array(value):
            return value
        out = self.library.to_numpy(value)
        if dtype is not None and out.dtype.kind == "f" and out.dtype != dtype:
            out = out.astype(dtype)
        return out

    def arrays(self, value: Any, dtype: Any) -> Any:
        """``value`` with every array of the library in it (in tuples, lists, dicts) a
        numpy array in ``dtype``."""
        if isinstance(value, (tuple, list)):
            return type(value)(self.arrays(v, dtype) for v in value)
        if isinstance(value, dict):
            return {k: self.arrays(v, dtype) for k, v in value.items()}
        return self.array(value, dtype)


def dtype_of(args: tuple[Any, ...]) -> Any:
    """The check's floating dtype: that of the floating arrays among ``args``."""
    floats = [a.dtype for a in args if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
    return np.result_type(*floats) if floats else None


def numpy_pair(
    forward: Callable[..., Any],
    backward: Callable[..., Any] | None,
    library: ArrayLibrary,
    *,
    watch: Any = None,
    label: str | None = None,
) -> tuple[Callable[..., Any], Callable[..., Any] | None]:
    """``forward``/``backward`` on the library's arrays as functions on numpy arrays.

    ``library`` converts the arrays of every call. ``backward=None`` is a
    loss ``loss(x, ...) -> (loss, dx)``. ``watch`` is a context entered around every call
    (:class:`gradcheck.devices.TensorWatch` for torch). ``label`` names the functions
    (``Linear``: ``Linear.forward``/``Linear.backward``).
    """

    def call(fn: Callable[..., Any], args: tuple[Any, ...], outputs: slice) -> Any:
        conversion = Conversion(library)
        handed = [conversion.handed(a) for a in args]
        before = [dict(h) if isinstance(h, dict) else None for h in handed]
        with watch if watch is not None else contextlib.nullcontext():
            result = fn(*handed)
        conversion.bring_back(list(args), handed, before)
        dtype = dtype_of(args)
        if isinstance(result, (tuple, list)):
            items = list(result)
            items[outputs] = [conversion.array(v, dtype) for v in items[outputs]]
            return tuple(items)
        return conversion.array(result, dtype)

    def forward_np(*args: Any) -> Any:
        return call(forward, args, slice(None) if backward is None else slice(0, -1))

    _name(forward_np, forward, label, "forward")
    if backward is None:
        return forward_np, None

    def backward_np(*args: Any) -> Any:
        return call(backward, args, slice(None))

    _name(backward_np, backward, label, "backward")
    return forward_np, backward_np


def _name(wrapper: Callable[..., Any], fn: Callable[..., Any], label: str | None, role: str) -> None:
    functools.update_wrapper(wrapper, fn)
    name = getattr(fn, "__name__", role)
    wrapper.__name__ = f"{label}.{name}" if label else name
