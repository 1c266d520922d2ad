"""Normalisation layers: batch, spatial batch, layer and group normalisation.

Every layer standardises ``x`` over some axes, ``xhat = (x - mean) / sqrt(var + eps)``
with the BIASED variance, and then applies a per-channel affine map ``gamma * xhat + beta``.
The statistics are computed as ``mean((x - mu)**2)`` rather than ``np.var`` (which takes
``abs`` of complex input), so complex-step derivatives flow through; the square root of a
complex number near the positive real axis is analytic.

Notes
-----
Batch normalisation of a single sample (N = 1 in train mode) is accepted but degenerate:
``x - mean`` is identically zero, so the output is ``beta`` whatever ``x`` is and ``dx`` is
exactly zero. Layer normalisation with D = 1 is degenerate in the same way. The generated
cases avoid both (they would pass a backward that returns ``dx = 0``).

With ``xhat`` and ``inv_std = 1 / sqrt(var + eps)`` from the forward pass, the gradient of
a standardisation over ``M`` entries is the closed form

    dx = inv_std * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)),

i.e. ``dxhat`` with its components along the constant vector and along ``xhat`` removed.
``batchnorm_backward`` instead walks the computation graph step by step (mean, centring,
variance, square root, division); ``batchnorm_backward_alt`` uses the closed form.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reference_layers._validate import require_ndim

__all__ = [
    "batchnorm_backward",
    "batchnorm_backward_alt",
    "batchnorm_forward",
    "layernorm_backward",
    "layernorm_forward",
    "spatial_batchnorm_backward",
    "spatial_batchnorm_forward",
    "spatial_groupnorm_backward",
    "spatial_groupnorm_forward",
]

Grads = tuple[np.ndarray, np.ndarray, np.ndarray]


# -- validation ---------------------------------------------------------------------------


def _param(params: Any, name: str) -> dict[str, Any]:
    if not isinstance(params, dict):
        raise TypeError(f"{name} must be a dict; got {type(params).__name__}")
    return params


def _mode(params: dict[str, Any], name: str) -> str:
    if "mode" not in params:
        raise ValueError(f"{name} must contain 'mode' ('train' or 'test'); it has keys {sorted(params)}")
    mode = params["mode"]
    if mode not in ("train", "test"):
        raise ValueError(f"mode must be 'train' or 'test' ({name}['mode']); got {mode!r}")
    return str(mode)


def _number(params: dict[str, Any], name: str, key: str, default: float, lo: float, hi: float) -> float:
    value = params.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not (
        lo <= value <= hi
    ):
        raise ValueError(f"{name}['{key}'] must be a number in [{lo}, {hi}]; got {value!r}")
    return float(value)


def _require_vector_params(layer: str, x: np.ndarray, gamma: np.ndarray, beta: np.ndarray,
                           dim: str, size: int) -> None:
    if np.shape(gamma) != (size,) or np.shape(beta) != (size,):
        raise ValueError(
            f"{layer} shapes do not fit: x {x.shape} has {dim}={size}, so gamma and beta need "
            f"shape ({dim},) = ({size},); got gamma {np.shape(gamma)} and beta {np.shape(beta)}"
        )


# -- shared standardisation -----------------------------------------------------------------


def _standardise(
    x: np.ndarray, axis: tuple[int, ...], eps: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(xhat, x - mu, var, inv_std)`` with statistics over ``axis`` (kept as size-1 axes)."""
    mu = np.mean(x, axis=axis, keepdims=True)
    xmu = x - mu
    var = np.mean(xmu * xmu, axis=axis, keepdims=True)
    inv_std = 1 / np.sqrt(var + eps)
    return xmu * inv_std, xmu, var, inv_std


def _standardise_backward(
    dxhat: np.ndarray, xhat: np.ndarray, inv_std: np.ndarray, axis: tuple[int, ...]
) -> np.ndarray:
    """Closed-form gradient of :func:`_standardise`'s ``xhat`` with respect to ``x``."""
    mean_d = np.mean(dxhat, axis=axis, keepdims=True)
    mean_dx = np.mean(dxhat * xhat, axis=axis, keepdims=True)
    return inv_std * (dxhat - mean_d - xhat * mean_dx)


# -- batch normalisation ------------------------------------------------------------------


def batchnorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, bn_param: dict[str, Any]
) -> tuple[np.ndarray, tuple[Any, ...]]:
    """Batch normalisation of x (N, D) with per-feature gamma, beta (D,).

    ``bn_param``: ``mode`` ('train' or 'test', required), ``eps`` (default 1e-5),
    ``momentum`` (default 0.9), ``running_mean`` and ``running_var`` (D,) (default zeros).
    In train mode the batch mean and biased variance normalise x, and the running
    statistics are updated IN ``bn_param``: ``running = momentum * running + (1 - momentum)
    * batch_stat`` (real parts: they never feed the output in train mode). In test mode
    the running statistics normalise x. Returns out (N, D) and a cache.
    """
    bn_param = _param(bn_param, "bn_param")
    mode = _mode(bn_param, "bn_param")
    require_ndim("x", x, 2, "N, D")
    n, d = x.shape
    _require_vector_params("batchnorm", x, gamma, beta, "D", d)
    eps = _number(bn_param, "bn_param", "eps", 1e-5, 0.0, np.inf)
    momentum = _number(bn_param, "bn_param", "momentum", 0.9, 0.0, 1.0)
    real = np.real(x).dtype
    running = {}
    for key in ("running_mean", "running_var"):
        stat = np.asarray(bn_param.get(key, np.zeros(d, dtype=real)))
        if stat.shape != (d,):
            raise ValueError(f"bn_param['{key}'] must have shape (D,) = ({d},); got {stat.shape}")
        running[key] = stat.astype(real, copy=False)
    if mode == "train":
        if n < 1:
            raise ValueError(f"batchnorm in train mode needs at least one sample; x has shape {x.shape}")
        xhat, xmu, var, inv_std = _standardise(x, (0,), eps)
        batch = {"running_mean": np.mean(x, axis=0), "running_var": var[0]}
        for key, stat in batch.items():
            bn_param[key] = (momentum * running[key] + (1 - momentum) * np.real(stat)).astype(real)
        cache: tuple[Any, ...] = ("train", xhat, xmu, var, inv_std, gamma, eps)
    else:
        inv_std = 1 / np.sqrt(running["running_var"] + eps)
        xhat = (x - running["running_mean"]) * inv_std
        cache = ("test", xhat, None, None, inv_std, gamma, eps)
    out = gamma * xhat + beta
    return out, cache


def batchnorm_backward(dout: np.ndarray, cache: tuple[Any, ...]) -> Grads:
    """Gradients (dx (N, D), dgamma (D,), dbeta (D,)), stage by stage through the graph.

    Train mode: the forward is ``mu = mean(x)``, ``xmu = x - mu``, ``var = mean(xmu**2)``,
    ``std = sqrt(var + eps)``, ``xhat = xmu / std``; each stage's gradient is accumulated
    in reverse. Test mode: xhat is an affine map of x, ``dx = gamma * dout / std``.
    """
    mode, xhat, xmu, var, inv_std, gamma, eps = cache
    dbeta = np.sum(dout, axis=0)
    dgamma = np.sum(dout * xhat, axis=0)
    dxhat = dout * gamma
    if mode == "test":
        return dxhat * inv_std, dgamma, dbeta
    n = dout.shape[0]
    std = np.sqrt(var + eps)
    dinv_std = np.sum(dxhat * xmu, axis=0, keepdims=True)  # xhat = xmu * inv_std
    dxmu = dxhat * inv_std
    dstd = -dinv_std / (std * std)  # inv_std = 1 / std
    dvar = dstd / (2 * std)  # std = sqrt(var + eps)
    dxmu = dxmu + dvar * 2 * xmu / n  # var = mean(xmu ** 2)
    dmu = -np.sum(dxmu, axis=0, keepdims=True)  # xmu = x - mu
    dx = dxmu + dmu / n  # mu = mean(x)
    return dx, dgamma, dbeta


def batchnorm_backward_alt(dout: np.ndarray, cache: tuple[Any, ...]) -> Grads:
    """The same gradients as :func:`batchnorm_backward`, in the simplified closed form."""
    mode, xhat, _, _, inv_std, gamma, _ = cache
    dxhat = dout * gamma
    if mode == "test":
        dx = dxhat * inv_std
    else:
        dx = _standardise_backward(dxhat, xhat, inv_std, (0,))
    return dx, np.sum(dout * xhat, axis=0), np.sum(dout, axis=0)


def spatial_batchnorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, bn_param: dict[str, Any]
) -> tuple[np.ndarray, tuple[Any, ...]]:
    """Batch normalisation of x (N, C, H, W) per channel, statistics over N, H and W.

    gamma and beta have shape (C,); ``bn_param`` as in :func:`batchnorm_forward` (running
    statistics of shape (C,)). Returns out (N, C, H, W) and a cache.
    """
    require_ndim("x", x, 4, "N, C, H, W")
    n, c, h, w = x.shape
    _require_vector_params("spatial batchnorm", x, gamma, beta, "C", c)
    flat = x.transpose(0, 2, 3, 1).reshape(n * h * w, c)
    out, cache = batchnorm_forward(flat, gamma, beta, bn_param)
    return out.reshape(n, h, w, c).transpose(0, 3, 1, 2), (x.shape, cache)


