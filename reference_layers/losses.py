"""Classification losses ``(loss, dx)``: averaged over the N samples of a batch."""

from __future__ import annotations

import numpy as np

from reference_layers._validate import require_labels, require_ndim

__all__ = ["softmax_loss", "svm_loss"]


def softmax_loss(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cross-entropy of softmax(x) against integer labels y, averaged over N.

    x has shape (N, C); y has shape (N,) with 0 <= y[i] < C. The shift by the row maximum
    (of the real part) keeps exp from overflowing and leaves the value unchanged.
    """
    require_ndim("x", x, 2, "N, C")
    n, c = x.shape
    require_labels("y", y, n, c)
    shifted = x - np.max(np.real(x), axis=1, keepdims=True)
    log_z = np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    log_probs = shifted - log_z
    rows = np.arange(n)
    loss = -np.sum(log_probs[rows, y]) / n
    dx = np.exp(log_probs)
    dx[rows, y] -= 1
    dx /= n
    return loss, dx


def svm_loss(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Multiclass hinge loss ``sum_{j != y_i} max(0, x_ij - x_iy_i + 1)``, averaged over N."""
    require_ndim("x", x, 2, "N, C")
    n, c = x.shape
    require_labels("y", y, n, c)
    rows = np.arange(n)
    margins = x - x[rows, y][:, None] + 1.0
    active = np.real(margins) > 0
    active[rows, y] = False
    loss = np.sum(np.where(active, margins, 0)) / n
    dx = active.astype(x.real.dtype)
    dx[rows, y] = -np.sum(active, axis=1)
    dx /= n
    return loss, dx
