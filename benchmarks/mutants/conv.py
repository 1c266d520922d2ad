"""Mutants and variants of the convolution and pooling layers: conv, max_pool, avg_pool and the
reshape-trick pooling specs.

Sources: the student-style 4-deep loops of ``examples/layers_correct.py`` (``conv_*_naive``,
which asserts the CS231n contract, so geometry ``auto`` skips the general cases it rejects, and
``max_pool_*_naive``) and the vectorised reference modules ``reference_layers/conv.py`` and
``reference_layers/pooling.py`` (dilation, groups, per-axis stride and padding, padded pooling).
Bugs that need a geometry the CS231n contract does not draw (dilation, padded pooling) are
mutations of the reference modules, whose general cases ``auto`` draws.

Larger rewrites (im2col, einsum, the reshape trick, average pooling as a convolution) are
appended to their source file under another CS231n name (``conv_forward_im2col``, ...) and
checked through ``functions``.
"""

from __future__ import annotations

from benchmarks.mutants import ROOT, Mutant, Variant

LOOPS = "examples/layers_correct.py"
CONV = "reference_layers/conv.py"
POOLING = "reference_layers/pooling.py"

# ---- snippets of examples/layers_correct.py ---------------------------------------------------
# The last line of the file: variants that add a differently written pair append after it.
LOOPS_END = "    return loss, dx_flat.reshape(N, T, V)\n"
# From the conv forward's loops to the end of the conv backward's loops (one contiguous snippet,
# for edits that must change both passes consistently).
CONV_LOOPS = (
    "                    out[n, f, i, j] = np.sum(window * w[f]) + b[f]\n"
    "    cache = (x, w, b, conv_param)\n"
    "    return out, cache\n"
    "\n"
    "\n"
    "def conv_backward_naive(dout, cache):\n"
    "    x, w, b, conv_param = cache\n"
    "    N, C, H, W = x.shape\n"
    "    F, _, HH, WW = w.shape\n"
    '    stride, pad = conv_param["stride"], conv_param["pad"]\n'
    "    _, _, H_out, W_out = dout.shape\n"
    '    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="constant")\n'
    "    dx_pad = np.zeros_like(x_pad)\n"
    "    dw = np.zeros_like(w)\n"
    "    db = np.sum(dout, axis=(0, 2, 3))\n"
    "    for n in range(N):\n"
    "        for f in range(F):\n"
    "            for i in range(H_out):\n"
    "                for j in range(W_out):\n"
    "                    hs, ws = i * stride, j * stride\n"
    "                    window = x_pad[n, :, hs:hs + HH, ws:ws + WW]\n"
    "                    dw[f] += window * dout[n, f, i, j]\n"
    "                    dx_pad[n, :, hs:hs + HH, ws:ws + WW] += w[f] * dout[n, f, i, j]\n"
)
CONV_BACKWARD_LOOPS = (
    "    for n in range(N):\n"
    "        for f in range(F):\n"
    "            for i in range(H_out):\n"
    "                for j in range(W_out):\n"
    "                    hs, ws = i * stride, j * stride\n"
    "                    window = x_pad[n, :, hs:hs + HH, ws:ws + WW]\n"
    "                    dw[f] += window * dout[n, f, i, j]\n"
    "                    dx_pad[n, :, hs:hs + HH, ws:ws + WW] += w[f] * dout[n, f, i, j]\n"
)
MAX_POOL_BACKWARD_BODY = (
    "                    window = x[n, c, i * stride:i * stride + ph, j * stride:j * stride + pw]\n"
    "                    r, s = np.unravel_index(np.argmax(window), window.shape)\n"
    "                    dx[n, c, i * stride + r, j * stride + s] += dout[n, c, i, j]\n"
)
MAX_POOL_ROUTE = "                    dx[n, c, i * stride + r, j * stride + s] += dout[n, c, i, j]\n"
MAX_POOL_ARGMAX = "                    r, s = np.unravel_index(np.argmax(window), window.shape)\n"

