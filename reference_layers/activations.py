"""Element-wise activations. Branches test real parts, so complex-step derivatives work."""

from __future__ import annotations

import numpy as np

__all__ = ["relu_backward", "relu_forward"]


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``max(0, x)`` element-wise; the cache is x."""
    out = np.where(np.real(x) > 0, x, 0).astype(x.dtype, copy=False)
    return out, x


def relu_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """``dout`` where ``x > 0``, else 0 (the subgradient 0 is used at x = 0)."""
    x = cache
    return np.where(np.real(x) > 0, dout, 0).astype(dout.dtype, copy=False)
