"""Patterns the torch-course corpus (EECS 498/598, ``benchmarks/field_torch``) taught, as
our own rewrites of ``examples/torch_layers_correct.py``.

Each bug is one seen in real students' class-style torch layers, written here from scratch
so that CI guards it without the corpus: a flattened window index divided by the wrong
output side (right only for square outputs), a pooling loop over the window's size instead
of the output's, spatial batch norm flattened without moving the channels last, a dropout
that keeps with ``1 - p`` but rescales by ``1 / p``, padding sliced off with a hard-coded 1,
and a test-mode batch norm with eps outside the square root; in the batch-norm sandwiches,
gradients returned in the wrong order, the ReLU before the batch norm, a backward that skips
the ReLU, and batch norm given a copy of ``bn_param``. The variants are correct
rewrites of the same layers in the other styles students use. Entries exist only where
torch is installed (an optional dependency).
"""

from __future__ import annotations

import importlib.util

from benchmarks.mutants import Mutant, Variant

SOURCE = "examples/torch_layers_correct.py"

_POOL_LOOP = (
    "        for i in range(dout.shape[2]):\n"
    "            for j in range(dout.shape[3]):\n"
    "                window = x[:, :, i * stride:i * stride + ph, j * stride:j * stride + pw]\n"
    "                flat = window.reshape(n, c, -1)\n"
    "                mask = flat == flat.max(dim=2, keepdim=True).values\n"
    "                grad = mask * dout[:, :, i, j].reshape(n, c, 1)\n"
    "                dx[:, :, i * stride:i * stride + ph, j * stride:j * stride + pw] += "
    "grad.reshape(window.shape)\n"
)


def _flat_pool_loop(side: str) -> str:
    """The backward's loop over flattened output positions, row length ``side``."""
    return (
        "        h_out, w_out = dout.shape[2], dout.shape[3]\n"
        "        for k in range(h_out * w_out):\n"
        f"            i, j = divmod(k, {side})\n"
        "            rows, cols = slice(i * stride, i * stride + ph), slice(j * stride, j * stride + pw)\n"
        "            flat = x[:, :, rows, cols].reshape(n, c, -1)\n"
        "            hit = (flat == flat.max(dim=2, keepdim=True).values).to(dout.dtype)\n"
        "            dx[:, :, rows, cols] += (hit * dout[:, :, i, j, None]).reshape(n, c, ph, pw)\n"
    )


_POOL_FORWARD = (
    "        for i in range(h_out):\n"
    "            for j in range(w_out):\n"
    "                window = x[:, :, i * stride:i * stride + ph, j * stride:j * stride + pw]\n"
    "                out[:, :, i, j] = window.reshape(n, c, -1).max(dim=2).values\n"
)
_SPATIAL_FORMS = ("x.permute(0, 2, 3, 1).reshape(-1, c)", "out.reshape(n, h, w, c).permute(0, 3, 1, 2)",
                  "dout.permute(0, 2, 3, 1).reshape(-1, c)", "dx.reshape(n, h, w, c).permute(0, 3, 1, 2)")


def _spatial(*forms: str) -> str:
    """SpatialBatchNorm's methods with x, out, dout, dx (un)flattened as ``forms`` say."""
    x, out, dout, dx = forms
    return (
        f"        flat = {x}\n"
        "        out, cache = BatchNorm.forward(flat, gamma, beta, bn_param)\n"
        f"        return {out}, cache\n"
        "\n"
        "    @staticmethod\n"
        "    def backward(dout, cache):\n"
        "        n, c, h, w = dout.shape\n"
        f"        flat = {dout}\n"
        "        dx, dgamma, dbeta = BatchNorm.backward_alt(flat, cache)\n"
        f"        return {dx}, dgamma, dbeta\n"
    )


_SPATIAL = _spatial(*_SPATIAL_FORMS)


def _torch(name: str, spec: str, cls: str, old: str, new: str, **kw: object) -> Mutant:
    return Mutant(name=name, source=SOURCE, spec=spec, old=old, new=new, kind="torch",
                  functions=(f"{cls}.forward", f"{cls}.backward"), **kw)  # type: ignore[arg-type]


_MUTANTS: list[Mutant] = [
    _torch("torch MaxPool: flattened output index divided by the height count (square outputs only)",
           "max_pool", "MaxPool", _POOL_LOOP, _flat_pool_loop("h_out"),
           expect=frozenset({"x", "contract:backward_error"})),
    _torch("torch MaxPool: forward loops over the window's size instead of the output's",
           "max_pool", "MaxPool", _POOL_FORWARD, _POOL_FORWARD.replace("range(h_out)", "range(ph)")
           .replace("range(w_out)", "range(pw)"),
           expect=frozenset({"forward"}), may=frozenset({"x", "contract:forward_error"})),
    _torch("torch SpatialBatchNorm: (N, C, H, W) flattened to (-1, C) without moving C last",
           "spatial_batchnorm", "SpatialBatchNorm", _SPATIAL,
           _spatial("x.reshape(-1, c)", "out.reshape(n, c, h, w)", "dout.reshape(-1, c)",
                    "dx.reshape(n, c, h, w)"),
           expect=frozenset({"forward"}), may=frozenset({"x", "gamma", "beta"})),
    _torch("torch Dropout: keeps with probability 1 - p but rescales by 1 / p",
           "dropout", "Dropout",
           "mask = (torch.rand(x.shape, dtype=x.dtype, device=x.device) >= p) / (1 - p)\n",
           "mask = (torch.rand(x.shape, dtype=x.dtype, device=x.device) >= p) / p\n",
           expect=frozenset({"forward"}), diagnosis="x / (1 - p)"),
    _torch("torch Conv: padding sliced off with a hard-coded 1 (right only at pad 1)",
           "conv", "Conv", "dx = dxp[:, :, pad:pad + x.shape[2], pad:pad + x.shape[3]]",
           "dx = dxp[:, :, 1:-1, 1:-1]", expect=frozenset({"x"}), geometry="pad=0"),
    _torch("torch BatchNorm: test mode divides by sqrt(running_var) + eps",
           "batchnorm", "BatchNorm",
           "out = gamma * (x - running_mean) / torch.sqrt(running_var + eps) + beta",
           "out = gamma * (x - running_mean) / (torch.sqrt(running_var) + eps) + beta",
           expect=frozenset({"forward"}), geometry="mode=test"),
]

