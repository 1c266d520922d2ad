"""2-D convolution (cross-correlation, as in CS231n and torch) with stride, padding, dilation, groups.

``out[n, f, i, j] = b[f] + sum_{c, p, q} w[f, c, p, q] * xp[n, g*Cg + c, i*sh + p*dh, j*sw + q*dw]``
where ``xp`` is ``x`` zero-padded by ``pad`` on each side, ``g = f // (F / groups)`` is the
group of filter ``f`` and ``Cg = C / groups`` the channels each filter sees. The kernel is
not flipped. Output size per axis: ``floor((H + 2P - D(K - 1) - 1) / S) + 1``.

The forward is complex-step safe: padding, strided window views and ``einsum`` carry the
imaginary part through, and buffers take the inputs' dtype.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from reference_layers._validate import int_pair, require_ndim

__all__ = ["conv_backward", "conv_backward_naive", "conv_forward", "conv_forward_naive"]

Pair = tuple[int, int]
Cache = tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]


def _pad(x: np.ndarray, pad: Pair, value: float = 0.0) -> np.ndarray:
    """``x`` (N, C, H, W) padded by ``pad`` rows/columns of ``value`` on each side, in x's dtype."""
    n, c, h, w = x.shape
    xp = np.full((n, c, h + 2 * pad[0], w + 2 * pad[1]), value, dtype=x.dtype)
    xp[:, :, pad[0] : pad[0] + h, pad[1] : pad[1] + w] = x
    return xp


def _windows(xp: np.ndarray, kernel: Pair, stride: Pair, dilation: Pair, out_hw: Pair) -> np.ndarray:
    """Read-only view of the windows of a padded (N, C, Hp, Wp) array: (N, C, Ho, Wo, KH, KW).

    ``[n, c, i, j, p, q]`` is ``xp[n, c, i*sh + p*dh, j*sw + q*dw]`` (the strided form of
    ``sliding_window_view``, without copying). The caller guarantees that every window fits
    (``(Ho - 1)*sh + (KH - 1)*dh < Hp``, likewise for W). Shared with pooling.
    """
    sn, sc, sh, sw = xp.strides
    return as_strided(
        xp,
        shape=(*xp.shape[:2], *out_hw, *kernel),
        strides=(sn, sc, sh * stride[0], sw * stride[1], sh * dilation[0], sw * dilation[1]),
        writeable=False,
    )


def _scatter_windows(dwin: np.ndarray, padded_hw: Pair, stride: Pair, dilation: Pair) -> np.ndarray:
    """Adjoint of :func:`_windows`: sum window gradients (N, C, Ho, Wo, KH, KW) into (N, C, Hp, Wp).

    Windows overlap when the stride is smaller than the kernel span, so contributions are
    ACCUMULATED. The loop runs over the KH * KW kernel taps; each step is one strided,
    vectorised addition over every window. Shared with pooling.
    """
    n, c, ho, wo, kh, kw = dwin.shape
    out = np.zeros((n, c, *padded_hw), dtype=dwin.dtype)
    rows_end, cols_end = stride[0] * (ho - 1) + 1, stride[1] * (wo - 1) + 1
    for p in range(kh):
        r = p * dilation[0]
        for q in range(kw):
            s = q * dilation[1]
            out[:, :, r : r + rows_end : stride[0], s : s + cols_end : stride[1]] += dwin[..., p, q]
    return out


