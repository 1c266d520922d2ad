"""Random cases inside the CS231n course's contract, one generator per layer family.

A generator takes ``(rng, i)`` (i = case index 0..5, used to cover strides, pads and modes
deterministically) and returns a :class:`Case`. Inputs are float64 and kept away from kinks:
ReLU inputs have |x| > 0.05, pooling windows hold distinct values at least 0.08 apart, SVM
margins are at least 0.05 away from 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

Rng = np.random.Generator


@dataclass
class Case:
    args: list[Any]
    diff: tuple[int, ...]  # argument positions of the differentiable inputs, in gradient order
    geometry: str
    mode: str | None = None  # 'train' / 'test' for batchnorm and dropout
    extra: dict[str, Any] = field(default_factory=dict)


def _shape(a: Any) -> str:
    return str(tuple(np.shape(a)))


def away(rng: Rng, shape: tuple[int, ...], gap: float = 0.06) -> np.ndarray:
    """Entries with |x| in [gap, 2], random sign."""
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(gap, 2.0, size=shape)


def affine(rng: Rng, i: int) -> Case:
    n = int(rng.integers(2, 5))
    dims = tuple(int(d) for d in rng.integers(1, 5, size=1 + i % 3))
    m = int(rng.integers(1, 6))
    x = rng.standard_normal((n, *dims))
    w = rng.standard_normal((int(np.prod(dims)), m))
    b = rng.standard_normal(m)
    return Case([x, w, b], (0, 1, 2), f"x={x.shape} w={w.shape}")


def elementwise(rng: Rng, i: int) -> Case:
    shape = tuple(int(d) for d in rng.integers(1, 6, size=2 + i % 2))
    shape = (int(rng.integers(2, 5)), *shape[1:])
    return Case([rng.standard_normal(shape) * 1.5], (0,), f"x={shape}")


def kinked(rng: Rng, i: int) -> Case:
    shape = (int(rng.integers(2, 5)), *(int(d) for d in rng.integers(1, 6, size=1 + i % 2)))
    return Case([away(rng, shape)], (0,), f"x={shape}")


def softmax_loss(rng: Rng, i: int) -> Case:
    n, c = int(rng.integers(2, 5)), int(rng.integers(2, 6))
    x = rng.standard_normal((n, c))
    y = rng.integers(0, c, size=n)
    return Case([x, y], (0,), f"x={x.shape}")


def svm_loss(rng: Rng, i: int) -> Case:
    n, c = int(rng.integers(2, 5)), int(rng.integers(2, 6))
    x = rng.standard_normal((n, c))
    y = rng.integers(0, c, size=n)
    rows = np.arange(n)
    for _ in range(100):
        margins = x - x[rows, y][:, None] + 1.0
        bad = np.abs(margins) <= 0.05
        bad[rows, y] = False
        if not bad.any():
            break
        x[bad] += rng.choice([-0.2, 0.2], size=int(bad.sum()))
    return Case([x, y], (0,), f"x={x.shape}")


def _conv_dims(rng: Rng, k: int, stride: int, pad: int) -> int:
    """An input size with (size + 2 pad - k) % stride == 0 and size >= 1."""
    least = max(1, 1 + -(-(1 - k + 2 * pad) // stride))
    out = least + int(rng.integers(0, 3))
    return (out - 1) * stride + k - 2 * pad


def conv(rng: Rng, i: int) -> Case:
    stride, pad = (1, 2)[i % 2], (0, 1, 2)[i % 3]
    n, c, f = int(rng.integers(2, 4)), int(rng.integers(1, 4)), int(rng.integers(1, 4))
    hh, ww = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    h, w_ = _conv_dims(rng, hh, stride, pad), _conv_dims(rng, ww, stride, pad)
    x = rng.standard_normal((n, c, h, w_))
    w = rng.standard_normal((f, c, hh, ww))
    b = rng.standard_normal(f)
    param = {"stride": stride, "pad": pad}
    tags = {"pad=0"} if pad == 0 else set()
    return Case([x, w, b, param], (0, 1, 2), f"x={x.shape} w={w.shape} stride={stride} pad={pad}",
                extra={"tags": tags})


def max_pool(rng: Rng, i: int) -> Case:
    stride = (1, 2)[i % 2]
    ph, pw = (2, 2) if i < 2 else (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    n, c = int(rng.integers(2, 4)), int(rng.integers(1, 4))
    h = (int(rng.integers(1, 4)) - 1) * stride + ph
    w = (int(rng.integers(1, 4)) - 1) * stride + pw
    size = n * c * h * w
    x = (rng.permutation(size) * 0.1 + rng.uniform(0.0, 0.02, size)).reshape(n, c, h, w)
    x -= x.mean()
    param = {"pool_height": ph, "pool_width": pw, "stride": stride}
    tags = {"overlapping windows"} if stride < max(ph, pw) else set()
    tags |= {"non-square pool"} if ph != pw else set()
    return Case([x, param], (0,), f"x={x.shape} pool={ph}x{pw} stride={stride}", extra={"tags": tags})


def _bn_case(rng: Rng, i: int, x: np.ndarray, features: int) -> Case:
    """Train cases 1 and 3 and both test cases first run a train-mode warm-up batch, as the
    notebooks do, so the running statistics are the student's own (any shape it keeps them in)."""
    mode = "train" if i < 4 else "test"
    param: dict[str, Any] = {"mode": mode}
    if i % 2 == 1:  # explicit eps and momentum; case 1 and 5 with a non-default eps, case 3 momentum
        param["eps"] = 1e-3 if i in (1, 5) else 1e-5
        param["momentum"] = 0.8 if i == 3 else 0.9
    gamma, beta = rng.standard_normal(features), rng.standard_normal(features)
    tags = {"test mode"} if mode == "test" else set()
    tags |= {"eps=1e-3"} if param.get("eps") == 1e-3 else set()
    tags |= {"momentum=0.8"} if param.get("momentum") == 0.8 else set()
    extra: dict[str, Any] = {"tags": tags}
    if i % 2 == 1 or mode == "test":
        extra["warmup"] = x * rng.uniform(0.5, 1.5) + rng.standard_normal(x.shape)
    return Case([x, gamma, beta, param], (0, 1, 2), f"x={x.shape} mode={mode}", mode=mode, extra=extra)


