"""The losses of assignment 2 and 3's models, built from the reference layers.

Each function takes the model's ``params`` dict with the course's key names (``W1``,
``b1``, ``gamma1``, ...) and returns the loss ``model.loss`` must return for those
parameters, with ``factor * reg * sum(W**2)`` over the weight matrices (``factor`` 1 or
0.5: course years differ). Losses only: the gradients are checked numerically.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reference_layers.activations import relu_forward
from reference_layers.affine import affine_forward
from reference_layers.conv import conv_forward_naive
from reference_layers.embedding import word_embedding_forward
from reference_layers.losses import softmax_loss
from reference_layers.normalization import batchnorm_forward, layernorm_forward, spatial_batchnorm_forward
from reference_layers.pooling import max_pool_forward_naive
from reference_layers.recurrent import lstm_forward, rnn_forward
from reference_layers.temporal import temporal_affine_forward, temporal_softmax_loss

__all__ = ["captioning_rnn_loss", "deep_convnet_loss", "fully_connected_net_loss",
           "three_layer_convnet_loss"]

Params = dict[str, np.ndarray]


def _weight_penalty(params: Params, names: list[str], reg: float, factor: float) -> Any:
    return factor * reg * sum(np.sum(params[n] * params[n]) for n in names)


def fully_connected_net_loss(params: Params, X: np.ndarray, y: np.ndarray, reg: float,
                             normalization: str | None = None, factor: float = 1.0) -> Any:
    """``{affine - [norm] - relu} x (L - 1) - affine - softmax`` (a two-layer net is L = 2).

    ``normalization`` is ``None``, ``"batchnorm"`` (train mode) or ``"layernorm"``.
    """
    layers = sum(1 for k in params if k.startswith("W") and k[1:].isdigit())
    h = X
    for i in range(1, layers):
        h, _ = affine_forward(h, params[f"W{i}"], params[f"b{i}"])
        if normalization == "batchnorm":
            h, _ = batchnorm_forward(h, params[f"gamma{i}"], params[f"beta{i}"], {"mode": "train"})
        elif normalization == "layernorm":
            h, _ = layernorm_forward(h, params[f"gamma{i}"], params[f"beta{i}"], {})
        h, _ = relu_forward(h)
    scores, _ = affine_forward(h, params[f"W{layers}"], params[f"b{layers}"])
    loss, _ = softmax_loss(scores, y)
    return loss + _weight_penalty(params, [f"W{i}" for i in range(1, layers + 1)], reg, factor)


def three_layer_convnet_loss(params: Params, X: np.ndarray, y: np.ndarray, reg: float,
                             factor: float = 1.0) -> Any:
    """``conv - relu - 2x2 max pool - affine - relu - affine - softmax``; the convolution
    keeps the spatial size (stride 1, pad (filter_size - 1) // 2)."""
    filter_size = params["W1"].shape[2]
    conv_param = {"stride": 1, "pad": (filter_size - 1) // 2}
    h, _ = conv_forward_naive(X, params["W1"], params["b1"], conv_param)
    h, _ = relu_forward(h)
    h, _ = max_pool_forward_naive(h, {"pool_height": 2, "pool_width": 2, "stride": 2})
    h, _ = affine_forward(h, params["W2"], params["b2"])
    h, _ = relu_forward(h)
    scores, _ = affine_forward(h, params["W3"], params["b3"])
    loss, _ = softmax_loss(scores, y)
    return loss + _weight_penalty(params, ["W1", "W2", "W3"], reg, factor)


def deep_convnet_loss(params: Params, X: np.ndarray, y: np.ndarray, reg: float,
                      max_pools: list[int], batchnorm: bool = False, factor: float = 1.0) -> Any:
    """EECS 498/598's ``DeepConvNet``: ``{conv - [batchnorm] - relu - [pool]} x (L - 1) -
    linear - softmax``; every convolution 3x3 with stride 1 and pad 1, batch norm in train
    mode (``eps`` 1e-5), a 2x2 max pool of stride 2 after the macro layers (zero-indexed)
    in ``max_pools``; ``reg`` on the weights only (not on biases, gamma or beta)."""
    layers = sum(1 for k in params if k.startswith("W") and k[1:].isdigit())
    h = X
    for i in range(1, layers):
        h, _ = conv_forward_naive(h, params[f"W{i}"], params[f"b{i}"], {"stride": 1, "pad": 1})
        if batchnorm:
            h, _ = spatial_batchnorm_forward(h, params[f"gamma{i}"], params[f"beta{i}"], {"mode": "train"})
        h, _ = relu_forward(h)
        if i - 1 in max_pools:
            h, _ = max_pool_forward_naive(h, {"pool_height": 2, "pool_width": 2, "stride": 2})
    scores, _ = affine_forward(h, params[f"W{layers}"], params[f"b{layers}"])
    loss, _ = softmax_loss(scores, y)
    return loss + _weight_penalty(params, [f"W{i}" for i in range(1, layers + 1)], reg, factor)


def captioning_rnn_loss(params: Params, features: np.ndarray, captions: np.ndarray,
                        cell_type: str, null: int) -> Any:
    """Image features projected to h0, words embedded, an RNN or LSTM, scores per step,
    softmax over the vocabulary at every step whose target is not ``null``."""
    captions_in, captions_out = captions[:, :-1], captions[:, 1:]
    h0, _ = affine_forward(features, params["W_proj"], params["b_proj"])
    x, _ = word_embedding_forward(captions_in, params["W_embed"])
    cell = rnn_forward if cell_type == "rnn" else lstm_forward
    h, _ = cell(x, h0, params["Wx"], params["Wh"], params["b"])
    scores, _ = temporal_affine_forward(h, params["W_vocab"], params["b_vocab"])
    loss, _ = temporal_softmax_loss(scores, captions_out, captions_out != null)
    return loss