def _conv_geometry(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict[str, Any]
) -> tuple[Pair, Pair, Pair, int, Pair]:
    """Validate the inputs; return (stride, pad, dilation, groups, (Ho, Wo))."""
    require_ndim("x", x, 4, "N, C, H, W")
    require_ndim("w", w, 4, "F, C/groups, HH, WW")
    require_ndim("b", b, 1, "F")
    if "stride" not in conv_param or "pad" not in conv_param:
        raise ValueError(f"conv_param needs 'stride' and 'pad'; got keys {sorted(conv_param)}")
    stride = int_pair("conv_param['stride']", conv_param["stride"], 1)
    pad = int_pair("conv_param['pad']", conv_param["pad"], 0)
    dilation = int_pair("conv_param['dilation']", conv_param.get("dilation", 1), 1)
    groups = conv_param.get("groups", 1)
    if isinstance(groups, bool) or not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"conv_param['groups'] must be an int >= 1; got {groups!r}")
    groups = int(groups)

    _, c, h, wd = x.shape
    f, cg, hh, ww = w.shape
    problems = []
    if c % groups:
        problems.append(f"C={c} is not divisible by groups={groups}")
    if f % groups:
        problems.append(f"F={f} is not divisible by groups={groups}")
    if c % groups == 0 and cg != c // groups:
        problems.append(f"w has {cg} input channels but C/groups = {c}/{groups} = {c // groups}")
    if b.shape[0] != f:
        problems.append(f"b has {b.shape[0]} entries but there are F={f} filters")
    if problems:
        raise ValueError(
            f"conv shapes do not fit: x {x.shape} is (N, C={c}, H={h}, W={wd}), w {w.shape} is "
            f"(F={f}, C/groups={cg}, HH={hh}, WW={ww}), b {b.shape}, groups={groups}: "
            + "; ".join(problems)
        )
    if min(hh, ww) < 1:
        raise ValueError(f"conv kernel must not be empty: w {w.shape} has HH={hh}, WW={ww}")
    span_h, span_w = dilation[0] * (hh - 1) + 1, dilation[1] * (ww - 1) + 1
    hp, wp = h + 2 * pad[0], wd + 2 * pad[1]
    if span_h > hp or span_w > wp:
        raise ValueError(
            f"conv output would be empty: the padded input is H + 2*pad_h = {h} + 2*{pad[0]} = {hp} "
            f"by W + 2*pad_w = {wd} + 2*{pad[1]} = {wp}, smaller than the dilated kernel "
            f"dilation_h*(HH-1)+1 = {dilation[0]}*({hh}-1)+1 = {span_h} by "
            f"dilation_w*(WW-1)+1 = {dilation[1]}*({ww}-1)+1 = {span_w}"
        )
    out_hw = ((hp - span_h) // stride[0] + 1, (wp - span_w) // stride[1] + 1)
    return stride, pad, dilation, groups, out_hw


def conv_forward_naive(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict[str, Any]
) -> tuple[np.ndarray, Cache]:
    """Forward pass of a 2-D convolutional layer (cross-correlation).

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        Input images.
    w : ndarray, shape (F, C/groups, HH, WW)
        Filters; filter ``f`` sees the ``C/groups`` channels of its group.
    b : ndarray, shape (F,)
        Biases.
    conv_param : dict
        ``stride`` and ``pad``: an int or an ``(h, w)`` pair each (zero padding on both
        sides); optional ``dilation`` (int or pair, default 1) and ``groups`` (default 1).

    Returns
    -------
    out : ndarray, shape (N, F, Ho, Wo)
        ``Ho = (H + 2*pad_h - dilation_h*(HH-1) - 1) // stride_h + 1``, likewise ``Wo``.
    cache : tuple
        ``(x, w, b, conv_param)``.

    Raises
    ------
    ValueError
        When the shapes or parameters do not fit; the message names every dimension.
    """
    stride, pad, dilation, groups, (ho, wo) = _conv_geometry(x, w, b, conv_param)
    n = x.shape[0]
    f, cg, hh, ww = w.shape
    xp = _pad(x, pad)
    win = _windows(xp, (hh, ww), stride, dilation, (ho, wo)).reshape(n, groups, cg, ho, wo, hh, ww)
    wg = w.reshape(groups, f // groups, cg, hh, ww)
    out = np.einsum("ngchwpq,gfcpq->ngfhw", win, wg, optimize=True).reshape(n, f, ho, wo)
    out = out + b.reshape(1, f, 1, 1)
    return out, (x, w, b, conv_param)


def conv_backward_naive(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of :func:`conv_forward_naive`.

    Parameters
    ----------
    dout : ndarray, shape (N, F, Ho, Wo)
        Upstream gradient.
    cache : tuple
        ``(x, w, b, conv_param)`` from the forward pass.

    Returns
    -------
    dx : ndarray, shape (N, C, H, W)
        Input rows and columns that no window reaches get 0.
    dw : ndarray, shape (F, C/groups, HH, WW)
    db : ndarray, shape (F,)
        ``dout`` summed over N, Ho and Wo.
    """
    x, w, b, conv_param = cache
    stride, pad, dilation, groups, (ho, wo) = _conv_geometry(x, w, b, conv_param)
    if dout.shape != (x.shape[0], w.shape[0], ho, wo):
        raise ValueError(
            f"dout {dout.shape} does not match the conv output (N, F, Ho, Wo) = "
            f"({x.shape[0]}, {w.shape[0]}, {ho}, {wo})"
        )
    n, c, h, wd = x.shape
    f, cg, hh, ww = w.shape
    xp = _pad(x, pad)
    win = _windows(xp, (hh, ww), stride, dilation, (ho, wo)).reshape(n, groups, cg, ho, wo, hh, ww)
    dout_g = dout.reshape(n, groups, f // groups, ho, wo)
    wg = w.reshape(groups, f // groups, cg, hh, ww)

    db = dout.sum(axis=(0, 2, 3))
    dw = np.einsum("ngchwpq,ngfhw->gfcpq", win, dout_g, optimize=True).reshape(w.shape)
    dwin = np.einsum("ngfhw,gfcpq->ngchwpq", dout_g, wg, optimize=True).reshape(n, c, ho, wo, hh, ww)
    dxp = _scatter_windows(dwin, xp.shape[2:], stride, dilation)
    # Crop by explicit end indices: dxp[..., p:-p] would be empty for p = 0.
    dx = dxp[:, :, pad[0] : pad[0] + h, pad[1] : pad[1] + wd]
    return dx, dw, db


conv_forward = conv_forward_naive
conv_backward = conv_backward_naive
