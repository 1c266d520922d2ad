"""Shape validation shared by the reference layers: messages name every dimension."""

from __future__ import annotations

import numpy as np


def require_ndim(name: str, a: np.ndarray, ndim: int | tuple[int, ...], meaning: str) -> None:
    """Raise ``ValueError`` unless ``a.ndim`` is (one of) ``ndim``."""
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if np.ndim(a) not in allowed:
        raise ValueError(
            f"{name} must have {' or '.join(map(str, allowed))} dimensions ({meaning}); "
            f"got shape {np.shape(a)}"
        )


def require_labels(name: str, y: np.ndarray, n: int, classes: int) -> None:
    """Integer class labels of shape ``(n,)`` with values in ``[0, classes)``."""
    y = np.asarray(y)
    if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name} must be {n} integer labels of shape ({n},); got {y.dtype} {y.shape}")
    if n and (y.min() < 0 or y.max() >= classes):
        raise ValueError(f"{name} must lie in [0, C) with C = {classes}; got range [{y.min()}, {y.max()}]")


def int_pair(name: str, value: object, minimum: int) -> tuple[int, int]:
    """``value`` (an int, or an ``(h, w)`` pair of ints) as a pair of ints ``>= minimum``.

    Raises ``ValueError`` quoting ``name`` and the value it got.
    """
    items = value if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2 or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in items
    ):
        raise ValueError(f"{name} must be an int or an (h, w) pair of ints; got {value!r}")
    pair = (int(items[0]), int(items[1]))
    if min(pair) < minimum:
        raise ValueError(f"{name} must be >= {minimum} on both axes; got {value!r}")
    return pair