def batchnorm(rng: Rng, i: int) -> Case:
    n, d = int(rng.integers(3, 6)), int(rng.integers(1, 6))
    x = rng.standard_normal((n, d)) * rng.uniform(0.5, 3.0, d) + rng.standard_normal(d)
    return _bn_case(rng, i, x, d)


def spatial_batchnorm(rng: Rng, i: int) -> Case:
    while True:
        n, c, h, w = (int(v) for v in (rng.integers(2, 4), rng.integers(1, 5), rng.integers(1, 4),
                                       rng.integers(1, 4)))
        if n * h * w >= 3:
            break
    x = rng.standard_normal((n, c, h, w)) * rng.uniform(0.5, 3.0, (1, c, 1, 1))
    return _bn_case(rng, i, x, c)


def _norm_param(i: int) -> tuple[dict[str, Any], set[str]]:
    """eps 1e-5 given, eps left to the default (case 4), eps 1e-3 (case 5: must be used)."""
    if i == 4:
        return {}, set()
    return ({"eps": 1e-3}, {"eps=1e-3"}) if i == 5 else ({"eps": 1e-5}, set())


def layernorm(rng: Rng, i: int) -> Case:
    n, d = int(rng.integers(2, 5)), int(rng.integers(2, 6))
    x = rng.standard_normal((n, d)) * rng.uniform(0.5, 3.0, (n, 1)) + rng.standard_normal((n, 1))
    gamma, beta = rng.standard_normal(d), rng.standard_normal(d)
    param, tags = _norm_param(i)
    return Case([x, gamma, beta, param], (0, 1, 2), f"x={x.shape} {param}", extra={"tags": tags})


def groupnorm(rng: Rng, i: int, gamma_shape: str = "1C11") -> Case:
    while True:
        g, k = int(rng.integers(1, 4)), int(rng.integers(1, 3))
        n, h, w = int(rng.integers(2, 4)), int(rng.integers(1, 4)), int(rng.integers(1, 4))
        if k * h * w >= 2:
            break
    c = g * k
    x = rng.standard_normal((n, c, h, w)) * 2.0 + 0.5
    pshape = (c,) if gamma_shape == "C" else (1, c, 1, 1)
    gamma, beta = rng.standard_normal(pshape), rng.standard_normal(pshape)
    param, tags = _norm_param(i)
    return Case([x, gamma, beta, g, param], (0, 1, 2), f"x={x.shape} G={g} gamma={pshape} {param}",
                extra={"tags": tags})


