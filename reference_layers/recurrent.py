"""Vanilla (tanh) RNN and LSTM: single steps and whole sequences, CS231n signatures.

Shapes: N samples, T time steps, D input features, H hidden units. The LSTM stacks its
four gates along the last axis of ``Wx`` (D, 4H), ``Wh`` (H, 4H) and ``b`` (4H,) in the
order i, f, o, g (input, forget, output: sigmoid; candidate g: tanh), as in CS231n.
Note that ``torch.nn.LSTM`` orders its blocks i, f, g, o.

The loops run over time only (the recursion is inherently sequential); everything within
a step is vectorised. Forwards are complex-step safe: the stable sigmoid branches on the
real part of its argument only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from reference_layers._validate import require_ndim

__all__ = [
    "lstm_backward",
    "lstm_forward",
    "lstm_step_backward",
    "lstm_step_forward",
    "rnn_backward",
    "rnn_forward",
    "rnn_step_backward",
    "rnn_step_forward",
]

RnnStepCache = tuple[np.ndarray, ...]
LstmStepCache = tuple[np.ndarray, ...]


def _sigmoid(a: np.ndarray) -> np.ndarray:
    """``1 / (1 + exp(-a))`` without overflow: ``exp`` only ever sees ``-|Re a|``.

    The branch is chosen on the real part, and the sign flip is a real constant, so a
    complex perturbation of ``a`` flows through unchanged (complex-step safe).
    """
    positive = np.real(a) >= 0
    z = np.exp(np.where(positive, -a, a))
    return np.where(positive, 1 / (1 + z), z / (1 + z))


def _check_shapes(
    layer: str,
    x: np.ndarray,
    h: np.ndarray,
    Wx: np.ndarray,
    Wh: np.ndarray,
    b: np.ndarray,
    *,
    gates: int,
    sequence: bool,
    h_name: str,
) -> None:
    """Validate x, the hidden state and the weights; messages name N, T, D and H."""
    gh = f"{gates}H" if gates > 1 else "H"
    require_ndim("x", x, 3 if sequence else 2, "N, T, D" if sequence else "N, D")
    require_ndim(h_name, h, 2, "N, H")
    require_ndim("Wx", Wx, 2, f"D, {gh}")
    require_ndim("Wh", Wh, 2, f"H, {gh}")
    require_ndim("b", b, 1, gh)
    n, d = x.shape[0], x.shape[-1]
    hn, hidden = h.shape
    if hn != n:
        raise ValueError(
            f"{layer} shapes do not fit: x {x.shape} has N={n} samples but {h_name} {h.shape} "
            f"has {hn} rows (needs shape (N, H) with N={n})"
        )
    if Wx.shape[0] != d:
        raise ValueError(
            f"{layer} shapes do not fit: x {x.shape} has D={d} features but Wx {Wx.shape} has "
            f"{Wx.shape[0]} rows (needs shape (D, {gh}) = ({d}, {gates * hidden}))"
        )
    context = f"x {x.shape} has D={d} and {h_name} {h.shape} has H={hidden}"
    expected = (
        ("Wx", Wx, f"(D, {gh})", (d, gates * hidden)),
        ("Wh", Wh, f"(H, {gh})", (hidden, gates * hidden)),
        ("b", b, f"({gh},)", (gates * hidden,)),
    )
    for name, arr, formula, shape in expected:
        if arr.shape != shape:
            raise ValueError(
                f"{layer} shapes do not fit: {context}, so {name} must have shape "
                f"{formula} = {shape}; got {arr.shape}"
            )


# -- vanilla RNN ------------------------------------------------------------------------


def _rnn_step_grads(dnext_h: np.ndarray, cache: RnnStepCache) -> tuple[np.ndarray, ...]:
    x, prev_h, Wx, Wh, _, next_h = cache
    da = dnext_h * (1 - next_h * next_h)
    return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def rnn_step_forward(
    x: np.ndarray, prev_h: np.ndarray, Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, RnnStepCache]:
    """One step of a tanh RNN: ``next_h = tanh(x @ Wx + prev_h @ Wh + b)``.

    Parameters
    ----------
    x : (N, D) inputs at this step.
    prev_h : (N, H) hidden state of the previous step.
    Wx : (D, H) input-to-hidden weights.
    Wh : (H, H) hidden-to-hidden weights.
    b : (H,) biases.

    Returns
    -------
    next_h : (N, H)
    cache : what :func:`rnn_step_backward` needs.
    """
    _check_shapes("rnn_step", x, prev_h, Wx, Wh, b, gates=1, sequence=False, h_name="prev_h")
    next_h = np.tanh(x @ Wx + prev_h @ Wh + b)
    return next_h, (x, prev_h, Wx, Wh, b, next_h)


def rnn_step_backward(dnext_h: np.ndarray, cache: RnnStepCache) -> tuple[np.ndarray, ...]:
    """Gradients ``(dx, dprev_h, dWx, dWh, db)`` of ``sum(dnext_h * next_h)``.

    ``dnext_h`` has shape (N, H); each gradient has its input's shape and dtype.
    """
    grads = _rnn_step_grads(dnext_h, cache)
    x, prev_h, Wx, Wh, b, _ = cache
    dtypes = (x.dtype, prev_h.dtype, Wx.dtype, Wh.dtype, b.dtype)
    return tuple(g.astype(dt, copy=False) for g, dt in zip(grads, dtypes))


def rnn_forward(
    x: np.ndarray, h0: np.ndarray, Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, tuple[Any, ...]]:
    """A tanh RNN over a whole sequence.

    Parameters
    ----------
    x : (N, T, D) inputs.
    h0 : (N, H) initial hidden state.
    Wx : (D, H), Wh : (H, H), b : (H,) as in :func:`rnn_step_forward`.

    Returns
    -------
    h : (N, T, H) hidden states of every step (h0 excluded).
    cache : what :func:`rnn_backward` needs.
    """
    _check_shapes("rnn", x, h0, Wx, Wh, b, gates=1, sequence=True, h_name="h0")
    n, t_steps, _ = x.shape
    h = np.zeros((n, t_steps, h0.shape[1]), dtype=np.result_type(x, h0, Wx, Wh, b))
    prev_h = h0
    for t in range(t_steps):
        prev_h = np.tanh(x[:, t] @ Wx + prev_h @ Wh + b)
        h[:, t] = prev_h
    return h, (x, h0, Wx, Wh, b, h)


def rnn_backward(dh: np.ndarray, cache: tuple[Any, ...]) -> tuple[np.ndarray, ...]:
    """Gradients ``(dx, dh0, dWx, dWh, db)`` of ``sum(dh * h)``.

    ``dh`` (N, T, H) is the upstream gradient on every hidden state. Walking back in
    time, the gradient reaching ``h[:, t]`` is ``dh[:, t]`` plus what step ``t + 1``
    sends back through ``Wh`` (the recurrent carry).
    """
    x, h0, Wx, Wh, b, h = cache
    dx = np.zeros(x.shape, dtype=dh.dtype)
    dWx = np.zeros(Wx.shape, dtype=dh.dtype)
    dWh = np.zeros(Wh.shape, dtype=dh.dtype)
    db = np.zeros(b.shape, dtype=dh.dtype)
    dprev_h = np.zeros(h0.shape, dtype=dh.dtype)
    for t in reversed(range(x.shape[1])):
        prev_h = h[:, t - 1] if t > 0 else h0
        dx_t, dprev_h, dWx_t, dWh_t, db_t = _rnn_step_grads(
            dh[:, t] + dprev_h, (x[:, t], prev_h, Wx, Wh, b, h[:, t])
        )
        dx[:, t] = dx_t
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    grads = (dx, dprev_h, dWx, dWh, db)
    dtypes = (x.dtype, h0.dtype, Wx.dtype, Wh.dtype, b.dtype)
    return tuple(g.astype(dt, copy=False) for g, dt in zip(grads, dtypes))


# -- LSTM -------------------------------------------------------------------------------


def _lstm_step(
    x: np.ndarray, prev_h: np.ndarray, prev_c: np.ndarray, Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray, LstmStepCache]:
    hidden = prev_h.shape[1]
    a = x @ Wx + prev_h @ Wh + b
    i = _sigmoid(a[:, :hidden])
    f = _sigmoid(a[:, hidden:2 * hidden])
    o = _sigmoid(a[:, 2 * hidden:3 * hidden])
    g = np.tanh(a[:, 3 * hidden:])
    next_c = f * prev_c + i * g
    tanh_c = np.tanh(next_c)
    next_h = o * tanh_c
    return next_h, next_c, (x, prev_h, prev_c, Wx, Wh, b, i, f, o, g, tanh_c)


def _lstm_step_grads(
    dnext_h: np.ndarray, dnext_c: np.ndarray, cache: LstmStepCache
) -> tuple[np.ndarray, ...]:
    x, prev_h, prev_c, Wx, Wh, _, i, f, o, g, tanh_c = cache
    dc = dnext_c + dnext_h * o * (1 - tanh_c * tanh_c)
    da = np.concatenate(
        [
            dc * g * i * (1 - i),
            dc * prev_c * f * (1 - f),
            dnext_h * tanh_c * o * (1 - o),
            dc * i * (1 - g * g),
        ],
        axis=1,
    )
    return da @ Wx.T, da @ Wh.T, dc * f, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def lstm_step_forward(
    x: np.ndarray, prev_h: np.ndarray, prev_c: np.ndarray, Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, np.ndarray, LstmStepCache]:
    """One LSTM step.

    ``a = x @ Wx + prev_h @ Wh + b`` is split into four (N, H) blocks i, f, o, g;
    ``next_c = sigmoid(f) * prev_c + sigmoid(i) * tanh(g)`` and
    ``next_h = sigmoid(o) * tanh(next_c)``.

    Parameters
    ----------
    x : (N, D) inputs at this step.
    prev_h, prev_c : (N, H) previous hidden and cell states.
    Wx : (D, 4H), Wh : (H, 4H), b : (4H,) gate weights and biases, blocks i, f, o, g.

    Returns
    -------
    next_h, next_c : (N, H)
    cache : what :func:`lstm_step_backward` needs.
    """
    _check_shapes("lstm_step", x, prev_h, Wx, Wh, b, gates=4, sequence=False, h_name="prev_h")
    if np.shape(prev_c) != prev_h.shape:
        raise ValueError(
            f"lstm_step shapes do not fit: prev_c must have the shape (N, H) = {prev_h.shape} "
            f"of prev_h; got {np.shape(prev_c)}"
        )
    return _lstm_step(x, prev_h, prev_c, Wx, Wh, b)


def lstm_step_backward(
    dnext_h: np.ndarray, dnext_c: np.ndarray, cache: LstmStepCache
) -> tuple[np.ndarray, ...]:
    """Gradients ``(dx, dprev_h, dprev_c, dWx, dWh, db)`` of
    ``sum(dnext_h * next_h) + sum(dnext_c * next_c)``; ``dnext_h``, ``dnext_c`` are (N, H).
    """
    grads = _lstm_step_grads(dnext_h, dnext_c, cache)
    x, prev_h, prev_c, Wx, Wh, b = cache[:6]
    dtypes = (x.dtype, prev_h.dtype, prev_c.dtype, Wx.dtype, Wh.dtype, b.dtype)
    return tuple(g.astype(dt, copy=False) for g, dt in zip(grads, dtypes))


def lstm_forward(
    x: np.ndarray, h0: np.ndarray, Wx: np.ndarray, Wh: np.ndarray, b: np.ndarray
) -> tuple[np.ndarray, tuple[Any, ...]]:
    """An LSTM over a whole sequence, starting from ``h0`` and a zero cell state.

    Parameters
    ----------
    x : (N, T, D) inputs.
    h0 : (N, H) initial hidden state (the initial cell state is 0).
    Wx : (D, 4H), Wh : (H, 4H), b : (4H,) as in :func:`lstm_step_forward`.

    Returns
    -------
    h : (N, T, H) hidden states of every step.
    cache : what :func:`lstm_backward` needs.
    """
    _check_shapes("lstm", x, h0, Wx, Wh, b, gates=4, sequence=True, h_name="h0")
    n, t_steps, _ = x.shape
    h = np.zeros((n, t_steps, h0.shape[1]), dtype=np.result_type(x, h0, Wx, Wh, b))
    prev_h, prev_c = h0, np.zeros_like(h0)
    steps = []
    for t in range(t_steps):
        prev_h, prev_c, step_cache = _lstm_step(x[:, t], prev_h, prev_c, Wx, Wh, b)
        h[:, t] = prev_h
        steps.append(step_cache)
    return h, (x, h0, Wx, Wh, b, steps)


def lstm_backward(dh: np.ndarray, cache: tuple[Any, ...]) -> tuple[np.ndarray, ...]:
    """Gradients ``(dx, dh0, dWx, dWh, db)`` of ``sum(dh * h)``, ``dh`` of shape (N, T, H).

    Both carries flow back in time: the hidden state's through ``Wh`` and the cell
    state's through the forget gate.
    """
    x, h0, Wx, Wh, b, steps = cache
    dx = np.zeros(x.shape, dtype=dh.dtype)
    dWx = np.zeros(Wx.shape, dtype=dh.dtype)
    dWh = np.zeros(Wh.shape, dtype=dh.dtype)
    db = np.zeros(b.shape, dtype=dh.dtype)
    dprev_h = np.zeros(h0.shape, dtype=dh.dtype)
    dprev_c = np.zeros(h0.shape, dtype=dh.dtype)
    for t in reversed(range(x.shape[1])):
        dx_t, dprev_h, dprev_c, dWx_t, dWh_t, db_t = _lstm_step_grads(
            dh[:, t] + dprev_h, dprev_c, steps[t]
        )
        dx[:, t] = dx_t
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    grads = (dx, dprev_h, dWx, dWh, db)
    dtypes = (x.dtype, h0.dtype, Wx.dtype, Wh.dtype, b.dtype)
    return tuple(g.astype(dt, copy=False) for g, dt in zip(grads, dtypes))