def spatial_batchnorm_backward(dout: np.ndarray, cache: tuple[Any, ...]) -> Grads:
    """Gradients (dx (N, C, H, W), dgamma (C,), dbeta (C,))."""
    (n, c, h, w), bn_cache = cache
    flat = dout.transpose(0, 2, 3, 1).reshape(n * h * w, c)
    dx, dgamma, dbeta = batchnorm_backward_alt(flat, bn_cache)
    return dx.reshape(n, h, w, c).transpose(0, 3, 1, 2), dgamma, dbeta


# -- layer and group normalisation ----------------------------------------------------------


def layernorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, ln_param: dict[str, Any]
) -> tuple[np.ndarray, tuple[Any, ...]]:
    """Layer normalisation of x (N, D): statistics per sample over its D features.

    gamma and beta have shape (D,); ``ln_param`` may set ``eps`` (default 1e-5). The same
    in train and test mode (no running statistics). Returns out (N, D) and a cache.
    """
    ln_param = _param(ln_param, "ln_param")
    require_ndim("x", x, 2, "N, D")
    _require_vector_params("layernorm", x, gamma, beta, "D", x.shape[1])
    eps = _number(ln_param, "ln_param", "eps", 1e-5, 0.0, np.inf)
    xhat, _, _, inv_std = _standardise(x, (1,), eps)
    return gamma * xhat + beta, (xhat, inv_std, gamma)


def layernorm_backward(dout: np.ndarray, cache: tuple[Any, ...]) -> Grads:
    """Gradients (dx (N, D), dgamma (D,), dbeta (D,))."""
    xhat, inv_std, gamma = cache
    dx = _standardise_backward(dout * gamma, xhat, inv_std, (1,))
    return dx, np.sum(dout * xhat, axis=0), np.sum(dout, axis=0)


def spatial_groupnorm_forward(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, G: int, gn_param: dict[str, Any]
) -> tuple[np.ndarray, tuple[Any, ...]]:
    """Group normalisation of x (N, C, H, W) with G groups of C // G channels.

    Statistics per (sample, group) over its C // G * H * W entries; gamma and beta have
    shape (1, C, 1, 1) (the CS231n convention); ``gn_param`` may set ``eps`` (default
    1e-5). Returns out (N, C, H, W) and a cache.
    """
    gn_param = _param(gn_param, "gn_param")
    require_ndim("x", x, 4, "N, C, H, W")
    n, c, h, w = x.shape
    if isinstance(G, bool) or not isinstance(G, (int, np.integer)) or G < 1:
        raise ValueError(f"G must be a positive integer (the number of groups); got {G!r}")
    if c % G:
        raise ValueError(f"C={c} is not divisible by G={G}: x {x.shape} cannot form {G} groups of channels")
    for name, value in (("gamma", gamma), ("beta", beta)):
        if np.shape(value) != (1, c, 1, 1):
            raise ValueError(
                f"{name} must have shape (1, C, 1, 1) = (1, {c}, 1, 1) for x (N={n}, C={c}, H={h}, "
                f"W={w}); got {np.shape(value)}"
            )
    eps = _number(gn_param, "gn_param", "eps", 1e-5, 0.0, np.inf)
    grouped = x.reshape(n, G, c // G, h, w)
    xhat, _, _, inv_std = _standardise(grouped, (2, 3, 4), eps)
    xhat = xhat.reshape(x.shape)
    return gamma * xhat + beta, (xhat, inv_std, gamma, int(G))


def spatial_groupnorm_backward(dout: np.ndarray, cache: tuple[Any, ...]) -> Grads:
    """Gradients (dx (N, C, H, W), dgamma (1, C, 1, 1), dbeta (1, C, 1, 1))."""
    xhat, inv_std, gamma, G = cache
    n, c, h, w = dout.shape
    dgamma = np.sum(dout * xhat, axis=(0, 2, 3), keepdims=True)
    dbeta = np.sum(dout, axis=(0, 2, 3), keepdims=True)
    grouped = (n, G, c // G, h, w)
    dx = _standardise_backward((dout * gamma).reshape(grouped), xhat.reshape(grouped), inv_std, (2, 3, 4))
    return dx.reshape(dout.shape), dgamma, dbeta
