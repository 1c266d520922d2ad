"""Specs for normalisation layers (batch, spatial batch, layer, group).

Inputs are built so that the normalisation is well conditioned *by construction*: the
entries that share a statistic are a random permutation of an evenly spaced grid, jittered
by less than a third of the spacing, then scaled by a random standard deviation in
[0.5, 3] and shifted by a random offset in [-5, 5] (so that forgetting the mean matters
and float32 sees some cancellation). No two entries of a statistic coincide, so the
variance is never close to zero.

Each statistic covers at least 2 entries in float64 and 3 in float32. One entry makes
the layer degenerate (``x - mean`` is identically 0: the output is ``beta`` and
``dx = 0`` exactly, which a backward returning zeros would pass). Two entries are fine in
float64, but not in float32: with two samples ``xhat = +-sqrt(var / (var + eps))`` barely
depends on x, and ``dx``, proportional to ``eps / (var + eps)``, comes out of a
cancellation that leaves a correct float32 backward only a digit or two of ``dx``, far
less than the float32 tolerance relative to ``dx``'s own size.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from hypothesis import strategies as st

import reference_layers as ref
from gradcheck.specs._registry import Case, Convention, Spec, register
from gradcheck.strategies import batch_sizes, modes, seeds

__all__ = [
    "batchnorm_cases",
    "layernorm_cases",
    "normalised_values",
    "spatial_batchnorm_cases",
    "spatial_groupnorm_cases",
]

def _min_count(dtype: Any) -> int:
    """Fewest entries per statistic for a well-conditioned check in ``dtype``."""
    return 3 if np.dtype(dtype) == np.float32 else 2


def normalised_values(rng: np.random.Generator, count: int, groups: int) -> np.ndarray:
    """``(count, groups)`` values; column j holds the ``count`` entries of statistic j.

    Each column is a permutation of ``arange(count)`` (centred), jittered by at most 0.3,
    times a standard deviation in [0.5, 3], plus an offset in [-5, 5]: entries of a column
    are at least 0.2 apart, so its variance is bounded away from zero.
    """
    grid = np.arange(count) - (count - 1) / 2
    z = np.stack([rng.permutation(grid) for _ in range(groups)], axis=1)
    z = z + rng.uniform(-0.3, 0.3, size=z.shape)
    return z * rng.uniform(0.5, 3.0, size=groups) + rng.uniform(-5.0, 5.0, size=groups)


def _affine_params(rng: np.random.Generator, shape: tuple[int, ...], dtype: Any) -> tuple[np.ndarray, ...]:
    """gamma (away from 0, either sign) and beta: never the ones/zeros that hide bugs."""
    gamma = rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.5, 2.0, size=shape)
    beta = rng.standard_normal(shape)
    return gamma.astype(dtype), beta.astype(dtype)


def _bn_param(rng: np.random.Generator, mode: str) -> dict[str, Any]:
    """As the course's nets make it: the mode, sometimes eps and momentum, and no running
    statistics (the layer creates them, in its own shape; see :func:`warm_up`)."""
    param: dict[str, Any] = {"mode": mode}
    if rng.random() < 0.5:
        param["eps"] = float(rng.choice([1e-5, 1e-3, 1e-2]))
    if rng.random() < 0.5:
        param["momentum"] = float(rng.uniform(0.5, 0.99))
    return param


def warm_up(case: Case, forward: Any) -> Case:
    """The course's call before a batch-norm case: a train-mode forward on another batch
    with the same ``bn_param`` (always before test mode, which reads the running
    statistics; before train mode when the case says ``warm``). The statistics are the
    ones ``forward`` itself stores, in its own shape, as in the course's nets."""
    x, gamma, beta, param = case.args
    if param["mode"] != "test" and not case.geometry.get("warm"):
        return case
    warm = dict(param, mode="train")
    # A narrower batch than x (a quarter of its spread): small running variances, against
    # which eps outside the square root shows in the test-mode output.
    forward(x * 0.25 + 0.5, gamma.copy(), beta.copy(), warm)
    return Case((x, gamma, beta, dict(warm, mode=param["mode"])), case.geometry)


def _geometry(x: np.ndarray, dtype: Any, **extra: Any) -> dict[str, Any]:
    return {"x": x.shape, **extra, "dtype": np.dtype(dtype).name}




def _batchnorm_case(seed: int, mode: str, n: int, d: int, dtype: Any, warm: bool) -> Case:
    rng = np.random.default_rng(seed)
    x = normalised_values(rng, n, d).astype(dtype)
    gamma, beta = _affine_params(rng, (d,), dtype)
    extra = {"warm": True} if warm and mode == "train" else {}
    return Case((x, gamma, beta, _bn_param(rng, mode)), _geometry(x, dtype, mode=mode, **extra))


