"""Torch reference computations for the CS231n layers (the labeller's oracle).

Every function takes the case's arguments with the differentiable ones already turned into
float64 leaf tensors (the others stay numpy arrays, ints or dicts) and returns a tuple of
output tensors (one scalar for the losses). Nothing here uses gradcheck or its reference
layers: the forward semantics are torch's, written with ``torch.nn.functional`` where it has
the layer and as explicit loops of torch ops for the recurrent ones.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def _long(a: Any) -> Tensor:
    return torch.as_tensor(a, dtype=torch.long)


def _t(a: Any) -> Tensor:
    return torch.as_tensor(a, dtype=torch.float64)


def affine(x: Tensor, w: Tensor, b: Tensor) -> tuple[Tensor, ...]:
    return (F.linear(x.reshape(x.shape[0], -1), w.T, b),)


def relu(x: Tensor) -> tuple[Tensor, ...]:
    return (F.relu(x),)


def leaky_relu(x: Tensor, alpha: float) -> tuple[Tensor, ...]:
    return (F.leaky_relu(x, negative_slope=alpha),)


def sigmoid(x: Tensor) -> tuple[Tensor, ...]:
    return (torch.sigmoid(x),)


def tanh(x: Tensor) -> tuple[Tensor, ...]:
    return (torch.tanh(x),)


def softmax_loss(x: Tensor, y: Any) -> tuple[Tensor, ...]:
    return (F.cross_entropy(x, _long(y), reduction="mean"),)


def svm_loss(x: Tensor, y: Any) -> tuple[Tensor, ...]:
    n = x.shape[0]
    rows = torch.arange(n)
    labels = _long(y)
    margins = torch.clamp(x - x[rows, labels].unsqueeze(1) + 1.0, min=0.0)
    others = torch.ones_like(x)
    others[rows, labels] = 0.0
    return ((margins * others).sum() / n,)


def conv(x: Tensor, w: Tensor, b: Tensor, conv_param: dict[str, Any]) -> tuple[Tensor, ...]:
    return (F.conv2d(x, w, b, stride=conv_param["stride"], padding=conv_param["pad"]),)


def max_pool(x: Tensor, pool_param: dict[str, Any]) -> tuple[Tensor, ...]:
    kernel = (pool_param["pool_height"], pool_param["pool_width"])
    return (F.max_pool2d(x, kernel, stride=pool_param["stride"]),)


def batchnorm(x: Tensor, gamma: Tensor, beta: Tensor, bn_param: dict[str, Any]) -> tuple[Tensor, ...]:
    """Train mode: batch statistics, biased variance; test mode: the given running statistics.

    Works for (N, D) and, per channel, for (N, C, H, W) (spatial batchnorm).
    """
    eps = bn_param.get("eps", 1e-5)
    if bn_param["mode"] == "train":
        return (F.batch_norm(x, None, None, gamma, beta, training=True, eps=eps),)
    mean, var = _t(bn_param["running_mean"]), _t(bn_param["running_var"])
    return (F.batch_norm(x, mean, var, gamma, beta, training=False, eps=eps),)


def layernorm(x: Tensor, gamma: Tensor, beta: Tensor, ln_param: dict[str, Any]) -> tuple[Tensor, ...]:
    return (F.layer_norm(x, (x.shape[1],), gamma, beta, eps=ln_param.get("eps", 1e-5)),)


def groupnorm(x: Tensor, gamma: Tensor, beta: Tensor, G: int, gn_param: dict[str, Any]) -> tuple[Tensor, ...]:
    c = x.shape[1]
    eps = gn_param.get("eps", 1e-5)
    return (F.group_norm(x, G, gamma.reshape(c), beta.reshape(c), eps=eps),)


def rnn_step(x: Tensor, prev_h: Tensor, Wx: Tensor, Wh: Tensor, b: Tensor) -> tuple[Tensor, ...]:
    return (torch.tanh(x @ Wx + prev_h @ Wh + b),)


def rnn(x: Tensor, h0: Tensor, Wx: Tensor, Wh: Tensor, b: Tensor) -> tuple[Tensor, ...]:
    h = h0
    steps = []
    for t in range(x.shape[1]):
        (h,) = rnn_step(x[:, t, :], h, Wx, Wh, b)
        steps.append(h)
    return (torch.stack(steps, dim=1),)


def lstm_step(
    x: Tensor, prev_h: Tensor, prev_c: Tensor, Wx: Tensor, Wh: Tensor, b: Tensor
) -> tuple[Tensor, ...]:
    """Gates i, f, o, g in that order along the 4H axis."""
    H = prev_h.shape[1]
    a = x @ Wx + prev_h @ Wh + b
    i = torch.sigmoid(a[:, :H])
    f = torch.sigmoid(a[:, H:2 * H])
    o = torch.sigmoid(a[:, 2 * H:3 * H])
    g = torch.tanh(a[:, 3 * H:])
    next_c = f * prev_c + i * g
    return o * torch.tanh(next_c), next_c


def lstm(x: Tensor, h0: Tensor, Wx: Tensor, Wh: Tensor, b: Tensor) -> tuple[Tensor, ...]:
    h, c = h0, torch.zeros_like(h0)
    steps = []
    for t in range(x.shape[1]):
        h, c = lstm_step(x[:, t, :], h, c, Wx, Wh, b)
        steps.append(h)
    return (torch.stack(steps, dim=1),)


def word_embedding(x: Any, W: Tensor) -> tuple[Tensor, ...]:
    return (F.embedding(_long(x), W),)


def temporal_affine(x: Tensor, w: Tensor, b: Tensor) -> tuple[Tensor, ...]:
    return (x @ w + b,)


def temporal_softmax_loss(x: Tensor, y: Any, mask: Any) -> tuple[Tensor, ...]:
    n, t, v = x.shape
    per_step = F.cross_entropy(x.reshape(n * t, v), _long(y).reshape(n * t), reduction="none")
    keep = torch.as_tensor(mask, dtype=torch.bool).reshape(n * t)
    return ((per_step * keep.to(x.dtype)).sum() / n,)
