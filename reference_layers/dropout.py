"""Inverted dropout: ``p`` is the probability of KEEPING a unit (CS231n 2019+ convention).

In train mode each unit is kept with probability ``p`` and the kept units are scaled by
``1 / p``, so that the expected output equals the input and test mode is the identity. The
mask is drawn from real uniform numbers and applied by multiplication, so complex-step
derivatives pass through it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["dropout_backward", "dropout_forward"]

Cache = tuple[dict[str, Any], np.ndarray | None]


def _validate(dropout_param: Any) -> tuple[float, str]:
    if not isinstance(dropout_param, dict):
        raise TypeError(f"dropout_param must be a dict; got {type(dropout_param).__name__}")
    for key in ("p", "mode"):
        if key not in dropout_param:
            raise ValueError(
                f"dropout_param must contain 'p' (the keep probability) and 'mode' ('train' or "
                f"'test'); it has keys {sorted(dropout_param)}"
            )
    p, mode = dropout_param["p"], dropout_param["mode"]
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)) or not 0 < p <= 1:
        raise ValueError(f"p must be in (0, 1] (the probability of keeping each unit); got {p!r}")
    if mode not in ("train", "test"):
        raise ValueError(f"mode must be 'train' or 'test' (dropout_param['mode']); got {mode!r}")
    return float(p), str(mode)


def dropout_forward(x: np.ndarray, dropout_param: dict[str, Any]) -> tuple[np.ndarray, Cache]:
    """Inverted dropout of x (any shape); returns out (x's shape) and a cache.

    ``dropout_param``: ``p`` (keep probability in (0, 1]), ``mode`` ('train' or 'test') and
    an optional ``seed``: when given, the mask comes from ``np.random.default_rng(seed)``,
    so repeated calls drop the same units (needed for gradient checking). Train mode:
    ``out = x * mask`` with ``mask = (u < p) / p``, u uniform in [0, 1). Test mode:
    ``out = x``.
    """
    p, mode = _validate(dropout_param)
    if mode == "test":
        return x.copy(), (dropout_param, None)
    seed = dropout_param.get("seed")
    rng = np.random.default_rng(seed)
    real = np.real(x).dtype
    mask = (rng.random(np.shape(x)) < p).astype(real) / real.type(p)
    return x * mask, (dropout_param, mask)


def dropout_backward(dout: np.ndarray, cache: Cache) -> np.ndarray:
    """``dx`` (dout's shape): dout times the forward's mask in train mode, dout in test mode."""
    _, mask = cache
    if mask is None:
        return dout.copy()
    return dout * mask
