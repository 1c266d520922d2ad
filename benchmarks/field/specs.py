"""The layers the labeller knows: student function names, case generator, torch oracle, gradients."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmarks.field import cases
from benchmarks.field import torch_oracles as T


@dataclass(frozen=True)
class Spec:
    name: str
    forward: str
    backward: str | None  # None: a loss returning (loss, dx)
    make: Callable[..., cases.Case]
    oracle: Callable[..., tuple[Any, ...]]
    grads: tuple[str, ...]  # names of the backward's return values, in order
    n_out: int = 1  # forward outputs before the cache
    kind: str = "layer"  # layer | loss | dropout
    running_stats: bool = False


SPECS: tuple[Spec, ...] = (
    Spec("affine", "affine_forward", "affine_backward", cases.affine, T.affine, ("dx", "dw", "db")),
    Spec("relu", "relu_forward", "relu_backward", cases.kinked, T.relu, ("dx",)),
    Spec("leaky_relu", "leaky_relu_forward", "leaky_relu_backward", cases.kinked, T.leaky_relu, ("dx",)),
    Spec("sigmoid", "sigmoid_forward", "sigmoid_backward", cases.elementwise, T.sigmoid, ("dx",)),
    Spec("tanh", "tanh_forward", "tanh_backward", cases.elementwise, T.tanh, ("dx",)),
    Spec("softmax_loss", "softmax_loss", None, cases.softmax_loss, T.softmax_loss, ("dx",), kind="loss"),
    Spec("svm_loss", "svm_loss", None, cases.svm_loss, T.svm_loss, ("dx",), kind="loss"),
    Spec("conv", "conv_forward_naive", "conv_backward_naive", cases.conv, T.conv, ("dx", "dw", "db")),
    Spec("max_pool", "max_pool_forward_naive", "max_pool_backward_naive", cases.max_pool, T.max_pool,
         ("dx",)),
    Spec("batchnorm", "batchnorm_forward", "batchnorm_backward", cases.batchnorm, T.batchnorm,
         ("dx", "dgamma", "dbeta"), running_stats=True),
    Spec("batchnorm_alt", "batchnorm_forward", "batchnorm_backward_alt", cases.batchnorm, T.batchnorm,
         ("dx", "dgamma", "dbeta"), running_stats=True),
    Spec("spatial_batchnorm", "spatial_batchnorm_forward", "spatial_batchnorm_backward",
         cases.spatial_batchnorm, T.batchnorm, ("dx", "dgamma", "dbeta"), running_stats=True),
    Spec("layernorm", "layernorm_forward", "layernorm_backward", cases.layernorm, T.layernorm,
         ("dx", "dgamma", "dbeta")),
    Spec("spatial_groupnorm", "spatial_groupnorm_forward", "spatial_groupnorm_backward", cases.groupnorm,
         T.groupnorm, ("dx", "dgamma", "dbeta")),
    Spec("dropout", "dropout_forward", "dropout_backward", cases.dropout, T.relu, ("dx",), kind="dropout"),
    Spec("rnn_step", "rnn_step_forward", "rnn_step_backward", cases.rnn_step, T.rnn_step,
         ("dx", "dprev_h", "dWx", "dWh", "db")),
    Spec("rnn", "rnn_forward", "rnn_backward", cases.rnn, T.rnn, ("dx", "dh0", "dWx", "dWh", "db")),
    Spec("lstm_step", "lstm_step_forward", "lstm_step_backward", cases.lstm_step, T.lstm_step,
         ("dx", "dprev_h", "dprev_c", "dWx", "dWh", "db"), n_out=2),
    Spec("lstm", "lstm_forward", "lstm_backward", cases.lstm, T.lstm, ("dx", "dh0", "dWx", "dWh", "db")),
    Spec("word_embedding", "word_embedding_forward", "word_embedding_backward", cases.word_embedding,
         T.word_embedding, ("dW",)),
    Spec("temporal_affine", "temporal_affine_forward", "temporal_affine_backward", cases.temporal_affine,
         T.temporal_affine, ("dx", "dw", "db")),
    Spec("temporal_softmax_loss", "temporal_softmax_loss", None, cases.temporal_softmax_loss,
         T.temporal_softmax_loss, ("dx",), kind="loss"),
)

BY_NAME = {spec.name: spec for spec in SPECS}
