"""Specs for the batch-norm sandwiches of EECS 498/598 (``Linear_BatchNorm_ReLU``,
``Conv_BatchNorm_ReLU``, ``Conv_BatchNorm_ReLU_Pool``).

The course gives ``forward(x, w, b, gamma, beta, [conv_param,] bn_param, [pool_param])``
and ``backward(dout, cache) -> (dx, dw, db, dgamma, dbeta)``, built from the student's own
layers (and the course's fast convolution and pool). They are judged by the course's
contract, as the batch norm inside them: gradients in train mode only (the course never
differentiates a test-mode cache), the test-mode forward after a train-mode call on another
batch with the same ``bn_param``, and the running statistics the forward stores. The
reference is the composition of the reference layers.

The cases keep the composition well conditioned: every batch statistic covers at least 3
entries whose spread is not small, no entry before the ReLU is within ``MARGIN`` of its kink,
and in every pooling window whose maximum is positive the two largest entries are at least
``MARGIN`` apart (cases are drawn again, from the same seed's generator, until they are).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from hypothesis import strategies as st

import reference_layers as ref
from gradcheck.specs._registry import Case, Spec, register
from gradcheck.specs.normalization import _bn_param
from gradcheck.strategies import modes, seeds

__all__ = ["bn_sandwich_cases", "sandwich_warm_up"]

MARGIN = 0.02  # distance of every entry from the ReLU's kink and of pooled maxima from ties
MIN_STD = 0.3  # smallest spread of a batch statistic's entries
_TRIES = 200
_POOL = {"pool_height": 2, "pool_width": 2, "stride": 2}


def _bn_index(args: tuple[Any, ...]) -> int:
    return next(i for i, a in enumerate(args) if isinstance(a, dict) and "mode" in a)


def sandwich_warm_up(case: Case, forward: Any) -> Case:
    """The course's call before a sandwich case: a train-mode forward on another batch (a
    quarter of x's spread, so small running variances) with the same ``bn_param``, before
    a test-mode case (and before a train-mode one when the case says ``warm``)."""
    k = _bn_index(case.args)
    param = case.args[k]
    if param["mode"] != "test" and not case.geometry.get("warm"):
        return case
    warm = dict(param, mode="train")
    call = [copy.deepcopy(a) for a in case.args]
    call[0], call[k] = case.args[0] * 0.25 + 0.5, warm
    forward(*call)
    args = list(case.args)
    args[k] = dict(warm, mode=param["mode"])
    return Case(tuple(args), case.geometry)


def _trains(case: Case) -> bool:
    return bool(case.geometry.get("mode") != "test")


def _pre_relu(name: str, args: tuple[Any, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The reference's values before batch norm (statistics in columns) and before the ReLU."""
    x, w, b, gamma, beta = (np.asarray(a, dtype=np.float64) for a in args[:5])
    param = copy.deepcopy(args[_bn_index(args)])
    if name == "affine_bn_relu":
        a, _ = ref.affine_forward(x, w, b)
        s, _ = ref.batchnorm_forward(a, gamma, beta, param)
        return a, s
    a, _ = ref.conv_forward_naive(x, w, b, args[5])
    s, _ = ref.spatial_batchnorm_forward(a, gamma, beta, param)
    return a.transpose(0, 2, 3, 1).reshape(-1, a.shape[1]), s


