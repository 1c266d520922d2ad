"""Layers applied at every time step: an affine map and a masked softmax loss.

Shapes: N sequences, T time steps, D input features, M outputs, V vocabulary words.
"""

from __future__ import annotations

import numpy as np

from reference_layers._validate import require_ndim

__all__ = ["temporal_affine_backward", "temporal_affine_forward", "temporal_softmax_loss"]

TemporalAffineCache = tuple[np.ndarray, np.ndarray, np.ndarray]


def temporal_affine_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, TemporalAffineCache]:
    """The same affine map at every time step: ``out[n, t] = x[n, t] @ w + b``.

    Parameters
    ----------
    x : (N, T, D) inputs.
    w : (D, M) weights.
    b : (M,) biases.

    Returns
    -------
    out : (N, T, M)
    cache : (x, w, b)
    """
    require_ndim("x", x, 3, "N, T, D")
    require_ndim("w", w, 2, "D, M")
    require_ndim("b", b, 1, "M")
    n, t, d = x.shape
    if w.shape[0] != d or b.shape[0] != w.shape[1]:
        raise ValueError(
            f"temporal affine shapes do not fit: x {x.shape} has N={n}, T={t}, D={d}; w is "
            f"{w.shape} (needs D={d} rows) and b is {b.shape} (needs M={w.shape[1]} entries)"
        )
    out = x @ w + b
    return out, (x, w, b)


def temporal_affine_backward(
    dout: np.ndarray, cache: TemporalAffineCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients ``(dx, dw, db)`` for ``dout`` of shape (N, T, M).

    ``dw`` and ``db`` sum over both the batch and the time axis.
    """
    x, w, b = cache
    dx = (dout @ w.T).astype(x.dtype, copy=False)
    dw = np.einsum("ntd,ntm->dm", x, dout).astype(w.dtype, copy=False)
    db = dout.sum(axis=(0, 1)).astype(b.dtype, copy=False)
    return dx, dw, db


def _boolean_mask(mask: np.ndarray, n: int, t: int) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.shape != (n, t):
        raise ValueError(f"mask must have shape (N, T) = ({n}, {t}); got {mask.shape}")
    if mask.dtype == np.bool_:
        return mask
    if np.issubdtype(mask.dtype, np.integer) and np.all((mask == 0) | (mask == 1)):
        return mask.astype(bool)
    raise ValueError(f"mask must be boolean (or integers 0/1); got dtype {mask.dtype}")


def temporal_softmax_loss(
    x: np.ndarray, y: np.ndarray, mask: np.ndarray, verbose: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Softmax cross-entropy at every time step, summed over the unmasked steps, over N.

    ``loss = -sum_{n, t: mask[n, t]} log softmax(x[n, t])[y[n, t]] / N``. As in CS231n,
    the sum over time is NOT averaged: only the batch size N divides it.

    Parameters
    ----------
    x : (N, T, V) scores over a vocabulary of V words.
    y : (N, T) integer targets; ``0 <= y[n, t] < V`` wherever ``mask[n, t]``.
    mask : (N, T) boolean; False excludes that step (e.g. padding) from the loss.
    verbose : print the shapes involved.

    Returns
    -------
    loss : scalar of x's dtype.
    dx : (N, T, V) gradient of the loss with respect to x.
    """
    require_ndim("x", x, 3, "N, T, V")
    n, t, v = x.shape
    y = np.asarray(y)
    if y.shape != (n, t) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(
            f"y must be integer targets of shape (N, T) = ({n}, {t}) for x {x.shape} "
            f"(N={n}, T={t}, V={v}); got {y.dtype} {y.shape}"
        )
    keep = _boolean_mask(mask, n, t)
    targets = np.where(keep, y, 0)
    if np.any(keep) and (targets.min() < 0 or targets.max() >= v):
        raise ValueError(
            f"y must lie in [0, V) with V = {v} where mask is True; "
            f"got range [{y[keep].min()}, {y[keep].max()}]"
        )
    shifted = x - np.max(np.real(x), axis=2, keepdims=True)
    log_z = np.log(np.sum(np.exp(shifted), axis=2, keepdims=True))
    log_probs = shifted - log_z
    picked = np.take_along_axis(log_probs, targets[:, :, None], axis=2)[:, :, 0]
    loss = -np.sum(np.where(keep, picked, 0)) / n
    dx = np.exp(log_probs)
    np.put_along_axis(dx, targets[:, :, None], np.take_along_axis(dx, targets[:, :, None], axis=2) - 1,
                      axis=2)
    dx = np.where(keep[:, :, None], dx, 0).astype(dx.dtype, copy=False) / n
    if verbose:
        print(f"temporal_softmax_loss: x {x.shape}, y {y.shape}, mask {keep.shape}, dx {dx.shape}")
    return loss, dx
