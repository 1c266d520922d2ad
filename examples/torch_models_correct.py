"""Models in torch tensors, written the way EECS 498/598 asks for them: ``TwoLayerNet`` and
``FullyConnectedNet`` (assignment 3's fully_connected_networks.py), ``ThreeLayerConvNet``
and ``DeepConvNet`` (its convolutional_networks.py). Parameters live in ``self.params`` as
tensors of the given dtype on the given device; ``loss(X, y)`` returns ``(loss, grads)``,
built from the layer classes of ``torch_layers_correct.py`` (imported from the file beside
it, as the course's convolutional_networks.py imports fully_connected_networks.py) and the
course's ``softmax_loss`` (``a3_helper.py``)."""

import torch
from a3_helper import softmax_loss
from torch_layers_correct import (
    Conv,
    Conv_BatchNorm_ReLU,
    Conv_BatchNorm_ReLU_Pool,
    Dropout,
    Linear,
    Linear_ReLU,
    MaxPool,
    ReLU,
)

POOL = {"pool_height": 2, "pool_width": 2, "stride": 2}


class ConvReLUPool:
    """conv - relu - [2x2 max pool], pooling optional: the course gives Conv_ReLU and
    Conv_ReLU_Pool (on its fast layers); a student may write its own."""

    @staticmethod
    def forward(x, w, b, conv_param, pool):
        a, conv_cache = Conv.forward(x, w, b, conv_param)
        out, relu_cache = ReLU.forward(a)
        pool_cache = None
        if pool:
            out, pool_cache = MaxPool.forward(out, POOL)
        return out, (conv_cache, relu_cache, pool_cache)

    @staticmethod
    def backward(dout, cache):
        conv_cache, relu_cache, pool_cache = cache
        if pool_cache is not None:
            dout = MaxPool.backward(dout, pool_cache)
        return Conv.backward(ReLU.backward(dout, relu_cache), conv_cache)


def _regularise(model, loss, grads, factor=1.0):
    """``factor * reg * sum(W**2)`` over the weights, and its gradient."""
    for key in [k for k in model.params if k.startswith("W")]:
        w = model.params[key]
        loss = loss + factor * model.reg * torch.sum(w * w)
        grads[key] = grads[key] + 2 * factor * model.reg * w
    return loss, grads


class TwoLayerNet:
    def __init__(self, input_dim=3 * 32 * 32, hidden_dim=100, num_classes=10, weight_scale=1e-3,
                 reg=0.0, dtype=torch.float32, device="cpu"):
        self.reg = reg
        self.params = {
            "W1": weight_scale * torch.randn(input_dim, hidden_dim, dtype=dtype, device=device),
            "b1": torch.zeros(hidden_dim, dtype=dtype, device=device),
            "W2": weight_scale * torch.randn(hidden_dim, num_classes, dtype=dtype, device=device),
            "b2": torch.zeros(num_classes, dtype=dtype, device=device),
        }

    def loss(self, X, y=None):
        hidden, hidden_cache = Linear_ReLU.forward(X, self.params["W1"], self.params["b1"])
        scores, scores_cache = Linear.forward(hidden, self.params["W2"], self.params["b2"])
        if y is None:
            return scores
        loss, dscores = softmax_loss(scores, y)
        grads = {}
        dhidden, grads["W2"], grads["b2"] = Linear.backward(dscores, scores_cache)
        _, grads["W1"], grads["b1"] = Linear_ReLU.backward(dhidden, hidden_cache)
        return _regularise(self, loss, grads)


class FullyConnectedNet:
    def __init__(self, hidden_dims, input_dim=3 * 32 * 32, num_classes=10, dropout=0.0, reg=0.0,
                 weight_scale=1e-2, seed=None, dtype=torch.float, device="cpu"):
        self.use_dropout = dropout != 0
        self.reg = reg
        self.num_layers = 1 + len(hidden_dims)
        dims = [input_dim, *hidden_dims, num_classes]
        self.params = {}
        for i in range(self.num_layers):
            self.params[f"W{i + 1}"] = weight_scale * torch.randn(dims[i], dims[i + 1], dtype=dtype,
                                                                  device=device)
            self.params[f"b{i + 1}"] = torch.zeros(dims[i + 1], dtype=dtype, device=device)
        self.dropout_param = {}
        if self.use_dropout:
            self.dropout_param = {"mode": "train", "p": dropout}
            if seed is not None:
                self.dropout_param["seed"] = seed

    def loss(self, X, y=None):
        mode = "test" if y is None else "train"
        if self.use_dropout:
            self.dropout_param["mode"] = mode
        h, caches = X, []
        for i in range(1, self.num_layers):
            h, cache = Linear_ReLU.forward(h, self.params[f"W{i}"], self.params[f"b{i}"])
            drop = None
            if self.use_dropout:
                h, drop = Dropout.forward(h, self.dropout_param)
            caches.append((cache, drop))
        last = self.num_layers
        scores, scores_cache = Linear.forward(h, self.params[f"W{last}"], self.params[f"b{last}"])
        if mode == "test":
            return scores
        loss, dh = softmax_loss(scores, y)
        grads = {}
        dh, grads[f"W{last}"], grads[f"b{last}"] = Linear.backward(dh, scores_cache)
        for i in range(last - 1, 0, -1):
            cache, drop = caches[i - 1]
            if drop is not None:
                dh = Dropout.backward(dh, drop)
            dh, grads[f"W{i}"], grads[f"b{i}"] = Linear_ReLU.backward(dh, cache)
        return _regularise(self, loss, grads, factor=0.5)  # the template asks for 0.5 here