# ---- snippets of reference_layers/pooling.py -------------------------------------------------
AVG_SCATTER = (
    "    dwin = np.broadcast_to(share[..., None, None], (*dout.shape, *window))\n"
    "    dxp = _scatter_windows(dwin, _padded_hw(x, pad), stride, _UNIT)\n"
)
# The avg-pool backward as a student writes it with loops over the output positions; ``{op}``
# is the accumulation (``+=`` is right: overlapping windows share entries).
AVG_SCATTER_LOOPS = (
    "    dxp = np.zeros((*x.shape[:2], *_padded_hw(x, pad)), dtype=dout.dtype)\n"
    "    for i in range(out_hw[0]):\n"
    "        for j in range(out_hw[1]):\n"
    "            r, s = i * stride[0], j * stride[1]\n"
    "            dxp[:, :, r:r + window[0], s:s + window[1]] {op} share[:, :, i, j, None, None]\n"
)
POOLING_END = "avg_pool_backward = avg_pool_backward_naive\n"


def _span(source: str, first: str, last: str) -> str:
    """The text of ``source`` from the line ``first`` through the line ``last`` (both included)."""
    text = (ROOT / source).read_text()
    start = text.index(first)
    return text[start : text.index(last, start) + len(last)]


AVG_DIVISOR = "(window[0] * window[1])"
# The avg-pool forward's division through the backward's: both passes divide by the window size.
AVG_BOTH = _span(
    POOLING,
    "    out = win.sum(axis=(-2, -1)) / (window[0] * window[1])\n",
    "    share = (dout / (window[0] * window[1])).astype(dout.dtype, copy=False)\n",
)
# Number of real (unpadded) entries in each window, for count_include_pad=False.
AVG_COUNT = (
    "    count = _windows(_pad(np.ones(x.shape), pad), window, stride, _UNIT, out_hw).sum(axis=(-2, -1))\n"
)
CONV_END = "conv_backward = conv_backward_naive\n"

# ---- appended implementations (variants) -------------------------------------------------------
CONV_IM2COL = '''

def _im2col(x_pad, HH, WW, stride, H_out, W_out):
    N, C = x_pad.shape[:2]
    cols = np.zeros((C, HH, WW, N, H_out, W_out))
    for p in range(HH):
        for q in range(WW):
            patch = x_pad[:, :, p:p + stride * H_out:stride, q:q + stride * W_out:stride]
            cols[:, p, q] = patch.transpose(1, 0, 2, 3)
    return cols.reshape(C * HH * WW, N * H_out * W_out)


def _col2im(cols, x_pad_shape, HH, WW, stride, H_out, W_out):
    N, C = x_pad_shape[:2]
    cols = cols.reshape(C, HH, WW, N, H_out, W_out)
    dx_pad = np.zeros(x_pad_shape)
    for p in range(HH):
        for q in range(WW):
            dx_pad[:, :, p:p + stride * H_out:stride, q:q + stride * W_out:stride] += (
                cols[:, p, q].transpose(1, 0, 2, 3))
    return dx_pad


def conv_forward_im2col(x, w, b, conv_param):
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    stride, pad = conv_param["stride"], conv_param["pad"]
    H_out = 1 + (H + 2 * pad - HH) // stride
    W_out = 1 + (W + 2 * pad - WW) // stride
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="constant")
    cols = _im2col(x_pad, HH, WW, stride, H_out, W_out)
    out = w.reshape(F, -1) @ cols + b[:, None]
    out = out.reshape(F, N, H_out, W_out).transpose(1, 0, 2, 3)
    return out, (x, w, b, conv_param, cols)


def conv_backward_im2col(dout, cache):
    x, w, b, conv_param, cols = cache
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    stride, pad = conv_param["stride"], conv_param["pad"]
    _, _, H_out, W_out = dout.shape
    dout_mat = dout.transpose(1, 0, 2, 3).reshape(F, -1)
    db = dout_mat.sum(axis=1)
    dw = (dout_mat @ cols.T).reshape(w.shape)
    dcols = w.reshape(F, -1).T @ dout_mat
    x_pad_shape = (N, C, H + 2 * pad, W + 2 * pad)
    dx_pad = _col2im(dcols, x_pad_shape, HH, WW, stride, H_out, W_out)
    return dx_pad[:, :, pad:pad + H, pad:pad + W], dw, db
'''

