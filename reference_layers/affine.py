"""Affine (fully connected) layer: ``out = x.reshape(N, D) @ w + b``."""

from __future__ import annotations

import numpy as np

from reference_layers._validate import require_ndim

Cache = tuple[np.ndarray, np.ndarray, np.ndarray]


def affine_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, Cache]:
    """Forward pass of a fully connected layer.

    x has shape (N, d_1, ..., d_k) and is flattened to (N, D) with D = d_1 * ... * d_k;
    w has shape (D, M); b has shape (M,). Returns out of shape (N, M) and a cache.
    """
    require_ndim("w", w, 2, "D, M")
    require_ndim("b", b, 1, "M")
    if np.ndim(x) < 1:
        raise ValueError(f"x must have a batch axis: shape (N, d_1, ..., d_k); got {np.shape(x)}")
    n = x.shape[0]
    d = int(np.prod(x.shape[1:], dtype=int))
    if w.shape[0] != d or b.shape[0] != w.shape[1]:
        raise ValueError(
            f"affine shapes do not fit: x {x.shape} flattens to (N={n}, D={d}), w is {w.shape} "
            f"(needs D={d} rows), b is {b.shape} (needs M={w.shape[1]} entries)"
        )
    out = x.reshape(n, d) @ w + b
    return out, (x, w, b)


def affine_backward(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients (dx, dw, db) of ``sum(dout * out)``; db sums the broadcast over N."""
    x, w, _ = cache
    x2 = x.reshape(x.shape[0], -1)
    dx = (dout @ w.T).reshape(x.shape)
    dw = x2.T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db


__all__ = ["affine_backward", "affine_forward"]
