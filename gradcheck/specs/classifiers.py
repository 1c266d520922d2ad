"""Specs for assignment 1's linear classifiers: ``svm_loss_naive(W, X, y, reg) -> (loss, dW)``
and its vectorized and softmax siblings, each reported under its own function name.

Only ``W`` is differentiated. Cases cover ``reg = 0`` and ``reg > 0``; the SVM's scores
lie on a lattice that keeps every margin at least 0.1 away from the hinge. The course
regularises with ``reg * sum(W**2)`` since 2017; ``0.5 * reg * sum(W**2)`` (earlier
years' starter code) passes when the loss and the gradient agree on it, with a note: it
only rescales a hyper-parameter, so it is no hazard.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import numpy as np
from hypothesis import strategies as st

import reference_layers as ref
from gradcheck.specs._registry import Case, Convention, Spec, register
from gradcheck.strategies import batch_sizes, seeds

__all__ = ["CLASSIFIERS", "REG_CONVENTIONS", "classifier_cases"]

# The function names of each classifier, in the order the course asks for them.
CLASSIFIERS = {
    "svm": ("svm_loss_naive", "svm_loss_vectorized"),
    "softmax": ("softmax_loss_naive", "softmax_loss_vectorized"),
}
# reg = 0 drawn as often as one of the others; 0.1 first, the value the simplest case takes
# (hypothesis starts there and shrinks towards it): a run of a few examples still sees reg > 0,
# and a failure that needs reg > 0 shrinks to the smallest
REGULARISATION = (0.1, 0.0, 0.0, 0.5, 2.0)


@st.composite
def classifier_cases(draw: st.DrawFn, dtype: Any = np.float64, general: bool = True, *,
                     hinge: bool) -> Case:
    n = draw(batch_sizes(1, 5))
    d = draw(st.integers(1, 5))
    c = draw(st.integers(2, 5))
    reg = draw(st.sampled_from(REGULARISATION))
    rng = np.random.default_rng(draw(seeds()))
    y = rng.integers(0, c, size=n)
    if hinge:
        # X integer and W on a 0.3-lattice: every margin s_j - s_y + 1 = 0.3 k + 1 is at
        # least 0.1 away from the hinge at 0, by construction.
        X = rng.integers(-2, 3, size=(n, d)).astype(dtype)
        W = (rng.integers(-3, 4, size=(d, c)) * 0.3).astype(dtype)
    else:
        X = rng.standard_normal((n, d)).astype(dtype)
        W = rng.standard_normal((d, c)).astype(dtype)
    geometry = {"W": W.shape, "X": X.shape, "classes": c, "reg": reg, "dtype": np.dtype(dtype).name}
    return Case((W, X, y, reg), geometry)


def _half_reg(spec: Spec) -> Spec:
    return dataclasses.replace(spec, forward=functools.partial(spec.forward, half_reg=True))


REG_CONVENTIONS = (
    Convention("regularisation reg * sum(W**2), gradient 2 * reg * W (the course since 2017)",
               r"(?<!0\.5 \* )reg \* (np\.)?sum\(W ?\* ?W\)"),
    Convention("regularisation 0.5 * reg * sum(W**2), gradient reg * W (the course up to 2016)",
               r"0\.5 \* reg \* (np\.)?sum\(W ?\* ?W\)", _half_reg, warn=False),
)

_LOSS = {
    "svm": (ref.linear_svm_loss, "multiclass SVM (hinge) loss of the scores X @ W"),
    "softmax": (ref.linear_softmax_loss, "softmax cross-entropy of the scores X @ W"),
}

for _kind, _names in CLASSIFIERS.items():
    _reference, _what = _LOSS[_kind]
    for _name in _names:
        _style = "with loops" if _name.endswith("naive") else "without loops"
        register(Spec(
            name=_name, family="classifiers", kind="loss",
            forward=_reference, backward=None,
            cases=functools.partial(classifier_cases, hinge=_kind == "svm"),
            signature=f"{_name}(W, X, y, reg) -> (loss, dW)", wrt=("W",),
            names=((_name, None),),
            description=f"{_what} {_style}, averaged over N, plus reg * sum(W**2)",
            conventions=REG_CONVENTIONS,
        ))