@st.composite
def batchnorm_cases(draw: st.DrawFn, dtype: Any = np.float64, general: bool = True) -> Case:
    """x (N, D), gamma and beta (D,), bn_param; N >= 2 (float64) or 3 (float32) in train mode."""
    mode = draw(modes())
    n = draw(batch_sizes(_min_count(dtype) if mode == "train" else 1, 5))
    d = draw(st.integers(1, 4))
    return _batchnorm_case(draw(seeds()), mode, n, d, dtype, draw(st.booleans()))


def _spatial_batchnorm_case(seed: int, mode: str, shape: tuple[int, int, int, int], dtype: Any,
                            warm: bool) -> Case:
    n, c, h, w = shape
    rng = np.random.default_rng(seed)
    x = normalised_values(rng, n * h * w, c).reshape(n, h, w, c).transpose(0, 3, 1, 2).astype(dtype)
    gamma, beta = _affine_params(rng, (c,), dtype)
    extra = {"warm": True} if warm and mode == "train" else {}
    return Case((x, gamma, beta, _bn_param(rng, mode)), _geometry(x, dtype, mode=mode, **extra))


@st.composite
def spatial_batchnorm_cases(draw: st.DrawFn, dtype: Any = np.float64, general: bool = True) -> Case:
    """x (N, C, H, W), gamma and beta (C,); N * H * W entries per channel statistic."""
    mode = draw(modes())
    n = draw(batch_sizes(1, 3))
    c = draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    if mode == "train":
        while n * h * w < _min_count(dtype):
            w += 1
    return _spatial_batchnorm_case(draw(seeds()), mode, (n, c, h, w), dtype, draw(st.booleans()))


# (mode, warm-up first): one mid-sized probe per mode and call sequence.
_PROBE_RUNS = (("test", False), ("train", True), ("train", False))


def batchnorm_probes(dtype: Any) -> list[Case]:
    """Cases checked besides the generated ones, one per mode and call sequence."""
    return [_batchnorm_case(seed, mode, 4, 3, dtype, warm) for seed, (mode, warm) in enumerate(_PROBE_RUNS)]


def spatial_batchnorm_probes(dtype: Any) -> list[Case]:
    return [_spatial_batchnorm_case(seed, mode, (2, 3, 2, 2), dtype, warm)
            for seed, (mode, warm) in enumerate(_PROBE_RUNS)]


@st.composite
def layernorm_cases(draw: st.DrawFn, dtype: Any = np.float64, general: bool = True) -> Case:
    """x (N, D), gamma and beta (D,); D >= 2 (float64) or 3 (float32) features per sample."""
    n = draw(batch_sizes(1, 4))
    d = draw(st.integers(_min_count(dtype), 5))
    rng = np.random.default_rng(draw(seeds()))
    x = normalised_values(rng, d, n).T.astype(dtype)
    gamma, beta = _affine_params(rng, (d,), dtype)
    param: dict[str, Any] = {}
    if rng.random() < 0.5:
        param["eps"] = float(rng.choice([1e-5, 1e-3]))
    return Case((x, gamma, beta, param), _geometry(x, dtype))


@st.composite
def spatial_groupnorm_cases(draw: st.DrawFn, dtype: Any = np.float64, general: bool = True) -> Case:
    """x (N, C, H, W) with C = G * (C // G), gamma and beta (1, C, 1, 1), G, gn_param."""
    n = draw(batch_sizes(1, 3))
    g = draw(st.integers(1, 3))
    per_group = draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    while per_group * h * w < _min_count(dtype):
        w += 1
    c = g * per_group
    rng = np.random.default_rng(draw(seeds()))
    values = normalised_values(rng, per_group * h * w, n * g)
    x = values.T.reshape(n, c, h, w).astype(dtype)
    gamma, beta = _affine_params(rng, (1, c, 1, 1), dtype)
    param: dict[str, Any] = {}
    if rng.random() < 0.5:
        param["eps"] = float(rng.choice([1e-5, 1e-3]))
    return Case((x, gamma, beta, g, param), _geometry(x, dtype, G=g))


_NORM_GRADS = "(dx, dgamma, dbeta)"


def _trains(case: Case) -> bool:
    """The course differentiates batch normalisation in train mode only."""
    return bool(case.geometry.get("mode") != "test")


def _statistic_count(case: Case) -> int:
    """Entries per batch statistic (N, or N * H * W per channel)."""
    x = case.args[0]
    return int(x.shape[0] * (x.shape[2] * x.shape[3] if x.ndim == 4 else 1))


def _batch_informative(case: Case) -> bool:
    # With two entries xhat is +-1 whatever x is, and dx is nearly 0: a wrong dx hardly shows.
    return not _trains(case) or _statistic_count(case) >= 3


def _layer_informative(case: Case) -> bool:
    return bool(case.args[0].shape[1] >= 3)


