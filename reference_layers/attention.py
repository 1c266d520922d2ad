"""Scaled dot-product attention: ``softmax(query @ key^T / sqrt(E)) @ value``.

Shapes: N samples, S queries, T keys (and values), E query/key features, Ev value features.

Mask convention: ``mask[s, t]`` (or ``mask[n, s, t]``) True means query s MAY attend to
key t (the same convention as a boolean ``attn_mask`` of
``torch.nn.functional.scaled_dot_product_attention``); False removes that key from the
softmax of that query. Every query must keep at least one key: a fully masked row has no
softmax, and is rejected with a ``ValueError``.
"""

from __future__ import annotations

import math

import numpy as np

from reference_layers._validate import require_ndim

__all__ = ["attention_backward", "attention_forward"]

AttentionCache = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]


def _check_shapes(query: np.ndarray, key: np.ndarray, value: np.ndarray) -> None:
    require_ndim("query", query, 3, "N, S, E")
    require_ndim("key", key, 3, "N, T, E")
    require_ndim("value", value, 3, "N, T, Ev")
    (n, s, e), (nk, t, ek), (nv, tv, ev) = query.shape, key.shape, value.shape
    if not (nk == nv == n and ek == e and tv == t):
        raise ValueError(
            f"attention shapes do not fit: query {query.shape} is (N={n}, S={s}, E={e}), key "
            f"{key.shape} must be (N, T, E) = ({n}, T, {e}) and value {value.shape} must be "
            f"(N, T, Ev) = ({n}, {t}, Ev) with the T={t} of key (its Ev={ev} may be any size)"
        )


def _keep_mask(mask: np.ndarray | None, n: int, s: int, t: int) -> np.ndarray | None:
    """The mask as a boolean (N, S, T) or (1, S, T) array; None when there is none."""
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.dtype != np.bool_:
        raise ValueError(f"mask must be boolean (True = attend); got dtype {mask.dtype}")
    if mask.shape == (s, t):
        mask = mask[None]
    elif mask.shape != (n, s, t):
        raise ValueError(
            f"mask must have shape (S, T) = ({s}, {t}) or (N, S, T) = ({n}, {s}, {t}) for "
            f"N={n} samples, S={s} queries and T={t} keys; got {mask.shape}"
        )
    empty = ~mask.any(axis=-1)
    if np.any(empty):
        first_n, first_s = (int(i) for i in np.argwhere(empty)[0])
        row = f"mask[{first_s}]" if mask.shape[0] == 1 else f"mask[{first_n}, {first_s}]"
        raise ValueError(
            f"every query must attend to at least one key, but {int(empty.sum())} row(s) of the "
            f"mask (S={s} queries, T={t} keys) are all False, first {row}; the softmax of a "
            "fully masked row is undefined"
        )
    return mask


def attention_forward(
    query: np.ndarray, key: np.ndarray, value: np.ndarray, mask: np.ndarray | None = None
) -> tuple[np.ndarray, AttentionCache]:
    """Scaled dot-product attention.

    Parameters
    ----------
    query : (N, S, E)
    key : (N, T, E)
    value : (N, T, Ev)
    mask : (S, T) or (N, S, T) boolean, optional
        True where a query may attend to a key. Not differentiable.

    Returns
    -------
    out : (N, S, Ev)
    cache : what :func:`attention_backward` needs (the attention weights among it).

    Notes
    -----
    ``scores = query @ key^T / sqrt(E)``; masked scores are excluded (their weight is
    exactly 0), and each row is shifted by the maximum real part of its unmasked scores
    before ``exp``, so nothing overflows and complex perturbations pass through.
    """
    _check_shapes(query, key, value)
    n, s, e = query.shape
    t = key.shape[1]
    keep = _keep_mask(mask, n, s, t)
    scale = 1.0 / math.sqrt(e)  # a Python float: float32 inputs stay float32
    scores = (query @ np.swapaxes(key, 1, 2)) * scale
    real = np.real(scores)
    if keep is not None:
        real = np.where(keep, real, -np.inf)
    shifted = scores - np.max(real, axis=-1, keepdims=True)
    if keep is not None:
        weights = np.where(keep, np.exp(np.where(keep, shifted, 0)), 0)
    else:
        weights = np.exp(shifted)
    weights = weights / np.sum(weights, axis=-1, keepdims=True)
    out = weights @ value
    return out, (query, key, value, weights, scale)


def attention_backward(
    dout: np.ndarray, cache: AttentionCache
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients ``(dquery, dkey, dvalue)`` of ``sum(dout * out)``, ``dout`` of shape (N, S, Ev).

    With attention weights ``p`` (N, S, T): ``dvalue = p^T @ dout``; the softmax passes
    ``ds = p * (dp - sum(p * dp))`` for ``dp = dout @ value^T`` (masked weights are 0, so
    masked scores get no gradient); ``dquery = ds @ key / sqrt(E)`` and
    ``dkey = ds^T @ query / sqrt(E)``.
    """
    query, key, value, weights, scale = cache
    dvalue = np.swapaxes(weights, 1, 2) @ dout
    dweights = dout @ np.swapaxes(value, 1, 2)
    dscores = weights * (dweights - np.sum(weights * dweights, axis=-1, keepdims=True)) * scale
    dquery = dscores @ key
    dkey = np.swapaxes(dscores, 1, 2) @ query
    return (
        dquery.astype(query.dtype, copy=False),
        dkey.astype(key.dtype, copy=False),
        dvalue.astype(value.dtype, copy=False),
    )
