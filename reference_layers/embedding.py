"""Word embedding: look up a D-dimensional vector for each of N x T integer indices."""

from __future__ import annotations

import numpy as np

from reference_layers._validate import require_ndim

__all__ = ["word_embedding_backward", "word_embedding_forward"]

EmbeddingCache = tuple[np.ndarray, tuple[int, ...], np.dtype]


def word_embedding_forward(x: np.ndarray, W: np.ndarray) -> tuple[np.ndarray, EmbeddingCache]:
    """``out[n, t] = W[x[n, t]]``.

    Parameters
    ----------
    x : (N, T) integer indices, each in ``[0, V)``. Not differentiable.
    W : (V, D) one row per word of a vocabulary of V words.

    Returns
    -------
    out : (N, T, D)
    cache : the indices and the shape and dtype of W.
    """
    x = np.asarray(x)
    require_ndim("x", x, 2, "N, T")
    require_ndim("W", W, 2, "V, D")
    if not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"x must hold integer word indices; got dtype {x.dtype} of shape {x.shape}")
    vocab = W.shape[0]
    if x.size and (x.min() < 0 or x.max() >= vocab):
        raise ValueError(
            f"x {x.shape} (N={x.shape[0]}, T={x.shape[1]}) must index the V={vocab} rows of "
            f"W {W.shape} (V={vocab}, D={W.shape[1]}); got indices in [{x.min()}, {x.max()}]"
        )
    return W[x], (x.copy(), W.shape, W.dtype)


def word_embedding_backward(dout: np.ndarray, cache: EmbeddingCache) -> np.ndarray:
    """``dW`` (V, D) of ``sum(dout * out)`` for ``dout`` of shape (N, T, D).

    A word used several times collects the sum of all its upstream gradients: the
    scatter is ``np.add.at``, because ``dW[x] += dout`` keeps only one of the repeats.
    """
    x, shape, dtype = cache
    dW = np.zeros(shape, dtype=dtype)
    np.add.at(dW, x, dout)
    return dW
