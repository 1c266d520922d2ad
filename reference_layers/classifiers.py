"""Linear classifiers of assignment 1: ``(W, X, y, reg) -> (loss, dW)``.

The data loss is averaged over the N samples; the regularisation is ``reg * sum(W**2)``
(the course since 2017). ``half_reg=True`` gives ``0.5 * reg * sum(W**2)``, the
convention of earlier years, whose gradient is ``reg * W`` instead of ``2 * reg * W``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from reference_layers._validate import require_labels, require_ndim
from reference_layers.losses import softmax_loss, svm_loss

__all__ = ["linear_softmax_loss", "linear_svm_loss"]


def _scores(W: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    require_ndim("W", W, 2, "D, C")
    require_ndim("X", X, 2, "N, D")
    if X.shape[1] != W.shape[0]:
        raise ValueError(f"X has shape {X.shape} and W {W.shape}: X needs D={W.shape[0]} columns")
    require_labels("y", y, X.shape[0], W.shape[1])
    return X @ W


def _classifier(loss_of_scores: Callable[..., tuple[np.ndarray, np.ndarray]], W: np.ndarray,
                X: np.ndarray, y: np.ndarray, reg: float, half_reg: bool,
                ) -> tuple[np.ndarray, np.ndarray]:
    scores = _scores(W, X, y)
    data_loss, dscores = loss_of_scores(scores, y)
    factor = 0.5 if half_reg else 1.0
    loss = data_loss + factor * reg * np.sum(W * W)
    dW = X.T @ dscores + 2 * factor * reg * W
    return loss, dW


def linear_svm_loss(W: np.ndarray, X: np.ndarray, y: np.ndarray, reg: float,
                    half_reg: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Multiclass hinge loss of the scores ``X @ W`` (margin 1), plus L2 regularisation."""
    return _classifier(svm_loss, W, X, y, reg, half_reg)


def linear_softmax_loss(W: np.ndarray, X: np.ndarray, y: np.ndarray, reg: float,
                        half_reg: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Cross-entropy of softmax of the scores ``X @ W``, plus L2 regularisation."""
    return _classifier(softmax_loss, W, X, y, reg, half_reg)