def dropout(rng: Rng, i: int) -> Case:
    mode = "train" if i < 4 else "test"
    p = (0.3, 0.6, 0.75, 0.6, 0.6, 0.3)[i]
    x = away(rng, (40, 50))
    param = {"p": p, "mode": mode, "seed": 100 + i}
    return Case([x, param], (0,), f"x={x.shape} p={p} mode={mode}", mode=mode)


def _rnn_sizes(rng: Rng, i: int = 0) -> tuple[int, int, int, int]:
    """(N, T, D, H); T = 1 in case 5 only (a sequence of one step is in the contract)."""
    n, t, d, h = (int(rng.integers(lo, hi)) for lo, hi in ((2, 5), (2, 5), (1, 6), (1, 6)))
    return n, (1 if i == 5 else t), d, h


def _t1(t: int) -> set[str]:
    return {"T=1"} if t == 1 else set()


def rnn_step(rng: Rng, i: int) -> Case:
    n, _, d, h = _rnn_sizes(rng)
    args = [rng.standard_normal((n, d)), rng.standard_normal((n, h)),
            rng.standard_normal((d, h)) * 0.5, rng.standard_normal((h, h)) * 0.5,
            rng.standard_normal(h) * 0.5]
    return Case(args, (0, 1, 2, 3, 4), f"N={n} D={d} H={h}")


def rnn(rng: Rng, i: int) -> Case:
    n, t, d, h = _rnn_sizes(rng, i)
    args = [rng.standard_normal((n, t, d)), rng.standard_normal((n, h)),
            rng.standard_normal((d, h)) * 0.5, rng.standard_normal((h, h)) * 0.5,
            rng.standard_normal(h) * 0.5]
    return Case(args, (0, 1, 2, 3, 4), f"N={n} T={t} D={d} H={h}", extra={"tags": _t1(t)})


def lstm_step(rng: Rng, i: int) -> Case:
    n, _, d, h = _rnn_sizes(rng)
    args = [rng.standard_normal((n, d)), rng.standard_normal((n, h)), rng.standard_normal((n, h)),
            rng.standard_normal((d, 4 * h)) * 0.5, rng.standard_normal((h, 4 * h)) * 0.5,
            rng.standard_normal(4 * h) * 0.5]
    return Case(args, (0, 1, 2, 3, 4, 5), f"N={n} D={d} H={h}")


def lstm(rng: Rng, i: int) -> Case:
    n, t, d, h = _rnn_sizes(rng, i)
    args = [rng.standard_normal((n, t, d)), rng.standard_normal((n, h)),
            rng.standard_normal((d, 4 * h)) * 0.5, rng.standard_normal((h, 4 * h)) * 0.5,
            rng.standard_normal(4 * h) * 0.5]
    return Case(args, (0, 1, 2, 3, 4), f"N={n} T={t} D={d} H={h}", extra={"tags": _t1(t)})


def word_embedding(rng: Rng, i: int) -> Case:
    n, t, v, d = (int(rng.integers(lo, hi)) for lo, hi in ((2, 5), (2, 5), (2, 6), (1, 5)))
    x = rng.integers(0, v, size=(n, t))
    if len(np.unique(x)) == x.size:
        x[0, 1] = x[0, 0]
    W = rng.standard_normal((v, d))
    return Case([x, W], (1,), f"x={x.shape} W={W.shape}")


def temporal_affine(rng: Rng, i: int) -> Case:
    n, t, d, m = (int(rng.integers(lo, hi)) for lo, hi in ((2, 5), (2, 5), (1, 6), (1, 6)))
    t = 1 if i == 5 else t
    args = [rng.standard_normal((n, t, d)), rng.standard_normal((d, m)), rng.standard_normal(m)]
    return Case(args, (0, 1, 2), f"x={(n, t, d)} w={(d, m)}")


def temporal_softmax_loss(rng: Rng, i: int) -> Case:
    n, t, v = (int(a) for a in (rng.integers(2, 5), rng.integers(2, 5), rng.integers(2, 6)))
    t = 1 if i == 5 else t
    x = rng.standard_normal((n, t, v))
    y = rng.integers(0, v, size=(n, t))
    mask = rng.random((n, t)) < 0.7
    mask[0, 0] = True
    return Case([x, y, mask], (0,), f"x={x.shape} kept={int(mask.sum())}")