def _pool_ties(s: np.ndarray) -> bool:
    """Whether a 2x2/2 pooling window of relu(s) has a positive maximum nearly tied."""
    n, c, h, w = s.shape
    windows = np.maximum(s, 0).reshape(n, c, h // 2, 2, w // 2, 2).transpose(0, 1, 2, 4, 3, 5)
    top = np.sort(windows.reshape(-1, 4), axis=1)
    return bool(np.any((top[:, -1] > 0) & (top[:, -1] - top[:, -2] < MARGIN)))


def _conditioned(name: str, case: Case) -> bool:
    prepared = sandwich_warm_up(copy.deepcopy(case), getattr(ref, f"{name}_forward"))
    a, s = _pre_relu(name, prepared.args)
    if np.min(np.std(a, axis=0)) < MIN_STD or np.min(np.abs(s)) < MARGIN:
        return False
    return not (name.endswith("_pool") and _pool_ties(s))


def _draw_args(name: str, rng: np.random.Generator, dims: dict[str, int], mode: str,
               dtype: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    n, f = dims["n"], dims["f"]
    if name == "affine_bn_relu":
        x = rng.standard_normal((n, dims["d"]))
        w = rng.standard_normal((dims["d"], f))
        extra: tuple[Any, ...] = ()
        geometry: dict[str, Any] = {"x": x.shape, "w": w.shape}
    else:
        size = dims["size"]
        x = rng.standard_normal((n, dims["c"], dims["h"], dims["w"]))
        w = rng.standard_normal((f, dims["c"], size, size))
        conv_param = {"stride": 1, "pad": (size - 1) // 2}
        extra = (conv_param,)
        geometry = {"x": x.shape, "w": w.shape, **conv_param}
    b, beta = rng.standard_normal(f), rng.standard_normal(f)
    gamma = rng.choice([-1.0, 1.0], size=f) * rng.uniform(0.5, 2.0, size=f)
    arrays = tuple(a.astype(dtype) for a in (x, w, b, gamma, beta))
    args = (*arrays, *extra, _bn_param(rng, mode))
    if name.endswith("_pool"):
        args, geometry = (*args, dict(_POOL)), {**geometry, "pool": "2x2/2"}
    return args, geometry


def sandwich_case(name: str, seed: int, mode: str, dims: dict[str, int], dtype: Any, warm: bool) -> Case:
    """A well-conditioned case of sandwich ``name`` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    extra = {"warm": True} if warm and mode == "train" else {}
    for _ in range(_TRIES):
        args, geometry = _draw_args(name, rng, dims, mode, dtype)
        case = Case(args, {**geometry, "mode": mode, **extra, "dtype": np.dtype(dtype).name})
        if _conditioned(name, case):
            break
    return case


@st.composite
def bn_sandwich_cases(draw: st.DrawFn, name: str, dtype: Any = np.float64, general: bool = True) -> Case:
    mode = draw(modes())
    dims = {"n": draw(st.integers(3, 5)) if name == "affine_bn_relu" else draw(st.integers(1, 2)),
            "f": draw(st.integers(1, 3))}
    if name == "affine_bn_relu":
        dims["d"] = draw(st.integers(1, 4))
    else:
        sides = [2, 4] if name.endswith("_pool") else [2, 3, 4]
        dims.update(c=draw(st.integers(1, 3)), h=draw(st.sampled_from(sides)),
                    w=draw(st.sampled_from(sides)), size=draw(st.sampled_from([1, 3])))
    return sandwich_case(name, draw(seeds()), mode, dims, dtype, draw(st.booleans()))


_PROBE_RUNS = (("test", False), ("train", True), ("train", False))
_PROBE_DIMS = {"affine_bn_relu": {"n": 4, "d": 3, "f": 3},
               "conv_bn_relu": {"n": 2, "c": 2, "h": 3, "w": 4, "size": 3, "f": 2},
               "conv_bn_relu_pool": {"n": 2, "c": 2, "h": 4, "w": 4, "size": 3, "f": 2}}


def _register(name: str, args: str, what: str) -> None:
    def cases(dtype: Any = np.float64, general: bool = True) -> st.SearchStrategy[Case]:
        return bn_sandwich_cases(name, dtype=dtype, general=general)

    def probes(dtype: Any) -> list[Case]:
        return [sandwich_case(name, seed, mode, _PROBE_DIMS[name], dtype, warm)
                for seed, (mode, warm) in enumerate(_PROBE_RUNS)]

    register(Spec(
        name=name, family="sandwiches", kind="layer",
        forward=getattr(ref, f"{name}_forward"), backward=getattr(ref, f"{name}_backward"),
        cases=cases,
        signature=f"{name}_forward({args}) -> (out, cache); "
                  f"{name}_backward(dout, cache) -> (dx, dw, db, dgamma, dbeta)",
        wrt=("x", "w", "b", "gamma", "beta"),
        description=f"EECS 498/598: {what} (batch norm in train mode for the gradients)",
        differentiated=_trains, state=("running_mean", "running_var"), prepare=sandwich_warm_up,
        probes=probes,
    ))


for _name, _args, _what in (
    ("affine_bn_relu", "x, w, b, gamma, beta, bn_param", "linear layer, batch norm, ReLU"),
    ("conv_bn_relu", "x, w, b, gamma, beta, conv_param, bn_param", "convolution, spatial batch norm, ReLU"),
    ("conv_bn_relu_pool", "x, w, b, gamma, beta, conv_param, bn_param, pool_param",
     "convolution, spatial batch norm, ReLU, 2x2 max pool"),
):
    _register(_name, _args, _what)
