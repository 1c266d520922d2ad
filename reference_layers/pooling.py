"""2-D max and average pooling, with overlapping windows and padding as in torch.

Padding follows ``torch.nn.functional`` so that torch can serve as an oracle: max pooling
pads with ``-inf`` (a padded entry is never the maximum), average pooling pads with zeros
that count in the divisor (``count_include_pad=True``: every window divides by
``pool_height * pool_width``). As in torch, ``pad`` may be at most half the window on
each axis, so every window holds at least one real entry.

Max pooling picks the maximum by the REAL part (``argmax`` of ``np.real``) and gathers the
complex entry, so the forward is complex-step safe; never ``np.max`` on the data. Its
backward routes each window's gradient to that argmax and ACCUMULATES, because with a
stride smaller than the window one entry can be the maximum of several windows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reference_layers._validate import int_pair, require_ndim

# Padding, the strided window view and its adjoint are shared with the convolution layer.
from reference_layers.conv import _pad, _scatter_windows, _windows

__all__ = [
    "avg_pool_backward",
    "avg_pool_backward_naive",
    "avg_pool_forward",
    "avg_pool_forward_naive",
    "max_pool_backward",
    "max_pool_backward_naive",
    "max_pool_forward",
    "max_pool_forward_naive",
]

Pair = tuple[int, int]
Cache = tuple[np.ndarray, dict[str, Any]]
_UNIT = (1, 1)


def _pool_geometry(x: np.ndarray, pool_param: dict[str, Any]) -> tuple[Pair, Pair, Pair, Pair]:
    """Validate the inputs; return (window, stride, pad, (Ho, Wo))."""
    require_ndim("x", x, 4, "N, C, H, W")
    missing = [k for k in ("pool_height", "pool_width", "stride") if k not in pool_param]
    if missing:
        raise ValueError(
            f"pool_param needs 'pool_height', 'pool_width' and 'stride'; missing {missing}, "
            f"got keys {sorted(pool_param)}"
        )
    for key in ("pool_height", "pool_width"):
        size = pool_param[key]
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"pool_param[{key!r}] must be an int >= 1; got {size!r}")
    window = (int(pool_param["pool_height"]), int(pool_param["pool_width"]))
    stride = int_pair("pool_param['stride']", pool_param["stride"], 1)
    pad = int_pair("pool_param['pad']", pool_param.get("pad", 0), 0)
    _, _, h, w = x.shape
    if 2 * pad[0] > window[0] or 2 * pad[1] > window[1]:
        raise ValueError(
            f"pool padding must be at most half the window: pad (h, w) = {pad} with "
            f"pool_height={window[0]}, pool_width={window[1]} (at most "
            f"({window[0] // 2}, {window[1] // 2}))"
        )
    hp, wp = h + 2 * pad[0], w + 2 * pad[1]
    if window[0] > hp or window[1] > wp:
        raise ValueError(
            f"pool output would be empty: x {x.shape} padded to H + 2*pad_h = {h} + 2*{pad[0]} = {hp} "
            f"by W + 2*pad_w = {w} + 2*{pad[1]} = {wp} is smaller than the window "
            f"pool_height={window[0]} by pool_width={window[1]}"
        )
    out_hw = ((hp - window[0]) // stride[0] + 1, (wp - window[1]) // stride[1] + 1)
    return window, stride, pad, out_hw


def _check_dout(dout: np.ndarray, x: np.ndarray, out_hw: Pair) -> None:
    if dout.shape != (*x.shape[:2], *out_hw):
        raise ValueError(
            f"dout {dout.shape} does not match the pooled output (N, C, Ho, Wo) = {(*x.shape[:2], *out_hw)}"
        )


def _crop(dxp: np.ndarray, pad: Pair, hw: tuple[int, ...]) -> np.ndarray:
    # Explicit end indices: dxp[..., p:-p] would be empty for p = 0.
    return dxp[:, :, pad[0] : pad[0] + hw[0], pad[1] : pad[1] + hw[1]]


def _max_windows(
    x: np.ndarray, pool_param: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray, Pair, Pair, Pair]:
    """Flattened windows (N, C, Ho, Wo, ph*pw), the argmax of their real parts, window, stride, pad."""
    window, stride, pad, out_hw = _pool_geometry(x, pool_param)
    xp = _pad(x, pad, value=-np.inf)
    flat = _windows(xp, window, stride, _UNIT, out_hw).reshape(*x.shape[:2], *out_hw, -1)
    argmax = np.argmax(np.real(flat), axis=-1)[..., None]
    return flat, argmax, window, stride, pad


def max_pool_forward_naive(x: np.ndarray, pool_param: dict[str, Any]) -> tuple[np.ndarray, Cache]:
    """Forward pass of max pooling.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    pool_param : dict
        ``pool_height``, ``pool_width``, ``stride`` (int or ``(h, w)`` pair) and optional
        ``pad`` (int or pair, default 0, at most half the window; pads with ``-inf``).

    Returns
    -------
    out : ndarray, shape (N, C, Ho, Wo)
        ``Ho = (H + 2*pad_h - pool_height) // stride_h + 1``, likewise ``Wo``.
    cache : tuple
        ``(x, pool_param)``.
    """
    flat, argmax, *_ = _max_windows(x, pool_param)
    out = np.take_along_axis(flat, argmax, axis=-1)[..., 0]
    return out, (x, pool_param)


def max_pool_backward_naive(dout: np.ndarray, cache: Cache) -> np.ndarray:
    """Backward pass of max pooling: dx (N, C, H, W).

    Each window's ``dout`` goes to its argmax; an entry that is the maximum of several
    overlapping windows receives the sum of their gradients.
    """
    x, pool_param = cache
    flat, argmax, window, stride, pad = _max_windows(x, pool_param)
    _check_dout(dout, x, flat.shape[2:4])
    dwin = np.zeros(flat.shape, dtype=dout.dtype)
    np.put_along_axis(dwin, argmax, dout[..., None], axis=-1)
    dxp = _scatter_windows(dwin.reshape(*dout.shape, *window), _padded_hw(x, pad), stride, _UNIT)
    return _crop(dxp, pad, x.shape[2:])


def _padded_hw(x: np.ndarray, pad: Pair) -> Pair:
    return x.shape[2] + 2 * pad[0], x.shape[3] + 2 * pad[1]


def avg_pool_forward_naive(x: np.ndarray, pool_param: dict[str, Any]) -> tuple[np.ndarray, Cache]:
    """Forward pass of average pooling (zero padding counted in the divisor, as torch's default).

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    pool_param : dict
        As for :func:`max_pool_forward_naive`; padding is with zeros.

    Returns
    -------
    out : ndarray, shape (N, C, Ho, Wo)
        The mean of each ``pool_height x pool_width`` window.
    cache : tuple
        ``(x, pool_param)``.
    """
    window, stride, pad, out_hw = _pool_geometry(x, pool_param)
    win = _windows(_pad(x, pad), window, stride, _UNIT, out_hw)
    out = win.sum(axis=(-2, -1)) / (window[0] * window[1])
    return out.astype(x.dtype, copy=False), (x, pool_param)


def avg_pool_backward_naive(dout: np.ndarray, cache: Cache) -> np.ndarray:
    """Backward pass of average pooling: dx (N, C, H, W).

    Every entry of a window gets ``dout / (pool_height * pool_width)``, summed over the
    windows that contain it.
    """
    x, pool_param = cache
    window, stride, pad, out_hw = _pool_geometry(x, pool_param)
    _check_dout(dout, x, out_hw)
    share = (dout / (window[0] * window[1])).astype(dout.dtype, copy=False)
    dwin = np.broadcast_to(share[..., None, None], (*dout.shape, *window))
    dxp = _scatter_windows(dwin, _padded_hw(x, pad), stride, _UNIT)
    return _crop(dxp, pad, x.shape[2:])


max_pool_forward = max_pool_forward_naive
max_pool_backward = max_pool_backward_naive
avg_pool_forward = avg_pool_forward_naive
avg_pool_backward = avg_pool_backward_naive