CONV_EINSUM = '''

def conv_forward_strides(x, w, b, conv_param):
    from numpy.lib.stride_tricks import sliding_window_view

    stride, pad = conv_param["stride"], conv_param["pad"]
    F, _, HH, WW = w.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = sliding_window_view(x_pad, (HH, WW), axis=(2, 3))[:, :, ::stride, ::stride]
    out = np.einsum("nchwpq,fcpq->nfhw", win, w) + b[None, :, None, None]
    return out, (x, w, b, conv_param)


def conv_backward_strides(dout, cache):
    from numpy.lib.stride_tricks import sliding_window_view

    x, w, b, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    _, _, H_out, W_out = dout.shape
    x_pad = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    win = sliding_window_view(x_pad, (HH, WW), axis=(2, 3))[:, :, ::stride, ::stride]
    db = np.einsum("nfhw->f", dout)
    dw = np.einsum("nchwpq,nfhw->fcpq", win, dout)
    dwin = np.einsum("nfhw,fcpq->nchwpq", dout, w)
    dx_pad = np.zeros_like(x_pad)
    for p in range(HH):
        for q in range(WW):
            dx_pad[:, :, p:p + stride * H_out:stride, q:q + stride * W_out:stride] += dwin[..., p, q]
    return dx_pad[:, :, pad:pad + H, pad:pad + W], dw, db
'''

CONV_FLOAT32 = '''

def conv_forward_fast(x, w, b, conv_param):
    """float32 inside (half the memory), the caller's dtype outside."""
    f32 = np.float32
    out, cache = conv_forward_naive(x.astype(f32), w.astype(f32), b.astype(f32), conv_param)
    return out.astype(x.dtype), (cache, x.dtype)


def conv_backward_fast(dout, cache):
    cache32, dtype = cache
    dx, dw, db = conv_backward_naive(dout.astype(np.float32), cache32)
    return dx.astype(dtype), dw.astype(dtype), db.astype(dtype)
'''

AVG_POOL_BY_CONV = '''

def _box_filter(x, pool_param):
    """Average pooling is a depthwise convolution with a constant kernel 1 / (ph * pw)."""
    ph, pw = pool_param["pool_height"], pool_param["pool_width"]
    w = np.full((x.shape[1], ph, pw), 1.0 / (ph * pw), dtype=x.dtype)
    return w, pool_param["stride"], pool_param.get("pad", 0)


def _depthwise_windows(shape, w, stride, pad):
    _, _, H, W = shape
    _, ph, pw = w.shape
    for i in range((H + 2 * pad - ph) // stride + 1):
        for j in range((W + 2 * pad - pw) // stride + 1):
            yield i, j, (slice(None), slice(None), slice(i * stride, i * stride + ph),
                         slice(j * stride, j * stride + pw))


def avg_pool_forward_fast(x, pool_param):
    w, stride, pad = _box_filter(x, pool_param)
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    N, C, H, W = x.shape
    _, ph, pw = w.shape
    out = np.zeros((N, C, (H + 2 * pad - ph) // stride + 1, (W + 2 * pad - pw) // stride + 1), dtype=x.dtype)
    for i, j, window in _depthwise_windows(x.shape, w, stride, pad):
        out[:, :, i, j] = np.sum(xp[window] * w, axis=(2, 3))
    return out, (x, pool_param)


def avg_pool_backward_fast(dout, cache):
    x, pool_param = cache
    w, stride, pad = _box_filter(x, pool_param)
    N, C, H, W = x.shape
    dxp = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=dout.dtype)
    for i, j, window in _depthwise_windows(x.shape, w, stride, pad):
        dxp[window] += dout[:, :, i, j][:, :, None, None] * w
    return dxp[:, :, pad:pad + H, pad:pad + W]
'''

