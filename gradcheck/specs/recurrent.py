"""Specs for sequence layers: RNN and LSTM (steps and sequences), word embedding, temporal
affine, temporal softmax loss and scaled dot-product attention.

Values keep tanh and sigmoid away from saturation by construction: inputs are standard
normal, hidden states are scaled by 0.5, weights by 0.4 and biases by 0.2, so that the
pre-activations stay of order one. Embedding indices come from a small pool of words, so
that repeated indices (which a fancy-indexed ``dW[x] += dout`` gets wrong) are common.
Masks always keep at least one entry per softmax row, again by construction.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

import reference_layers as ref
from gradcheck.specs._registry import Case, Spec, register
from gradcheck.strategies import batch_sizes, seeds

HIDDEN_SCALE = 0.5
WEIGHT_SCALE = 0.4
BIAS_SCALE = 0.2


def _normal(rng: np.random.Generator, shape: tuple[int, ...], scale: float, dtype: Any) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(dtype)


@st.composite
def _recurrent_cases(
    draw: st.DrawFn, dtype: Any, *, gates: int, sequence: bool, cell_input: bool
) -> Case:
    n = draw(batch_sizes(1, 3))
    t = draw(st.integers(1, 4)) if sequence else None
    d = draw(st.integers(1, 4))
    h = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(seeds()))
    x = _normal(rng, (n, d) if t is None else (n, t, d), 1.0, dtype)
    states = [_normal(rng, (n, h), HIDDEN_SCALE, dtype) for _ in range(2 if cell_input else 1)]
    wx = _normal(rng, (d, gates * h), WEIGHT_SCALE, dtype)
    wh = _normal(rng, (h, gates * h), WEIGHT_SCALE, dtype)
    b = _normal(rng, (gates * h,), BIAS_SCALE, dtype)
    geometry: dict[str, Any] = {"N": n} | ({"T": t} if t is not None else {}) | {"D": d, "H": h}
    geometry["dtype"] = np.dtype(dtype).name
    return Case((x, *states, wx, wh, b), geometry)


def rnn_step_cases(dtype: Any = np.float64, general: bool = True) -> st.SearchStrategy[Case]:
    return _recurrent_cases(dtype, gates=1, sequence=False, cell_input=False)


def rnn_cases(dtype: Any = np.float64, general: bool = True) -> st.SearchStrategy[Case]:
    return _recurrent_cases(dtype, gates=1, sequence=True, cell_input=False)


def lstm_step_cases(dtype: Any = np.float64, general: bool = True) -> st.SearchStrategy[Case]:
    return _recurrent_cases(dtype, gates=4, sequence=False, cell_input=True)


def lstm_cases(dtype: Any = np.float64, general: bool = True) -> st.SearchStrategy[Case]:
    return _recurrent_cases(dtype, gates=4, sequence=True, cell_input=False)


@st.composite
def word_embedding_cases(draw: st.DrawFn, dtype: Any = np.float64, general: bool = True) -> Case:
    n = draw(batch_sizes(1, 3))
    t = draw(st.integers(1, 4))
    vocab = draw(st.integers(1, 5))
    d = draw(st.integers(1, 4))
    used = draw(st.integers(1, vocab))
    rng = np.random.default_rng(draw(seeds()))
    # Indices drawn from a pool of `used` words: repeats are the rule, not the exception,
    # and the words outside the pool check that their rows of dW stay zero.
    pool = rng.permutation(vocab)[:used]
    x = rng.choice(pool, size=(n, t)).astype(np.int64)
    w = _normal(rng, (vocab, d), 1.0, dtype)
    geometry = {"x": x.shape, "W": w.shape, "distinct_indices": int(np.unique(x).size),
                "dtype": np.dtype(dtype).name}
    return Case((x, w), geometry)


@st.composite
def temporal_affine_cases(draw: st.DrawFn, dtype: Any = np.float64, general: bool = True) -> Case:
    n = draw(batch_sizes(1, 3))
    t = draw(st.integers(1, 4))
    d = draw(st.integers(1, 4))
    m = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(seeds()))
    x = _normal(rng, (n, t, d), 1.0, dtype)
    w = _normal(rng, (d, m), 1.0, dtype)
    b = _normal(rng, (m,), 1.0, dtype)
    return Case((x, w, b), {"x": x.shape, "w": w.shape, "b": b.shape, "dtype": np.dtype(dtype).name})


@st.composite
def temporal_softmax_cases(draw: st.DrawFn, dtype: Any = np.float64, general: bool = True) -> Case:
    n = draw(batch_sizes(1, 3))
    t = draw(st.integers(1, 4))
    v = draw(st.integers(2, 5))
    rng = np.random.default_rng(draw(seeds()))
    x = _normal(rng, (n, t, v), 2.0, dtype)
    y = rng.integers(0, v, size=(n, t))
    # At least one kept step and, when there are two or more, at least one masked one.
    order = rng.permutation(n * t)
    keep = rng.random(n * t) < 0.6
    keep[order[0]] = True
    if n * t > 1:
        keep[order[1]] = False
    mask = keep.reshape(n, t)
    geometry = {"x": x.shape, "kept_steps": int(mask.sum()), "dtype": np.dtype(dtype).name}
    return Case((x, y, mask), geometry)


def _attention_mask(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Random True/False with at least one True per row (the last axis), by construction."""
    mask = rng.random(shape) < 0.5
    kept = rng.integers(0, shape[-1], size=(*shape[:-1], 1))
    np.put_along_axis(mask, kept, True, axis=-1)
    return mask


