"""Hypothesis strategies for layer inputs: shapes, geometries and kink-free values.

Values are valid *by construction*, never by filtering: inputs to ReLU-like layers, hinge
losses and max pooling are a random permutation of a spread grid, so no value sits on a
kink and no two values in a pooling window tie, with a gap far wider than any numeric
step. Everything random below the geometry comes from one drawn ``seed``, which hypothesis
shrinks to 0, so a failing case is reported with the smallest geometry and a simple seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
from hypothesis import strategies as st

__all__ = [
    "ConvGeometry",
    "PoolGeometry",
    "array_shapes",
    "batch_sizes",
    "conv_geometries",
    "dtypes",
    "kink_free_values",
    "modes",
    "pool_geometries",
    "seeds",
    "spread_values",
    "upstream_gradients",
]


def _check_range(name_lo: str, lo: int, name_hi: str, hi: int) -> None:
    if lo > hi:
        raise ValueError(f"{name_lo}={lo} is larger than {name_hi}={hi}")


def seeds() -> st.SearchStrategy[int]:
    """Seeds for ``np.random.default_rng``; shrink towards 0."""
    return st.integers(0, 2**32 - 1)


def batch_sizes(min_size: int = 1, max_size: int = 4) -> st.SearchStrategy[int]:
    """Batch sizes N, including N = 1 (a classic source of squeeze/broadcast bugs)."""
    if min_size < 1:
        raise ValueError(f"min_size={min_size} must be at least 1")
    _check_range("min_size", min_size, "max_size", max_size)
    return st.integers(min_size, max_size)


def array_shapes(
    *, min_dims: int = 1, max_dims: int = 3, min_side: int = 1, max_side: int = 5
) -> st.SearchStrategy[tuple[int, ...]]:
    """Shapes with ``min_dims..max_dims`` axes of ``min_side..max_side`` entries."""
    _check_range("min_dims", min_dims, "max_dims", max_dims)
    _check_range("min_side", min_side, "max_side", max_side)
    return st.lists(
        st.integers(min_side, max_side), min_size=min_dims, max_size=max_dims
    ).map(tuple)


def modes() -> st.SearchStrategy[str]:
    """A layer's mode, ``"train"`` three times in four: backward is judged in train mode only
    (the course never calls it on a test-mode cache), while one case in four still checks
    the test-mode forward."""
    return st.sampled_from(("train", "train", "test", "train"))


def dtypes() -> st.SearchStrategy[np.dtype[Any]]:
    """float64 and float32."""
    return st.sampled_from([np.dtype(np.float64), np.dtype(np.float32)])


def spread_values(
    rng: np.random.Generator,
    shape: Sequence[int],
    *,
    spacing: float = 0.1,
    center: float = 0.0,
    dtype: npt.DTypeLike = np.float64,
) -> npt.NDArray[Any]:
    """A random permutation of an evenly spread grid: all values distinct, ``spacing`` apart.

    The grid is centred on ``center`` and shifted by a random fraction in [0.25, 0.75) of
    ``spacing``, so that, with ``center = 0``, no value is within ``spacing / 4`` of 0.
    """
    n = int(np.prod(shape, dtype=int))
    grid = (np.arange(n) - n // 2 + rng.uniform(0.25, 0.75)) * spacing + center
    return rng.permutation(grid).reshape(tuple(shape)).astype(dtype)


def kink_free_values(
    rng: np.random.Generator,
    shape: Sequence[int],
    *,
    kinks: Sequence[float] = (0.0,),
    gap: float = 0.05,
    scale: float = 1.0,
    dtype: npt.DTypeLike = np.float64,
) -> npt.NDArray[Any]:
    """Random values, none within ``gap`` of any point in ``kinks``, all distinct.

    Built as a spread grid whose spacing is a multiple of the gap and whose offset keeps
    every grid point at least ``gap`` from each kink (for kinks on the grid's lattice;
    kinks are moved off by construction rather than by rejecting draws).
    """
    n = int(np.prod(shape, dtype=int))
    spacing = max(4 * gap, 2 * scale / max(n, 1))
    values = spread_values(rng, shape, spacing=spacing, dtype=np.float64)
    for k in kinks:
        close = np.abs(values - k) < gap
        values[close] = k + np.where(values[close] >= k, gap, -gap) * 1.5
    return values.astype(dtype)


def upstream_gradients(
    rng: np.random.Generator, shape: Sequence[int], dtype: npt.DTypeLike = np.float64
) -> npt.NDArray[Any]:
    """A random upstream gradient (never all ones: a ones dout hides transposes)."""
    return rng.standard_normal(tuple(shape)).astype(dtype)


class ConvGeometry(NamedTuple):
    """A valid convolution: input (N, C, H, W), filters (F, C // groups, HH, WW)."""

    n: int
    c: int
    h: int
    w: int
    f: int
    hh: int
    ww: int
    stride: tuple[int, int]
    pad: tuple[int, int]
    dilation: tuple[int, int]
    groups: int

    @property
    def out_hw(self) -> tuple[int, int]:
        ho = (self.h + 2 * self.pad[0] - self.dilation[0] * (self.hh - 1) - 1) // self.stride[0] + 1
        wo = (self.w + 2 * self.pad[1] - self.dilation[1] * (self.ww - 1) - 1) // self.stride[1] + 1
        return ho, wo

    def conv_param(self) -> dict[str, Any]:
        param: dict[str, Any] = {
            "stride": self.stride[0] if self.stride[0] == self.stride[1] else self.stride,
            "pad": self.pad[0] if self.pad[0] == self.pad[1] else self.pad,
        }
        if self.dilation != (1, 1):
            param["dilation"] = self.dilation[0] if self.dilation[0] == self.dilation[1] else self.dilation
        if self.groups != 1:
            param["groups"] = self.groups
        return param


@st.composite
def conv_geometries(
    draw: st.DrawFn,
    *,
    general: bool = True,
    max_batch: int = 3,
    max_stride: int = 4,
    max_pad: int = 3,
    max_kernel: int = 4,
    max_size: int = 9,
) -> ConvGeometry:
    """Convolution geometries, valid by construction.

    With ``general=False`` the geometry follows the CS231n contract: square stride and
    padding, no dilation or groups, and ``(H + 2P - HH)`` and ``(W + 2P - WW)`` divisible
    by the stride (kernels may be non-square: HH != WW is within that contract). With
    ``general=True``: strides 1..4, padding 0..3 per axis, dilation, groups, non-square
    kernels, H != W and sizes that do not divide evenly.
    """
    n = draw(batch_sizes(1, max_batch))
    groups = draw(st.sampled_from([1, 1, 2, 3])) if general else 1
    c = groups * draw(st.integers(1, 2 if groups > 1 else 3))
    f = groups * draw(st.integers(1, 2 if groups > 1 else 3))
    hh = draw(st.integers(1, max_kernel))
    ww = draw(st.integers(1, max_kernel))
    if general:
        stride = (draw(st.integers(1, max_stride)), draw(st.integers(1, max_stride)))
        pad = (draw(st.integers(0, max_pad)), draw(st.integers(0, max_pad)))
        dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    else:
        s = draw(st.integers(1, min(3, max_stride)))
        p = draw(st.integers(0, min(2, max_pad)))
        stride, pad, dilation = (s, s), (p, p), (1, 1)
    span_h = dilation[0] * (hh - 1) + 1
    span_w = dilation[1] * (ww - 1) + 1
    if general:
        h = draw(st.integers(max(1, span_h - 2 * pad[0]), max(max_size, span_h)))
        w = draw(st.integers(max(1, span_w - 2 * pad[1]), max(max_size, span_w)))
    else:
        # H + 2P - HH must be a multiple of the stride: choose the number of steps.
        steps_h = draw(st.integers(0 if span_h > 2 * pad[0] else 1, 3))
        steps_w = draw(st.integers(0 if span_w > 2 * pad[1] else 1, 3))
        h = max(1, span_h - 2 * pad[0] + stride[0] * steps_h)
        w = max(1, span_w - 2 * pad[1] + stride[1] * steps_w)
        while (h + 2 * pad[0] - span_h) % stride[0]:
            h += 1
        while (w + 2 * pad[1] - span_w) % stride[1]:
            w += 1
    return ConvGeometry(n, c, h, w, f, hh, ww, stride, pad, dilation, groups)


class PoolGeometry(NamedTuple):
    """A valid pooling: input (N, C, H, W), windows (ph, pw), stride, zero padding."""

    n: int
    c: int
    h: int
    w: int
    ph: int
    pw: int
    stride: int
    pad: int

    @property
    def out_hw(self) -> tuple[int, int]:
        return (
            (self.h + 2 * self.pad - self.ph) // self.stride + 1,
            (self.w + 2 * self.pad - self.pw) // self.stride + 1,
        )

    def pool_param(self) -> dict[str, Any]:
        param: dict[str, Any] = {"pool_height": self.ph, "pool_width": self.pw, "stride": self.stride}
        if self.pad:
            param["pad"] = self.pad
        return param


@st.composite
def pool_geometries(
    draw: st.DrawFn,
    *,
    general: bool = True,
    overlapping: bool | None = None,
    max_batch: int = 3,
    max_window: int = 4,
    max_size: int = 9,
) -> PoolGeometry:
    """Pooling geometries: overlapping windows (stride < window) and not.

    ``general=False`` keeps the CS231n contract: no padding and ``(H - ph)`` divisible by
    the stride. ``overlapping=True`` gives windows that really overlap: along at least one
    axis the stride is smaller than the window and there are at least two windows.
    ``overlapping=False`` gives a stride of at least the window on both axes.
    """
    n = draw(batch_sizes(1, max_batch))
    c = draw(st.integers(1, 3))
    ph = draw(st.integers(1, max_window))
    pw = draw(st.integers(1, max_window))
    if overlapping is True:
        if max(ph, pw) < 2:
            ph = 2
        stride = draw(st.integers(1, max(ph, pw) - 1))
    elif overlapping is False:
        stride = draw(st.integers(max(ph, pw), max(ph, pw) + 1))
    else:
        stride = draw(st.integers(1, max(ph, pw) + 1))
    pad = draw(st.integers(0, min(ph, pw) // 2)) if general else 0
    # At least two windows along the axis that overlaps (rows if both can).
    windows_h = 2 if overlapping is True and stride < ph else 1
    windows_w = 2 if overlapping is True and stride >= ph else 1
    if general:
        lo_h = max(1, ph + stride * (windows_h - 1) - 2 * pad)
        lo_w = max(1, pw + stride * (windows_w - 1) - 2 * pad)
        h = draw(st.integers(lo_h, max(max_size, lo_h)))
        w = draw(st.integers(lo_w, max(max_size, lo_w)))
    else:
        h = ph + stride * draw(st.integers(windows_h - 1, 3))
        w = pw + stride * draw(st.integers(windows_w - 1, 3))
    return PoolGeometry(n, c, h, w, ph, pw, stride, pad)