RESHAPE_POOLS = '''

def max_pool_forward_reshape(x, pool_param):
    N, C, H, W = x.shape
    k = pool_param["stride"]
    assert pool_param["pool_height"] == pool_param["pool_width"] == k
    assert H % k == 0 and W % k == 0
    x_reshaped = x.reshape(N, C, H // k, k, W // k, k)
    out = x_reshaped.max(axis=3).max(axis=4)
    return out, (x, x_reshaped, out)


def max_pool_backward_reshape(dout, cache):
    x, x_reshaped, out = cache
    dx_reshaped = np.zeros_like(x_reshaped)
    out_newaxis = out[:, :, :, np.newaxis, :, np.newaxis]
    mask = x_reshaped == out_newaxis
    dout_newaxis = dout[:, :, :, np.newaxis, :, np.newaxis]
    dout_broadcast, _ = np.broadcast_arrays(dout_newaxis, dx_reshaped)
    dx_reshaped[mask] = dout_broadcast[mask]
    dx_reshaped /= np.sum(mask, axis=(3, 5), keepdims=True)
    return dx_reshaped.reshape(x.shape)


def avg_pool_forward_reshape(x, pool_param):
    N, C, H, W = x.shape
    k = pool_param["stride"]
    assert pool_param["pool_height"] == pool_param["pool_width"] == k
    assert H % k == 0 and W % k == 0
    out = x.reshape(N, C, H // k, k, W // k, k).mean(axis=(3, 5))
    return out, (x, k)


def avg_pool_backward_reshape(dout, cache):
    x, k = cache
    N, C, H, W = x.shape
    share = dout[:, :, :, None, :, None] / (k * k)
    return np.broadcast_to(share, (N, C, H // k, k, W // k, k)).reshape(x.shape)
'''


