"""Optional: check a ``torch.autograd.Function`` (or any callable on tensors).

``check_torch(MyFunction.apply, x, w)`` compares the gradients torch's autograd computes
through the function's own ``backward`` with numerical derivatives of its ``forward``.
Inputs are numpy arrays; torch is imported only when this is called.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from gradcheck.check import check_layer
from gradcheck.report import Report

__all__ = ["check_torch"]


def check_torch(fn: Callable[..., Any], *inputs: np.ndarray, **options: Any) -> Report:
    """Check ``fn(*tensors) -> tensor or tuple of tensors`` on numpy ``inputs``.

    Floating-point inputs become tensors that require gradients; options are those of
    :func:`gradcheck.check_layer`.
    """
    try:
        import torch
    except ImportError as exc:
        raise ImportError("check_torch needs torch: pip install torch (any recent version; "
                          "see https://pytorch.org for a CPU-only build)") from exc

    def to_tensor(a: Any) -> Any:
        if isinstance(a, np.ndarray):
            t = torch.from_numpy(np.ascontiguousarray(a).copy())
            if np.issubdtype(a.dtype, np.floating):
                t.requires_grad_(True)
            return t
        return a

    def forward(*args: Any) -> tuple[Any, ...]:
        tensors = [to_tensor(a) for a in args]
        with torch.enable_grad():
            out = fn(*tensors)
        outs = out if isinstance(out, tuple) else (out,)
        arrays = tuple(o.detach().numpy().copy() for o in outs)
        return (*arrays, (tensors, outs))

    def backward(*args: Any) -> tuple[np.ndarray, ...]:
        *douts, (tensors, outs) = args
        wrt = [t for t in tensors if isinstance(t, torch.Tensor) and t.requires_grad]
        grads = torch.autograd.grad(
            outs, wrt, grad_outputs=[torch.from_numpy(np.ascontiguousarray(d)) for d in douts],
            allow_unused=True,
        )
        return tuple(
            np.zeros(t.shape, dtype=t.detach().numpy().dtype) if g is None else g.detach().numpy().copy()
            for g, t in zip(grads, wrt)
        )

    owner = getattr(fn, "__self__", None)
    forward.__name__ = str(getattr(owner, "__name__", None) or getattr(fn, "__name__", "torch_function"))
    forward.__signature__ = _signature(fn, len(inputs))  # type: ignore[attr-defined]
    return check_layer(forward, backward, *inputs, **options)


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