@st.composite
def attention_cases(draw: st.DrawFn, dtype: Any = np.float64, general: bool = True) -> Case:
    n = draw(batch_sizes(1, 3))
    s = draw(st.integers(1, 4))
    t = draw(st.integers(1, 4))
    e = draw(st.integers(1, 4))
    ev = draw(st.integers(1, 4)) if general else e
    masking = draw(st.sampled_from(["none", "(S, T)", "(N, S, T)"] if general else ["none", "(S, T)"]))
    rng = np.random.default_rng(draw(seeds()))
    query = _normal(rng, (n, s, e), 1.0, dtype)
    key = _normal(rng, (n, t, e), 1.0, dtype)
    value = _normal(rng, (n, t, ev), 1.0, dtype)
    geometry: dict[str, Any] = {"query": query.shape, "key": key.shape, "value": value.shape,
                                "mask": masking, "dtype": np.dtype(dtype).name}
    if masking == "none":
        return Case((query, key, value), geometry)
    mask = _attention_mask(rng, (s, t) if masking == "(S, T)" else (n, s, t))
    return Case((query, key, value, mask), geometry)


register(Spec(
    name="rnn_step", family="recurrent", kind="layer",
    forward=ref.rnn_step_forward, backward=ref.rnn_step_backward, cases=rnn_step_cases,
    signature="rnn_step_forward(x, prev_h, Wx, Wh, b) -> (next_h, cache); "
              "rnn_step_backward(dnext_h, cache) -> (dx, dprev_h, dWx, dWh, db)",
    wrt=("x", "prev_h", "Wx", "Wh", "b"),
    names=(("rnn_step_forward", "rnn_step_backward"),),
    description="one tanh RNN step, x (N, D), prev_h (N, H), Wx (D, H), Wh (H, H), b (H,)",
))
register(Spec(
    name="rnn", family="recurrent", kind="layer",
    forward=ref.rnn_forward, backward=ref.rnn_backward, cases=rnn_cases,
    signature="rnn_forward(x, h0, Wx, Wh, b) -> (h, cache); "
              "rnn_backward(dh, cache) -> (dx, dh0, dWx, dWh, db)",
    wrt=("x", "h0", "Wx", "Wh", "b"),
    names=(("rnn_forward", "rnn_backward"),),
    description="tanh RNN over a sequence, x (N, T, D), h0 (N, H) -> h (N, T, H)",
))
register(Spec(
    name="lstm_step", family="recurrent", kind="layer",
    forward=ref.lstm_step_forward, backward=ref.lstm_step_backward, cases=lstm_step_cases,
    signature="lstm_step_forward(x, prev_h, prev_c, Wx, Wh, b) -> (next_h, next_c, cache); "
              "lstm_step_backward(dnext_h, dnext_c, cache) -> (dx, dprev_h, dprev_c, dWx, dWh, db)",
    wrt=("x", "prev_h", "prev_c", "Wx", "Wh", "b"),
    names=(("lstm_step_forward", "lstm_step_backward"),),
    description="one LSTM step, gates i, f, o, g stacked in Wx (D, 4H), Wh (H, 4H), b (4H,)",
))
register(Spec(
    name="lstm", family="recurrent", kind="layer",
    forward=ref.lstm_forward, backward=ref.lstm_backward, cases=lstm_cases,
    signature="lstm_forward(x, h0, Wx, Wh, b) -> (h, cache); "
              "lstm_backward(dh, cache) -> (dx, dh0, dWx, dWh, db)",
    wrt=("x", "h0", "Wx", "Wh", "b"),
    names=(("lstm_forward", "lstm_backward"),),
    description="LSTM over a sequence from h0 and a zero cell state, x (N, T, D) -> h (N, T, H)",
))
register(Spec(
    name="word_embedding", family="embedding", kind="layer",
    forward=ref.word_embedding_forward, backward=ref.word_embedding_backward,
    cases=word_embedding_cases,
    signature="word_embedding_forward(x, W) -> (out, cache); word_embedding_backward(dout, cache) -> dW",
    wrt=("W",),
    names=(("word_embedding_forward", "word_embedding_backward"),),
    description="rows of W (V, D) looked up by integer x (N, T); repeated words add up in dW",
))
register(Spec(
    name="temporal_affine", family="temporal", kind="layer",
    forward=ref.temporal_affine_forward, backward=ref.temporal_affine_backward,
    cases=temporal_affine_cases,
    signature="temporal_affine_forward(x, w, b) -> (out, cache); "
              "temporal_affine_backward(dout, cache) -> (dx, dw, db)",
    wrt=("x", "w", "b"),
    names=(("temporal_affine_forward", "temporal_affine_backward"),),
    description="affine map at every time step, x (N, T, D), w (D, M), b (M,) -> (N, T, M)",
))
register(Spec(
    name="temporal_softmax_loss", family="temporal", kind="loss",
    forward=ref.temporal_softmax_loss, backward=None, cases=temporal_softmax_cases,
    signature="temporal_softmax_loss(x, y, mask) -> (loss, dx)",
    wrt=("x",),
    names=(("temporal_softmax_loss", None),),
    description="masked softmax cross-entropy at every step of x (N, T, V), summed over T, over N",
))
register(Spec(
    name="attention", family="attention", kind="layer",
    forward=ref.attention_forward, backward=ref.attention_backward, cases=attention_cases,
    signature="attention_forward(query, key, value, mask=None) -> (out, cache); "
              "attention_backward(dout, cache) -> (dquery, dkey, dvalue)",
    wrt=("query", "key", "value"),
    names=(("attention_forward", "attention_backward"),),
    general=True,  # general=True adds Ev != E and per-sample (N, S, T) masks
    description="scaled dot-product attention, query (N, S, E), key (N, T, E), value (N, T, Ev); "
                "mask (S, T) or (N, S, T), True = attend",
))