MUTANTS: list[Mutant] = [
    # ---- conv: student loops ------------------------------------------------------------------
    Mutant(
        name="conv: padding cropped with [p:-p] (empty dx at pad 0)",
        source=LOOPS, spec="conv",
        old="    dx = dx_pad[:, :, pad:pad + H, pad:pad + W]\n",
        new="    dx = dx_pad[:, :, pad:-pad, pad:-pad]\n",
        expect=frozenset({"x"}), geometry="pad=0",
    ),
    Mutant(
        name="conv: padding cropped without its offset (dx_pad[:, :, :H, :W])",
        source=LOOPS, spec="conv",
        old="    dx = dx_pad[:, :, pad:pad + H, pad:pad + W]\n",
        new="    dx = dx_pad[:, :, :H, :W]\n",
        expect=frozenset({"x"}), geometry="pad=1",
    ),
    Mutant(
        name="conv: stride ignored in backward (window starts at i, j)",
        source=LOOPS, spec="conv",
        old="                    hs, ws = i * stride, j * stride\n",
        new="                    hs, ws = i, j\n",
        # The gradient lands on the wrong columns; the stride diagnosis is the one that applies.
        expect=frozenset({"x", "w"}), diagnosis="uses the stride", geometry="stride=2",
    ),
    Mutant(
        name="conv: db averaged over the batch",
        source=LOOPS, spec="conv",
        old="    db = np.sum(dout, axis=(0, 2, 3))\n",
        new="    db = np.sum(dout, axis=(0, 2, 3)) / N\n",
        expect=frozenset({"b"}), diagnosis="(N = ",
    ),
    Mutant(
        name="conv: dw divided by the batch size",
        source=LOOPS, spec="conv",
        old="    dx = dx_pad[:, :, pad:pad + H, pad:pad + W]\n",
        new="    dx = dx_pad[:, :, pad:pad + H, pad:pad + W]\n    dw /= N\n",
        expect=frozenset({"w"}), diagnosis="(N = ", geometry="x=(2,",
    ),
    Mutant(
        name="conv: db summed over the wrong axes (filters and positions instead of batch and positions)",
        source=LOOPS, spec="conv",
        old="    db = np.sum(dout, axis=(0, 2, 3))\n",
        new="    db = np.sum(dout, axis=(1, 2, 3))\n",
        expect=frozenset({"b"}),
    ),
    Mutant(
        name="conv: dw accumulated from the first sample's window (x_pad[0] instead of x_pad[n])",
        source=LOOPS, spec="conv",
        old="                    window = x_pad[n, :, hs:hs + HH, ws:ws + WW]\n",
        new="                    window = x_pad[0, :, hs:hs + HH, ws:ws + WW]\n",
        expect=frozenset({"w"}), geometry="x=(2,",
    ),
    Mutant(
        name="conv: dx window uses HH for the width",
        source=LOOPS, spec="conv",
        old="                    dx_pad[n, :, hs:hs + HH, ws:ws + WW] += w[f] * dout[n, f, i, j]\n",
        new="                    dx_pad[n, :, hs:hs + HH, ws:ws + HH] += w[f] * dout[n, f, i, j]\n",
        # The slice is narrower or wider than w[f]: the backward raises on a non-square kernel.
        expect=frozenset({"contract:backward_error", "x", "w", "b"}), diagnosis="ValueError",
        geometry="w=(1, 1, 1, 2)",
    ),
    Mutant(
        name="conv: dx accumulated with = instead of += (overlapping windows and filters)",
        source=LOOPS, spec="conv",
        old="                    dx_pad[n, :, hs:hs + HH, ws:ws + WW] += w[f] * dout[n, f, i, j]\n",
        new="                    dx_pad[n, :, hs:hs + HH, ws:ws + WW] = w[f] * dout[n, f, i, j]\n",
        expect=frozenset({"x"}),
    ),
    Mutant(
        name="conv: kernel flipped (true convolution) in forward, backward consistent",
        source=LOOPS, spec="conv",
        old=CONV_LOOPS,
        new=CONV_LOOPS.replace(
            "np.sum(window * w[f]) + b[f]", "np.sum(window * w[f, :, ::-1, ::-1]) + b[f]"
        ).replace(
            "dw[f] += window * dout", "dw[f] += window[:, ::-1, ::-1] * dout"
        ).replace(
            "+= w[f] * dout", "+= w[f, :, ::-1, ::-1] * dout"
        ),
        expect=frozenset({"forward"}),
    ),
    Mutant(
        name="conv: output size with the padding counted once (H + pad - HH)",
        source=LOOPS, spec="conv",
        old="    H_out = 1 + (H + 2 * pad - HH) // stride\n    W_out = 1 + (W + 2 * pad - WW) // stride\n",
        new="    H_out = 1 + (H + pad - HH) // stride\n    W_out = 1 + (W + pad - WW) // stride\n",
        # The backward reads the output size from dout: consistent with the forward, so only the
        # forward is wrong (the gradients, checked against this forward, are right).
        expect=frozenset({"forward"}), diagnosis="shape", geometry="pad=1",
    ),
    # ---- conv: reference (dilation) -----------------------------------------------------------
    Mutant(
        name="conv: dilation ignored when scattering dx (reference backward)",
        source=CONV, spec="conv",
        old="    dxp = _scatter_windows(dwin, xp.shape[2:], stride, dilation)\n",
        new="    dxp = _scatter_windows(dwin, xp.shape[2:], stride, (1, 1))\n",
        expect=frozenset({"x"}), geometry="dilation",
    ),
    Mutant(
        name="conv: dilation ignored in the windows dw is taken from (reference backward)",
        source=CONV, spec="conv",
        old="    n, c, h, wd = x.shape\n    f, cg, hh, ww = w.shape\n    xp = _pad(x, pad)\n"
            "    win = _windows(xp, (hh, ww), stride, dilation, (ho, wo))",
        new="    n, c, h, wd = x.shape\n    f, cg, hh, ww = w.shape\n    xp = _pad(x, pad)\n"
            "    win = _windows(xp, (hh, ww), stride, (1, 1), (ho, wo))",
        expect=frozenset({"w"}), geometry="dilation",
    ),
    # ---- max pool -----------------------------------------------------------------------------
    Mutant(
        name="max_pool: = instead of += (an entry that is the max of overlapping windows)",
        source=LOOPS, spec="max_pool",
        old=MAX_POOL_ROUTE,
        new=MAX_POOL_ROUTE.replace("+=", "="),
        expect=frozenset({"x"}), geometry="pool_height=2, pool_width=1, stride=1",
    ),
    Mutant(
        name="max_pool: gradient routed to the window's first element instead of its argmax",
        source=LOOPS, spec="max_pool",
        old=MAX_POOL_ARGMAX,
        new="                    r, s = 0, 0\n",
        expect=frozenset({"x"}), diagnosis="selects the wrong entries",
    ),
    Mutant(
        name="max_pool: flat argmax unravelled with the pool height as the row width",
        source=LOOPS, spec="max_pool",
        old=MAX_POOL_ARGMAX,
        new="                    k = np.argmax(window)\n                    r, s = k // ph, k % ph\n",
        # The unravelled row runs past the window (and the input): IndexError on a non-square pool.
        expect=frozenset({"contract:backward_error", "x"}), diagnosis="IndexError",
        geometry="pool_height=1, pool_width=2",
    ),
    Mutant(
        name="max_pool: stride ignored in backward (gradient written at i + r, j + s)",
        source=LOOPS, spec="max_pool",
        old=MAX_POOL_ROUTE,
        new="                    dx[n, c, i + r, j + s] += dout[n, c, i, j]\n",
        expect=frozenset({"x"}), diagnosis="uses the stride", geometry="stride=2",
    ),
    Mutant(
        name="max_pool: padded with zeros instead of -inf (forward bug, backward consistent)",
        source=POOLING, spec="max_pool",
        old="    xp = _pad(x, pad, value=-np.inf)\n",
        new="    xp = _pad(x, pad)\n",
        expect=frozenset({"forward"}), geometry="pad=1",
    ),
    # ---- avg pool -----------------------------------------------------------------------------
    Mutant(
        name="avg_pool: backward not divided by the window size",
        source=POOLING, spec="avg_pool",
        old="    share = (dout / (window[0] * window[1])).astype(dout.dtype, copy=False)\n",
        new="    share = dout\n",
        expect=frozenset({"x"}), diagnosis="times the true gradient",
    ),
    Mutant(
        name="avg_pool: backward divided by pool_height squared (non-square windows)",
        source=POOLING, spec="avg_pool",
        old="    share = (dout / (window[0] * window[1])).astype(dout.dtype, copy=False)\n",
        new="    share = (dout / (window[0] * window[0])).astype(dout.dtype, copy=False)\n",
        expect=frozenset({"x"}), geometry="pool_height=1, pool_width=2",
    ),
    Mutant(
        name="avg_pool: = instead of += in the backward loop (overlapping windows)",
        source=POOLING, spec="avg_pool",
        old=AVG_SCATTER,
        new=AVG_SCATTER_LOOPS.format(op="="),
        # The failing case has stride 1: the diagnosis must be about accumulating, not the stride.
        expect=frozenset({"x"}), diagnosis="+=", geometry="pool_height=2, pool_width=1, stride=1",
    ),
    Mutant(
        name="avg_pool: stride ignored in the backward loop",
        source=POOLING, spec="avg_pool",
        old=AVG_SCATTER,
        new=AVG_SCATTER_LOOPS.format(op="+=").replace(
            "r, s = i * stride[0], j * stride[1]", "r, s = i, j"),
        expect=frozenset({"x"}), diagnosis="uses the stride", geometry="stride=2",
    ),
    Mutant(
        name="avg_pool: divides by the real entries only (count_include_pad=False), backward consistent",
        source=POOLING, spec="avg_pool",
        old=AVG_BOTH,
        new=AVG_BOTH.replace(
            "    out = win.sum(axis=(-2, -1)) / " + AVG_DIVISOR,
            AVG_COUNT + "    out = win.sum(axis=(-2, -1)) / count",
        ).replace("    share = (dout / " + AVG_DIVISOR, AVG_COUNT + "    share = (dout / count"),
        expect=frozenset({"forward"}), geometry="pad=1",
    ),
    # ---- reshape-trick pooling ----------------------------------------------------------------
    Mutant(
        name="avg_pool_reshape: backward divided by k instead of k * k",
        source=LOOPS, spec="avg_pool_reshape",
        functions=("avg_pool_forward_reshape", "avg_pool_backward_reshape"),
        old=LOOPS_END,
        new=LOOPS_END + RESHAPE_POOLS.replace("dout[:, :, :, None, :, None] / (k * k)",
                                              "dout[:, :, :, None, :, None] / k"),
        expect=frozenset({"x"}),
    ),
    Mutant(
        name="max_pool: window made its max mask in place (x written via its cache; wrong on overlaps)",
        source=LOOPS, spec="max_pool",
        old=MAX_POOL_BACKWARD_BODY,
        new=(
            "                    hs, ws = i * stride, j * stride\n"
            "                    window = x[n, c, hs:hs + ph, ws:ws + pw]\n"
            "                    window[...] = window == np.max(window)\n"
            "                    dx[n, c, hs:hs + ph, ws:ws + pw] += window * dout[n, c, i, j]\n"
        ),
        expect=frozenset({"x"}), geometry="stride=1",
    ),
]

