"""Element-wise activations, each a ``*_forward(x) -> (out, cache)`` / ``*_backward`` pair.

Branches test real parts and the sigmoid is written through ``tanh``, so every forward is
complex-step safe and stable for large inputs.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "gelu_backward",
    "gelu_forward",
    "leaky_relu_backward",
    "leaky_relu_forward",
    "relu_backward",
    "relu_forward",
    "sigmoid_backward",
    "sigmoid_forward",
    "tanh_backward",
    "tanh_forward",
]

_GELU_C = np.sqrt(2.0 / np.pi)
_GELU_A = 0.044715


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``max(0, x)`` element-wise; the cache is x."""
    out = np.where(np.real(x) > 0, x, 0).astype(x.dtype, copy=False)
    return out, x


def relu_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """``dout`` where ``x > 0``, else 0 (the subgradient 0 is used at x = 0)."""
    x = cache
    return np.where(np.real(x) > 0, dout, 0).astype(dout.dtype, copy=False)


def leaky_relu_forward(x: np.ndarray, alpha: float = 0.01) -> tuple[np.ndarray, tuple[np.ndarray, float]]:
    """``x`` where ``x > 0``, else ``alpha * x``; ``alpha`` is a plain number (not learned)."""
    if not 0 <= alpha < 1:
        raise ValueError(f"alpha must be in [0, 1); got {alpha}")
    out = np.where(np.real(x) > 0, x, alpha * x).astype(x.dtype, copy=False)
    return out, (x, alpha)


def leaky_relu_backward(dout: np.ndarray, cache: tuple[np.ndarray, float]) -> np.ndarray:
    """``dout`` where ``x > 0``, else ``alpha * dout``."""
    x, alpha = cache
    return np.where(np.real(x) > 0, dout, alpha * dout).astype(dout.dtype, copy=False)


def sigmoid_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``1 / (1 + exp(-x))``, computed as ``(1 + tanh(x / 2)) / 2`` (no overflow); cache is out."""
    out = 0.5 * (1.0 + np.tanh(0.5 * x))
    return out, out


def sigmoid_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """``dout * s * (1 - s)`` with ``s`` the forward output."""
    s = cache
    return dout * s * (1.0 - s)


def tanh_forward(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``tanh(x)``; the cache is the output."""
    out = np.tanh(x)
    return out, out


def tanh_backward(dout: np.ndarray, cache: np.ndarray) -> np.ndarray:
    """``dout * (1 - tanh(x)**2)``."""
    t = cache
    return dout * (1.0 - t * t)


def gelu_forward(x: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """GELU, tanh approximation: ``x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x**3)))``."""
    t = np.tanh(_GELU_C * (x + _GELU_A * x**3))
    out = (0.5 * x * (1.0 + t)).astype(x.dtype, copy=False)
    return out, (x, t)


def gelu_backward(dout: np.ndarray, cache: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Derivative of the tanh-form GELU, times ``dout``."""
    x, t = cache
    inner = _GELU_C * (1.0 + 3.0 * _GELU_A * x * x)
    local = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * inner
    return (dout * local).astype(dout.dtype, copy=False)