class ThreeLayerConvNet:
    def __init__(self, input_dims=(3, 32, 32), num_filters=32, filter_size=7, hidden_dim=100,
                 num_classes=10, weight_scale=1e-3, reg=0.0, dtype=torch.float, device="cpu"):
        C, H, W = input_dims
        self.reg = reg
        like = {"dtype": dtype, "device": device}
        self.params = {
            "W1": weight_scale * torch.randn(num_filters, C, filter_size, filter_size, **like),
            "b1": torch.zeros(num_filters, **like),
            "W2": weight_scale * torch.randn(num_filters * (H // 2) * (W // 2), hidden_dim, **like),
            "b2": torch.zeros(hidden_dim, **like),
            "W3": weight_scale * torch.randn(hidden_dim, num_classes, **like),
            "b3": torch.zeros(num_classes, **like),
        }

    def loss(self, X, y=None):
        conv_param = {"stride": 1, "pad": (self.params["W1"].shape[2] - 1) // 2}
        pooled, pool_cache = ConvReLUPool.forward(X, self.params["W1"], self.params["b1"], conv_param, True)
        hidden, hidden_cache = Linear_ReLU.forward(pooled, self.params["W2"], self.params["b2"])
        scores, scores_cache = Linear.forward(hidden, self.params["W3"], self.params["b3"])
        if y is None:
            return scores
        loss, dscores = softmax_loss(scores, y)
        grads = {}
        dhidden, grads["W3"], grads["b3"] = Linear.backward(dscores, scores_cache)
        dpooled, grads["W2"], grads["b2"] = Linear_ReLU.backward(dhidden, hidden_cache)
        _, grads["W1"], grads["b1"] = ConvReLUPool.backward(dpooled, pool_cache)
        return _regularise(self, loss, grads)


class DeepConvNet:
    def __init__(self, input_dims=(3, 32, 32), num_filters=(8, 8, 8, 8, 8), max_pools=(0, 1, 2, 3, 4),
                 batchnorm=False, num_classes=10, weight_scale=1e-3, reg=0.0, weight_initializer=None,
                 dtype=torch.float, device="cpu"):
        self.num_layers = len(num_filters) + 1
        self.max_pools, self.batchnorm, self.reg = max_pools, batchnorm, reg
        like = {"dtype": dtype, "device": device}
        C, H, W = input_dims
        self.params = {}
        for i, filters in enumerate(num_filters, start=1):
            self.params[f"W{i}"] = weight_scale * torch.randn(filters, C, 3, 3, **like)
            self.params[f"b{i}"] = torch.zeros(filters, **like)
            if batchnorm:
                self.params[f"gamma{i}"] = torch.ones(filters, **like)
                self.params[f"beta{i}"] = torch.zeros(filters, **like)
            C = filters
            if i - 1 in max_pools:
                H, W = H // 2, W // 2
        last = self.num_layers
        self.params[f"W{last}"] = weight_scale * torch.randn(C * H * W, num_classes, **like)
        self.params[f"b{last}"] = torch.zeros(num_classes, **like)
        self.bn_params = [{"mode": "train"} for _ in num_filters] if batchnorm else []

    def loss(self, X, y=None):
        mode = "test" if y is None else "train"
        for bn_param in self.bn_params:
            bn_param["mode"] = mode
        conv_param = {"stride": 1, "pad": 1}
        h, caches = X, []
        for i in range(1, self.num_layers):
            w, b, pool = self.params[f"W{i}"], self.params[f"b{i}"], i - 1 in self.max_pools
            if not self.batchnorm:
                h, cache = ConvReLUPool.forward(h, w, b, conv_param, pool)
            else:
                norm = (self.params[f"gamma{i}"], self.params[f"beta{i}"], conv_param, self.bn_params[i - 1])
                h, cache = (Conv_BatchNorm_ReLU_Pool.forward(h, w, b, *norm, POOL) if pool
                            else Conv_BatchNorm_ReLU.forward(h, w, b, *norm))
            caches.append((cache, pool))
        last = self.num_layers
        scores, scores_cache = Linear.forward(h, self.params[f"W{last}"], self.params[f"b{last}"])
        if y is None:
            return scores
        loss, dh = softmax_loss(scores, y)
        grads = {}
        dh, grads[f"W{last}"], grads[f"b{last}"] = Linear.backward(dh, scores_cache)
        for i in range(last - 1, 0, -1):
            cache, pool = caches[i - 1]
            if not self.batchnorm:
                dh, grads[f"W{i}"], grads[f"b{i}"] = ConvReLUPool.backward(dh, cache)
            else:
                sandwich = Conv_BatchNorm_ReLU_Pool if pool else Conv_BatchNorm_ReLU
                dh, grads[f"W{i}"], grads[f"b{i}"], grads[f"gamma{i}"], grads[f"beta{i}"] = \
                    sandwich.backward(dh, cache)
        return _regularise(self, loss, grads)