# The batch-norm sandwiches (Linear_BatchNorm_ReLU, Conv_BatchNorm_ReLU[_Pool]): composition
# bugs, each our own edit of the example's classes.
_SANDWICH_MUTANTS = [
    _torch("torch Linear_BatchNorm_ReLU: backward returns dbeta and dgamma swapped",
           "affine_bn_relu", "Linear_BatchNorm_ReLU",
           "        dx, dw, db = Linear.backward(da, fc_cache)\n        return dx, dw, db, dgamma, dbeta\n",
           "        dx, dw, db = Linear.backward(da, fc_cache)\n        return dx, dw, db, dbeta, dgamma\n",
           expect=frozenset({"gamma", "beta"})),
    _torch("torch Linear_BatchNorm_ReLU: ReLU before batch norm",
           "affine_bn_relu", "Linear_BatchNorm_ReLU",
           "        s, bn_cache = BatchNorm.forward(a, gamma, beta, bn_param)\n"
           "        out, relu_cache = ReLU.forward(s)\n",
           "        s, relu_cache = ReLU.forward(a)\n"
           "        out, bn_cache = BatchNorm.forward(s, gamma, beta, bn_param)\n",
           expect=frozenset({"forward"}), may=frozenset({"x", "w", "b", "gamma", "beta"})),
    _torch("torch Conv_BatchNorm_ReLU: backward skips the ReLU's gradient",
           "conv_bn_relu", "Conv_BatchNorm_ReLU",
           "        ds = ReLU.backward(dout, relu_cache)\n        da, dgamma, dbeta = SpatialBatchNorm",
           "        ds = dout\n        da, dgamma, dbeta = SpatialBatchNorm",
           expect=frozenset({"x", "w", "gamma", "beta"}), may=frozenset({"b"})),
    _torch("torch Conv_BatchNorm_ReLU_Pool: batch norm given a copy of bn_param (running statistics lost)",
           "conv_bn_relu_pool", "Conv_BatchNorm_ReLU_Pool",
           "Conv_BatchNorm_ReLU.forward(x, w, b, gamma, beta, conv_param, bn_param)",
           "Conv_BatchNorm_ReLU.forward(x, w, b, gamma, beta, conv_param, dict(bn_param))",
           expect=frozenset({"forward"})),
]

_VARIANTS: list[Variant] = [
    Variant(name="torch MaxPool: backward over flattened output positions (divmod by the row length)",
            source=SOURCE, spec="max_pool", old=_POOL_LOOP, new=_flat_pool_loop("w_out"), kind="torch",
            functions=("MaxPool.forward", "MaxPool.backward")),
    Variant(name="torch SpatialBatchNorm: channels first, flattened as (C, N*H*W) and transposed",
            source=SOURCE, spec="spatial_batchnorm", old=_SPATIAL, kind="torch",
            new=_spatial("x.transpose(0, 1).reshape(c, -1).t()",
                         "out.t().reshape(c, n, h, w).transpose(0, 1)",
                         "dout.transpose(0, 1).reshape(c, -1).t()",
                         "dx.t().reshape(c, n, h, w).transpose(0, 1)"),
            functions=("SpatialBatchNorm.forward", "SpatialBatchNorm.backward")),
    Variant(name="torch Linear_BatchNorm_ReLU: backward through BatchNorm.backward_alt",
            source=SOURCE, spec="affine_bn_relu", kind="torch",
            old="da, dgamma, dbeta = BatchNorm.backward(ds, bn_cache)",
            new="da, dgamma, dbeta = BatchNorm.backward_alt(ds, bn_cache)",
            functions=("Linear_BatchNorm_ReLU.forward", "Linear_BatchNorm_ReLU.backward")),
    Variant(name="torch Conv_BatchNorm_ReLU_Pool: each layer called in turn, not through Conv_BatchNorm_ReLU",
            source=SOURCE, spec="conv_bn_relu_pool", kind="torch",
            old="        s, inner_cache = Conv_BatchNorm_ReLU.forward(x, w, b, gamma, beta, conv_param, "
                "bn_param)\n",
            new="        a, conv_cache = Conv.forward(x, w, b, conv_param)\n"
                "        an, bn_cache = SpatialBatchNorm.forward(a, gamma, beta, bn_param)\n"
                "        s, relu_cache = ReLU.forward(an)\n"
                "        inner_cache = (conv_cache, bn_cache, relu_cache)\n",
            functions=("Conv_BatchNorm_ReLU_Pool.forward", "Conv_BatchNorm_ReLU_Pool.backward")),
]

_HAVE_TORCH = importlib.util.find_spec("torch") is not None
MUTANTS: list[Mutant] = _MUTANTS + _SANDWICH_MUTANTS if _HAVE_TORCH else []
VARIANTS: list[Variant] = _VARIANTS if _HAVE_TORCH else []
