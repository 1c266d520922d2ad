"""Specs for the affine layer, the element-wise activations and the classification losses."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

import reference_layers as ref
from gradcheck.specs._registry import Case, Spec, register
from gradcheck.strategies import array_shapes, batch_sizes, kink_free_values, seeds


@st.composite
def affine_cases(draw: st.DrawFn, dtype: Any = np.float64, general: bool = True) -> Case:
    n = draw(batch_sizes())
    # x of shape (N, d_1, ..., d_k) is part of the CS231n affine contract, not an extension.
    dims = draw(array_shapes(min_dims=1, max_dims=3, max_side=4))
    m = draw(st.integers(1, 5))
    rng = np.random.default_rng(draw(seeds()))
    d = int(np.prod(dims))
    x = rng.standard_normal((n, *dims)).astype(dtype)
    w = rng.standard_normal((d, m)).astype(dtype)
    b = rng.standard_normal(m).astype(dtype)
    return Case((x, w, b), {"x": x.shape, "w": w.shape, "b": b.shape, "dtype": np.dtype(dtype).name})


@st.composite
def relu_cases(draw: st.DrawFn, dtype: Any = np.float64, general: bool = True) -> Case:
    n = draw(batch_sizes())
    dims = draw(array_shapes(min_dims=1, max_dims=3, max_side=4))
    rng = np.random.default_rng(draw(seeds()))
    x = kink_free_values(rng, (n, *dims), dtype=dtype)
    return Case((x,), {"x": x.shape, "dtype": np.dtype(dtype).name})


@st.composite
def smooth_cases(draw: st.DrawFn, dtype: Any = np.float64, general: bool = True) -> Case:
    n = draw(batch_sizes())
    dims = draw(array_shapes(min_dims=1, max_dims=3, max_side=4))
    rng = np.random.default_rng(draw(seeds()))
    x = (rng.standard_normal((n, *dims)) * 2).astype(dtype)
    return Case((x,), {"x": x.shape, "dtype": np.dtype(dtype).name})


@st.composite
def leaky_relu_cases(draw: st.DrawFn, dtype: Any = np.float64, general: bool = True) -> Case:
    case = draw(relu_cases(dtype=dtype))
    alpha = draw(st.sampled_from([0.01, 0.1, 0.2]))
    return Case((*case.args, alpha), {**case.geometry, "alpha": alpha})


@st.composite
def _class_scores(draw: st.DrawFn, dtype: Any, hinge: bool) -> Case:
    n = draw(batch_sizes(1, 5))
    c = draw(st.integers(2, 6))
    rng = np.random.default_rng(draw(seeds()))
    y = rng.integers(0, c, size=n)
    if hinge:
        # Scores on a 0.3-spaced lattice: every margin x_j - x_y + 1 = 0.3 k + 1 is at
        # least 0.1 away from the hinge at 0, by construction.
        x = (rng.integers(-6, 7, size=(n, c)) * 0.3).astype(dtype)
    else:
        x = (rng.standard_normal((n, c)) * 2).astype(dtype)
    return Case((x, y), {"x": x.shape, "classes": c, "dtype": np.dtype(dtype).name})


def softmax_cases(dtype: Any = np.float64, general: bool = True) -> st.SearchStrategy[Case]:
    return _class_scores(dtype, hinge=False)


def svm_cases(dtype: Any = np.float64, general: bool = True) -> st.SearchStrategy[Case]:
    return _class_scores(dtype, hinge=True)


register(Spec(
    name="affine", family="affine", kind="layer",
    forward=ref.affine_forward, backward=ref.affine_backward, cases=affine_cases,
    signature="affine_forward(x, w, b) -> (out, cache); affine_backward(dout, cache) -> (dx, dw, db)",
    wrt=("x", "w", "b"),
    names=(("affine_forward", "affine_backward"),),
    description="fully connected layer, x of shape (N, d1, ..., dk)",
))
register(Spec(
    name="relu", family="activations", kind="layer",
    forward=ref.relu_forward, backward=ref.relu_backward, cases=relu_cases,
    signature="relu_forward(x) -> (out, cache); relu_backward(dout, cache) -> dx",
    wrt=("x",),
    names=(("relu_forward", "relu_backward"),),
    description="rectified linear unit",
))
register(Spec(
    name="leaky_relu", family="activations", kind="layer",
    forward=ref.leaky_relu_forward, backward=ref.leaky_relu_backward, cases=leaky_relu_cases,
    signature="leaky_relu_forward(x, alpha=0.01) -> (out, cache); leaky_relu_backward(dout, cache) -> dx",
    wrt=("x",),
    names=(("leaky_relu_forward", "leaky_relu_backward"),),
    description="leaky ReLU with a fixed negative slope alpha",
))
for _name, _description in (
    ("sigmoid", "logistic sigmoid"),
    ("tanh", "hyperbolic tangent"),
    ("gelu", "GELU, tanh approximation"),
):
    register(Spec(
        name=_name, family="activations", kind="layer",
        forward=getattr(ref, f"{_name}_forward"), backward=getattr(ref, f"{_name}_backward"),
        cases=smooth_cases,
        signature=f"{_name}_forward(x) -> (out, cache); {_name}_backward(dout, cache) -> dx",
        wrt=("x",),
        names=((f"{_name}_forward", f"{_name}_backward"),),
        description=_description,
    ))
register(Spec(
    name="softmax_loss", family="losses", kind="loss",
    forward=ref.softmax_loss, backward=None, cases=softmax_cases,
    signature="softmax_loss(x, y) -> (loss, dx)", wrt=("x",),
    names=(("softmax_loss", None),),
    description="cross-entropy of softmax scores, averaged over N",
))
register(Spec(
    name="svm_loss", family="losses", kind="loss",
    forward=ref.svm_loss, backward=None, cases=svm_cases,
    signature="svm_loss(x, y) -> (loss, dx)", wrt=("x",),
    names=(("svm_loss", None),),
    description="multiclass hinge loss, averaged over N",
))
