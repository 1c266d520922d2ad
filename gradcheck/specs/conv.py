"""Specs for convolution and pooling: conv, max_pool, avg_pool, max_pool_reshape, avg_pool_reshape.

Convolution is linear in each argument (no kinks), so standard normal values serve. Max
pooling has a kink wherever two entries of a window tie for the maximum, so its inputs
are a permutation of a spread grid (``spread_values``): all entries distinct, 0.1 apart,
which is far wider than any numeric step, and no window's maximum can change under one.

The ``*_reshape`` names (CS231n's ``max_pool_forward_reshape``) have a narrower contract
than the other pooling names: the reshape trick only works for square tiles that do not
overlap and divide the input (``pool_height == pool_width == stride``, H and W multiples
of it), and a correct implementation asserts exactly that. They get their own specs,
whose cases keep to that contract, so that a correct reshape layer is never blamed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

import reference_layers as ref
from gradcheck.specs._registry import Case, Spec, register
from gradcheck.strategies import (
    ConvGeometry,
    PoolGeometry,
    batch_sizes,
    conv_geometries,
    pool_geometries,
    seeds,
    spread_values,
)

__all__ = ["conv_case", "conv_cases", "pool_case", "pool_cases", "pool_tile_cases"]

POOL_SPACING = 0.1


def conv_case(geometry: ConvGeometry, seed: int, dtype: Any = np.float64) -> Case:
    """The arguments ``(x, w, b, conv_param)`` for ``geometry``, drawn from ``seed``."""
    g = geometry
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((g.n, g.c, g.h, g.w)).astype(dtype)
    w = rng.standard_normal((g.f, g.c // g.groups, g.hh, g.ww)).astype(dtype)
    b = rng.standard_normal(g.f).astype(dtype)
    conv_param = g.conv_param()
    return Case(
        (x, w, b, conv_param),
        {"x": x.shape, "w": w.shape, **conv_param, "out": g.out_hw, "dtype": np.dtype(dtype).name},
    )


def pool_case(geometry: PoolGeometry, seed: int, dtype: Any = np.float64) -> Case:
    """The arguments ``(x, pool_param)`` for ``geometry``; x is tie-free (a spread grid)."""
    g = geometry
    rng = np.random.default_rng(seed)
    x = spread_values(rng, (g.n, g.c, g.h, g.w), spacing=POOL_SPACING, dtype=dtype)
    pool_param = g.pool_param()
    return Case(
        (x, pool_param),
        {"x": x.shape, **pool_param, "out": g.out_hw, "dtype": np.dtype(dtype).name},
    )


@st.composite
def conv_cases(draw: st.DrawFn, dtype: Any = np.float64, general: bool = True) -> Case:
    return conv_case(draw(conv_geometries(general=general)), draw(seeds()), dtype)


@st.composite
def pool_cases(draw: st.DrawFn, dtype: Any = np.float64, general: bool = True) -> Case:
    return pool_case(draw(pool_geometries(general=general)), draw(seeds()), dtype)


@st.composite
def pool_tile_cases(draw: st.DrawFn, dtype: Any = np.float64, general: bool = True) -> Case:
    """Square, non-overlapping tiles that divide the input (the reshape trick's contract).

    ``general`` is ignored: no other geometry is valid for the ``*_reshape`` names.
    """
    k = draw(st.integers(1, 3))
    n, c = draw(batch_sizes(1, 3)), draw(st.integers(1, 3))
    h, w = k * draw(st.integers(1, 3)), k * draw(st.integers(1, 3))
    return pool_case(PoolGeometry(n, c, h, w, k, k, k, 0), draw(seeds()), dtype)


def _without(keys: tuple[str, ...]) -> Any:
    """``Case -> Case`` dropping ``keys`` from the parameter dict (the last argument)."""

    def strip(case: Case) -> Case:
        *arrays, param = case.args
        return Case((*arrays, {k: v for k, v in param.items() if k not in keys}), case.geometry)

    return strip


register(Spec(
    name="conv", family="conv", kind="layer",
    forward=ref.conv_forward_naive, backward=ref.conv_backward_naive, cases=conv_cases,
    signature=("conv_forward_naive(x, w, b, conv_param) -> (out, cache); "
               "conv_backward_naive(dout, cache) -> (dx, dw, db)"),
    wrt=("x", "w", "b"),
    names=(
        ("conv_forward_naive", "conv_backward_naive"),
        ("conv_forward_fast", "conv_backward_fast"),
        ("conv_forward_im2col", "conv_backward_im2col"),
        ("conv_forward_strides", "conv_backward_strides"),
        ("conv_forward", "conv_backward"),
    ),
    description=("2-D convolution (cross-correlation): x (N, C, H, W), w (F, C/groups, HH, WW), "
                 "b (F,); conv_param stride, pad, optional dilation, groups"),
    general=True,  # general=True adds per-axis stride/pad, dilation, groups, uneven sizes
    without_general=_without(("dilation", "groups")),
))
register(Spec(
    name="max_pool", family="pooling", kind="layer",
    forward=ref.max_pool_forward_naive, backward=ref.max_pool_backward_naive, cases=pool_cases,
    signature=("max_pool_forward_naive(x, pool_param) -> (out, cache); "
               "max_pool_backward_naive(dout, cache) -> dx"),
    wrt=("x",),
    names=(
        ("max_pool_forward_naive", "max_pool_backward_naive"),
        ("max_pool_forward_fast", "max_pool_backward_fast"),
        ("max_pool_forward", "max_pool_backward"),
    ),
    description=("2-D max pooling, x (N, C, H, W); pool_param pool_height, pool_width, stride, "
                 "optional pad (with -inf, as torch)"),
    general=True,  # general=True adds padding and sizes the stride does not divide
    without_general=_without(("pad",)),
))
register(Spec(
    name="avg_pool", family="pooling", kind="layer",
    forward=ref.avg_pool_forward_naive, backward=ref.avg_pool_backward_naive, cases=pool_cases,
    signature=("avg_pool_forward_naive(x, pool_param) -> (out, cache); "
               "avg_pool_backward_naive(dout, cache) -> dx"),
    wrt=("x",),
    names=(
        ("avg_pool_forward_naive", "avg_pool_backward_naive"),
        ("avg_pool_forward_fast", "avg_pool_backward_fast"),
        ("avg_pool_forward", "avg_pool_backward"),
    ),
    description=("2-D average pooling, x (N, C, H, W); pool_param as max_pool, zero padding "
                 "counted in the divisor (as torch's count_include_pad=True)"),
    general=True,  # general=True adds padding and sizes the stride does not divide
    without_general=_without(("pad",)),
))
for _kind in ("max", "avg"):
    register(Spec(
        name=f"{_kind}_pool_reshape", family="pooling", kind="layer",
        forward=getattr(ref, f"{_kind}_pool_forward_naive"),
        backward=getattr(ref, f"{_kind}_pool_backward_naive"),
        cases=pool_tile_cases,
        signature=(f"{_kind}_pool_forward_reshape(x, pool_param) -> (out, cache); "
                   f"{_kind}_pool_backward_reshape(dout, cache) -> dx"),
        wrt=("x",),
        names=((f"{_kind}_pool_forward_reshape", f"{_kind}_pool_backward_reshape"),),
        description=(f"{_kind} pooling by the reshape trick: pool_height == pool_width == stride, "
                     "H and W multiples of it"),
    ))
