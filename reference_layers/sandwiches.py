"""The convenience layers of ``layer_utils.py``: a layer followed by a ReLU (and a pool), and
the batch-norm sandwiches of EECS 498/598 (a layer, batch norm, a ReLU, and a pool)."""

from __future__ import annotations

from typing import Any

import numpy as np

from reference_layers.activations import relu_backward, relu_forward
from reference_layers.affine import affine_backward, affine_forward
from reference_layers.conv import conv_backward_naive, conv_forward_naive
from reference_layers.normalization import (
    batchnorm_backward,
    batchnorm_forward,
    spatial_batchnorm_backward,
    spatial_batchnorm_forward,
)
from reference_layers.pooling import max_pool_backward_naive, max_pool_forward_naive

__all__ = [
    "affine_bn_relu_backward",
    "affine_bn_relu_forward",
    "affine_relu_backward",
    "affine_relu_forward",
    "conv_bn_relu_backward",
    "conv_bn_relu_forward",
    "conv_bn_relu_pool_backward",
    "conv_bn_relu_pool_forward",
    "conv_relu_backward",
    "conv_relu_forward",
    "conv_relu_pool_backward",
    "conv_relu_pool_forward",
]

Grads = tuple[np.ndarray, np.ndarray, np.ndarray]
NormGrads = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def affine_relu_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, Any]:
    """``relu(affine(x, w, b))``."""
    a, affine_cache = affine_forward(x, w, b)
    out, relu_cache = relu_forward(a)
    return out, (affine_cache, relu_cache)


def affine_relu_backward(dout: np.ndarray, cache: Any) -> Grads:
    affine_cache, relu_cache = cache
    return affine_backward(relu_backward(dout, relu_cache), affine_cache)


def conv_relu_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray,
                      conv_param: dict[str, Any]) -> tuple[np.ndarray, Any]:
    """``relu(conv(x, w, b))``."""
    a, conv_cache = conv_forward_naive(x, w, b, conv_param)
    out, relu_cache = relu_forward(a)
    return out, (conv_cache, relu_cache)


def conv_relu_backward(dout: np.ndarray, cache: Any) -> Grads:
    conv_cache, relu_cache = cache
    return conv_backward_naive(relu_backward(dout, relu_cache), conv_cache)


def conv_relu_pool_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, conv_param: dict[str, Any],
                           pool_param: dict[str, Any]) -> tuple[np.ndarray, Any]:
    """``max_pool(relu(conv(x, w, b)))``."""
    a, conv_cache = conv_forward_naive(x, w, b, conv_param)
    s, relu_cache = relu_forward(a)
    out, pool_cache = max_pool_forward_naive(s, pool_param)
    return out, (conv_cache, relu_cache, pool_cache)


def conv_relu_pool_backward(dout: np.ndarray, cache: Any) -> Grads:
    conv_cache, relu_cache, pool_cache = cache
    ds = max_pool_backward_naive(dout, pool_cache)
    return conv_backward_naive(relu_backward(ds, relu_cache), conv_cache)


# -- with batch normalisation (EECS 498/598's Linear_BatchNorm_ReLU, Conv_BatchNorm_ReLU[_Pool]) --


def affine_bn_relu_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, gamma: np.ndarray,
                           beta: np.ndarray, bn_param: dict[str, Any]) -> tuple[np.ndarray, Any]:
    """``relu(batchnorm(affine(x, w, b), gamma, beta, bn_param))``; running statistics
    are updated in ``bn_param`` as by :func:`batchnorm_forward`."""
    a, affine_cache = affine_forward(x, w, b)
    s, bn_cache = batchnorm_forward(a, gamma, beta, bn_param)
    out, relu_cache = relu_forward(s)
    return out, (affine_cache, bn_cache, relu_cache)


def affine_bn_relu_backward(dout: np.ndarray, cache: Any) -> NormGrads:
    """``(dx, dw, db, dgamma, dbeta)``."""
    affine_cache, bn_cache, relu_cache = cache
    da, dgamma, dbeta = batchnorm_backward(relu_backward(dout, relu_cache), bn_cache)
    return (*affine_backward(da, affine_cache), dgamma, dbeta)


def conv_bn_relu_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, gamma: np.ndarray,
                         beta: np.ndarray, conv_param: dict[str, Any],
                         bn_param: dict[str, Any]) -> tuple[np.ndarray, Any]:
    """``relu(spatial_batchnorm(conv(x, w, b), gamma, beta, bn_param))``."""
    a, conv_cache = conv_forward_naive(x, w, b, conv_param)
    s, bn_cache = spatial_batchnorm_forward(a, gamma, beta, bn_param)
    out, relu_cache = relu_forward(s)
    return out, (conv_cache, bn_cache, relu_cache)


def conv_bn_relu_backward(dout: np.ndarray, cache: Any) -> NormGrads:
    """``(dx, dw, db, dgamma, dbeta)``."""
    conv_cache, bn_cache, relu_cache = cache
    da, dgamma, dbeta = spatial_batchnorm_backward(relu_backward(dout, relu_cache), bn_cache)
    return (*conv_backward_naive(da, conv_cache), dgamma, dbeta)


def conv_bn_relu_pool_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray, gamma: np.ndarray,
                              beta: np.ndarray, conv_param: dict[str, Any], bn_param: dict[str, Any],
                              pool_param: dict[str, Any]) -> tuple[np.ndarray, Any]:
    """``max_pool(relu(spatial_batchnorm(conv(x, w, b), gamma, beta, bn_param)))``."""
    s, inner = conv_bn_relu_forward(x, w, b, gamma, beta, conv_param, bn_param)
    out, pool_cache = max_pool_forward_naive(s, pool_param)
    return out, (inner, pool_cache)


def conv_bn_relu_pool_backward(dout: np.ndarray, cache: Any) -> NormGrads:
    """``(dx, dw, db, dgamma, dbeta)``."""
    inner, pool_cache = cache
    return conv_bn_relu_backward(max_pool_backward_naive(dout, pool_cache), inner)