VARIANTS: list[Variant] = [
    Variant(
        name="conv: im2col and matrix products",
        source=LOOPS, spec="conv", functions=("conv_forward_im2col", "conv_backward_im2col"),
        old=LOOPS_END, new=LOOPS_END + CONV_IM2COL,
    ),
    Variant(
        name="conv: sliding_window_view and einsum, dx scattered tap by tap",
        source=LOOPS, spec="conv", functions=("conv_forward_strides", "conv_backward_strides"),
        old=LOOPS_END, new=LOOPS_END + CONV_EINSUM,
    ),
    Variant(
        name="conv: backward loops in another order (filters, positions, then samples)",
        source=LOOPS, spec="conv",
        old=CONV_BACKWARD_LOOPS,
        new=(
            "    for f in range(F):\n"
            "        for j in range(W_out):\n"
            "            for i in range(H_out):\n"
            "                for n in range(N):\n"
            "                    hs, ws = i * stride, j * stride\n"
            "                    window = x_pad[n, :, hs:hs + HH, ws:ws + WW]\n"
            "                    dw[f] += window * dout[n, f, i, j]\n"
            "                    dx_pad[n, :, hs:hs + HH, ws:ws + WW] += w[f] * dout[n, f, i, j]\n"
        ),
    ),
    Variant(
        name="conv: backward over output positions, vectorised over samples and filters (tensordot)",
        source=LOOPS, spec="conv",
        old=CONV_BACKWARD_LOOPS,
        new=(
            "    for i in range(H_out):\n"
            "        for j in range(W_out):\n"
            "            hs, ws = i * stride, j * stride\n"
            "            window = x_pad[:, :, hs:hs + HH, ws:ws + WW]\n"
            "            dw += np.tensordot(dout[:, :, i, j], window, axes=(0, 0))\n"
            "            dwindow = np.tensordot(dout[:, :, i, j], w, axes=(1, 0))\n"
            "            dx_pad[:, :, hs:hs + HH, ws:ws + WW] += dwindow\n"
        ),
    ),
    Variant(
        name="conv: float32 internals around the reference conv",
        source=CONV, spec="conv", functions=("conv_forward_fast", "conv_backward_fast"),
        old=CONV_END, new=CONV_END + CONV_FLOAT32,
    ),
    Variant(
        name="max_pool: backward through the mask window == max (equal on tie-free data)",
        source=LOOPS, spec="max_pool",
        old=MAX_POOL_BACKWARD_BODY,
        new=(
            "                    hs, ws = i * stride, j * stride\n"
            "                    window = x[n, c, hs:hs + ph, ws:ws + pw]\n"
            "                    mask = window == np.max(window)\n"
            "                    dx[n, c, hs:hs + ph, ws:ws + pw] += mask * dout[n, c, i, j]\n"
        ),
    ),
    Variant(
        name="max_pool: flat argmax unravelled by hand (k // pw, k % pw)",
        source=LOOPS, spec="max_pool",
        old=MAX_POOL_ARGMAX,
        new="                    k = np.argmax(window)\n                    r, s = k // pw, k % pw\n",
    ),
    Variant(
        name="avg_pool: depthwise convolution with a constant kernel 1 / (ph * pw)",
        source=POOLING, spec="avg_pool", functions=("avg_pool_forward_fast", "avg_pool_backward_fast"),
        old=POOLING_END, new=POOLING_END + AVG_POOL_BY_CONV,
    ),
    Variant(
        name="avg_pool: backward with loops over the output positions",
        source=POOLING, spec="avg_pool",
        old=AVG_SCATTER, new=AVG_SCATTER_LOOPS.format(op="+="),
    ),
    Variant(
        name="max_pool_reshape: CS231n reshape trick",
        source=LOOPS, spec="max_pool_reshape",
        functions=("max_pool_forward_reshape", "max_pool_backward_reshape"),
        old=LOOPS_END, new=LOOPS_END + RESHAPE_POOLS,
    ),
    Variant(
        name="avg_pool_reshape: reshape trick and broadcast_to",
        source=LOOPS, spec="avg_pool_reshape",
        functions=("avg_pool_forward_reshape", "avg_pool_backward_reshape"),
        old=LOOPS_END, new=LOOPS_END + RESHAPE_POOLS,
    ),
]
