"""Would the course notebook's own sanity check have caught a wrong layer?

Each layer is run once on the geometry its notebook checks (e.g. affine x (10, 2, 3), w (6, 5);
conv x (4, 3, 5, 5), w (2, 3, 3, 3), stride 1, pad 1; pool x (3, 2, 8, 8) 2x2 stride 2;
batchnorm N=4, D=5 around 12), and the notebook's rel_error, max |a - b| / max(1e-8, |a| + |b|),
is taken between the student's values and torch's. Above 1e-7 anywhere = the notebook would
have shown the bug. Forward values count too: the notebooks compare most forwards with
hard-coded correct outputs. Dropout is not covered (its notebook check is statistical).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from benchmarks.field.cases import Case
from benchmarks.field.judge import _autograd, _leaves, _split_forward, _split_grads, call
from benchmarks.field.specs import Spec

THRESHOLD = 1e-7


def rel_error(a: Any, b: np.ndarray) -> float:
    try:
        a = np.asarray(a, dtype=np.float64)
        return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))
    except (TypeError, ValueError):
        return float("inf")


def _bn(x: np.ndarray, features: int, rng: np.random.Generator) -> list[Any]:
    return [x, rng.standard_normal(features), rng.standard_normal(features), {"mode": "train"}]


def _cases(rng: np.random.Generator) -> dict[str, Any]:
    r = rng.standard_normal
    return {
        "affine": lambda: Case([r((10, 2, 3)), r((6, 5)), r(5)], (0, 1, 2), "notebook"),
        "relu": lambda: Case([r((10, 10))], (0,), "notebook"),
        "leaky_relu": lambda: Case([r((10, 10))], (0,), "notebook", extra={"oracle_args": (0.01,)}),
        "sigmoid": lambda: Case([r((10, 10))], (0,), "notebook"),
        "tanh": lambda: Case([r((10, 10))], (0,), "notebook"),
        "softmax_loss": lambda: Case([0.001 * r((50, 10)), rng.integers(0, 10, 50)], (0,), "notebook"),
        "svm_loss": lambda: Case([0.001 * r((50, 10)), rng.integers(0, 10, 50)], (0,), "notebook"),
        "conv": lambda: Case([r((4, 3, 5, 5)), r((2, 3, 3, 3)), r(2), {"stride": 1, "pad": 1}],
                             (0, 1, 2), "nb"),
        "max_pool": lambda: Case([r((3, 2, 8, 8)), {"pool_height": 2, "pool_width": 2, "stride": 2}],
                                 (0,), "nb"),
        "batchnorm": lambda: Case(_bn(5 * r((4, 5)) + 12, 5, rng), (0, 1, 2), "nb", mode="train"),
        "batchnorm_alt": lambda: Case(_bn(5 * r((4, 5)) + 12, 5, rng), (0, 1, 2), "nb", mode="train"),
        "spatial_batchnorm": lambda: Case(_bn(5 * r((2, 3, 4, 5)) + 12, 3, rng), (0, 1, 2), "nb",
                                          mode="train"),
        "layernorm": lambda: Case([5 * r((4, 5)) + 12, r(5), r(5), {}], (0, 1, 2), "nb"),
        "spatial_groupnorm": lambda: Case([5 * r((2, 6, 4, 5)) + 12, r((1, 6, 1, 1)), r((1, 6, 1, 1)), 2, {}],
                                          (0, 1, 2), "nb"),
        "rnn_step": lambda: Case([r((4, 5)), r((4, 6)), r((5, 6)), r((6, 6)), r(6)], (0, 1, 2, 3, 4), "nb"),
        "rnn": lambda: Case([r((2, 10, 3)), r((2, 5)), r((3, 5)), r((5, 5)), r(5)], (0, 1, 2, 3, 4), "nb"),
        "lstm_step": lambda: Case([r((4, 5)), r((4, 6)), r((4, 6)), r((5, 24)), r((6, 24)), r(24)],
                                  (0, 1, 2, 3, 4, 5), "nb"),
        "lstm": lambda: Case([r((2, 10, 3)), r((2, 6)), r((3, 24)), r((6, 24)), r(24)],
                             (0, 1, 2, 3, 4), "nb"),
        "word_embedding": lambda: Case([rng.integers(0, 5, (50, 3)), r((5, 6))], (1,), "nb"),
        "temporal_affine": lambda: Case([r((2, 3, 4)), r((4, 5)), r(5)], (0, 1, 2), "nb"),
        "temporal_softmax_loss": lambda: Case([r((10, 5, 7)), rng.integers(0, 7, (10, 5)),
                                               rng.random((10, 5)) < 0.7], (0,), "nb"),
    }


def _evaluate(spec: Spec, fwd: Any, bwd: Any, case: Case, rng: np.random.Generator) -> float:
    args = copy.deepcopy(case.args)
    outs, cache = _split_forward(call(fwd, *args), 1 if spec.kind == "loss" else spec.n_out)
    targs, leaves = _leaves(case)
    touts = spec.oracle(*targs, *case.extra.get("oracle_args", ()))
    worst = max(rel_error(o, t.detach().numpy()) for o, t in zip(outs, touts))
    if spec.kind == "loss":
        return max(worst, rel_error(cache, _autograd(touts[0], leaves)[0]))
    douts = [rng.standard_normal(tuple(t.shape)) for t in touts]
    want = _autograd(sum((torch.as_tensor(d) * t).sum() for d, t in zip(douts, touts)), leaves)
    got = _split_grads(call(bwd, *copy.deepcopy(douts), cache), spec.grads)
    return max([worst, *(rel_error(g, w) for g, w in zip(got, want))])


def would_catch(spec: Spec, fwd: Any, bwd: Any, gamma_shape: str = "") -> bool | None:
    """True / False, or None when the layer has no notebook case here (dropout)."""
    rng = np.random.default_rng(231)
    make = _cases(rng).get(spec.name)
    if make is None:
        return None
    case = make()
    if gamma_shape == "(C,)":
        case.args[1], case.args[2] = case.args[1].ravel(), case.args[2].ravel()
    try:
        return bool(_evaluate(spec, fwd, bwd, case, rng) > THRESHOLD)
    except Exception:
        return True  # a crash on the notebook's own inputs is seen by the student