def _group_informative(case: Case) -> bool:
    x, g = case.args[0], case.args[3]
    return bool(x.shape[1] // g * x.shape[2] * x.shape[3] >= 3)


_BN_CONTRACT: dict[str, Any] = {
    "differentiated": _trains, "informative": _batch_informative,
    "state": ("running_mean", "running_var"), "prepare": warm_up,
}


def _vector_params(case: Case) -> Case:
    x, gamma, beta, g, param = case.args
    return Case((x, gamma.reshape(-1), beta.reshape(-1), g, param), case.geometry)


def _groupnorm_vector_reference(x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, G: int,
                                gn_param: dict[str, Any]) -> tuple[np.ndarray, Any]:
    c = x.shape[1]
    return ref.spatial_groupnorm_forward(x, gamma.reshape(1, c, 1, 1), beta.reshape(1, c, 1, 1), G, gn_param)


def _groupnorm_vector_convention(spec: Spec) -> Spec:
    """Group norm with gamma and beta of shape (C,), as some years' docstrings state."""
    def cases(dtype: Any = np.float64, general: bool = True) -> st.SearchStrategy[Case]:
        return spatial_groupnorm_cases(dtype=dtype, general=general).map(_vector_params)

    return dataclasses.replace(spec, cases=cases, forward=_groupnorm_vector_reference)


GROUPNORM_CONVENTIONS = (
    Convention("gamma and beta of shape (1, C, 1, 1)", r"gamma:[^-]*shape \(1, ?C, ?1, ?1\)"),
    Convention("gamma and beta of shape (C,)", r"gamma:[^-]*shape \(C,\)", _groupnorm_vector_convention),
)

register(Spec(
    name="batchnorm", family="normalization", kind="layer",
    forward=ref.batchnorm_forward, backward=ref.batchnorm_backward, cases=batchnorm_cases,
    signature=f"batchnorm_forward(x, gamma, beta, bn_param) -> (out, cache); "
              f"batchnorm_backward(dout, cache) -> {_NORM_GRADS}",
    wrt=("x", "gamma", "beta"),
    names=(("batchnorm_forward", "batchnorm_backward"),),
    description="batch normalisation of x (N, D), train mode (batch statistics) and test mode",
    probes=batchnorm_probes, **_BN_CONTRACT,
))
register(Spec(
    name="batchnorm_alt", family="normalization", kind="layer",
    forward=ref.batchnorm_forward, backward=ref.batchnorm_backward_alt, cases=batchnorm_cases,
    signature=f"batchnorm_forward(x, gamma, beta, bn_param) -> (out, cache); "
              f"batchnorm_backward_alt(dout, cache) -> {_NORM_GRADS}",
    wrt=("x", "gamma", "beta"),
    names=(("batchnorm_forward_alt", "batchnorm_backward_alt"),
           ("batchnorm_forward", "batchnorm_backward_alt")),
    description="batch normalisation, simplified closed-form backward",
    probes=batchnorm_probes, **_BN_CONTRACT,
))
register(Spec(
    name="spatial_batchnorm", family="normalization", kind="layer",
    forward=ref.spatial_batchnorm_forward, backward=ref.spatial_batchnorm_backward,
    cases=spatial_batchnorm_cases,
    signature=f"spatial_batchnorm_forward(x, gamma, beta, bn_param) -> (out, cache); "
              f"spatial_batchnorm_backward(dout, cache) -> {_NORM_GRADS}",
    wrt=("x", "gamma", "beta"),
    names=(("spatial_batchnorm_forward", "spatial_batchnorm_backward"),),
    description="batch normalisation of x (N, C, H, W) per channel, statistics over N, H, W",
    probes=spatial_batchnorm_probes, **_BN_CONTRACT,
))
register(Spec(
    name="layernorm", family="normalization", kind="layer",
    forward=ref.layernorm_forward, backward=ref.layernorm_backward, cases=layernorm_cases,
    signature=f"layernorm_forward(x, gamma, beta, ln_param) -> (out, cache); "
              f"layernorm_backward(dout, cache) -> {_NORM_GRADS}",
    wrt=("x", "gamma", "beta"),
    names=(("layernorm_forward", "layernorm_backward"),),
    description="layer normalisation of x (N, D), statistics per sample over D",
    informative=_layer_informative,
))
register(Spec(
    name="spatial_groupnorm", family="normalization", kind="layer",
    forward=ref.spatial_groupnorm_forward, backward=ref.spatial_groupnorm_backward,
    cases=spatial_groupnorm_cases,
    signature=f"spatial_groupnorm_forward(x, gamma, beta, G, gn_param) -> (out, cache); "
              f"spatial_groupnorm_backward(dout, cache) -> {_NORM_GRADS}",
    wrt=("x", "gamma", "beta"),
    names=(("spatial_groupnorm_forward", "spatial_groupnorm_backward"),),
    description="group normalisation of x (N, C, H, W), gamma and beta (1, C, 1, 1)",
    informative=_group_informative, conventions=GROUPNORM_CONVENTIONS,
))
