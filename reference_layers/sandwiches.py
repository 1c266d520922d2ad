"""The convenience layers of ``layer_utils.py``: a layer followed by a ReLU (and a pool)."""

from __future__ import annotations

from typing import Any

import numpy as np

from reference_layers.activations import relu_backward, relu_forward
from reference_layers.affine import affine_backward, affine_forward
from reference_layers.conv import conv_backward_naive, conv_forward_naive
from reference_layers.pooling import max_pool_backward_naive, max_pool_forward_naive

__all__ = [
    "affine_relu_backward",
    "affine_relu_forward",
    "conv_relu_backward",
    "conv_relu_forward",
    "conv_relu_pool_backward",
    "conv_relu_pool_forward",
]

Grads = tuple[np.ndarray, np.ndarray, np.ndarray]


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
