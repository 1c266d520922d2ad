"""Specs for the convenience layers of ``layer_utils.py`` (``affine_relu_forward``, ...).

Students' versions call their own (or the course's fast) layers; they are judged by the
assignment's contract only: ``conv_relu_pool`` gets a size-preserving convolution
(stride 1, pad (F - 1) // 2) and a 2x2 pool of stride 2 on even sizes, as the course uses it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

import reference_layers as ref
from gradcheck.specs._registry import Case, Spec, register
from gradcheck.specs.basic import affine_cases
from gradcheck.specs.conv import conv_cases
from gradcheck.strategies import seeds

__all__ = ["conv_relu_pool_cases"]


@st.composite
def conv_relu_pool_cases(draw: st.DrawFn, dtype: Any = np.float64, general: bool = True) -> Case:
    n, c, f = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    h, w = draw(st.sampled_from([2, 4])), draw(st.sampled_from([2, 4]))
    size = draw(st.sampled_from([1, 3]))
    rng = np.random.default_rng(draw(seeds()))
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    weights = rng.standard_normal((f, c, size, size)).astype(dtype)
    b = rng.standard_normal(f).astype(dtype)
    conv_param = {"stride": 1, "pad": (size - 1) // 2}
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    return Case((x, weights, b, conv_param, pool_param),
                {"x": x.shape, "w": weights.shape, **conv_param, "pool": "2x2/2",
                 "dtype": np.dtype(dtype).name})


def _conv_contract(dtype: Any = np.float64, general: bool = True) -> st.SearchStrategy[Case]:
    return conv_cases(dtype=dtype, general=False)


_GRADS = "(dx, dw, db)"
for _name, _cases, _args, _what in (
    ("affine_relu", affine_cases, "x, w, b", "affine layer followed by a ReLU"),
    ("conv_relu", _conv_contract, "x, w, b, conv_param", "convolution followed by a ReLU"),
    ("conv_relu_pool", conv_relu_pool_cases, "x, w, b, conv_param, pool_param",
     "convolution, ReLU, 2x2 max pool"),
):
    register(Spec(
        name=_name, family="sandwiches", kind="layer",
        forward=getattr(ref, f"{_name}_forward"), backward=getattr(ref, f"{_name}_backward"),
        cases=_cases,
        signature=f"{_name}_forward({_args}) -> (out, cache); {_name}_backward(dout, cache) -> {_GRADS}",
        wrt=("x", "w", "b"),
        names=((f"{_name}_forward", f"{_name}_backward"),),
        description=f"layer_utils.py: {_what}",
    ))
