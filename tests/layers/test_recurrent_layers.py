"""Vanilla RNN and LSTM (single steps and sequences): gradients, forward oracles, torch,
invalid shapes, and realistic backward bugs the checker must catch."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import reference_layers as ref
from gradcheck import check_layer
from gradcheck.specs import get_spec, layer_cases
from gradcheck.suite import check_case, check_spec

SPECS = ["rnn_step", "rnn", "lstm_step", "lstm"]


def _args(rng, n, d, h, *, t=None, gates=1, cell=False, dtype=np.float64):
    """x, the state(s) and the weights, scaled like the spec's cases (no saturation)."""
    x = rng.standard_normal((n, d) if t is None else (n, t, d))
    states = [0.5 * rng.standard_normal((n, h)) for _ in range(2 if cell else 1)]
    weights = [0.4 * rng.standard_normal((d, gates * h)), 0.4 * rng.standard_normal((h, gates * h)),
               0.2 * rng.standard_normal(gates * h)]
    return tuple(a.astype(dtype) for a in (x, *states, *weights))


# -- gradients over generated cases -------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("name", SPECS)
@given(data=st.data())
def test_gradients_match_numeric(name, dtype, data):
    spec = get_spec(name)
    case = data.draw(layer_cases(name, dtype=dtype), label="case")
    report = check_case(spec, case)
    assert report.passed, f"{case.describe()}\n{report}"
    assert report.method == "complex", report.method_note
    assert list(report.gradients) == list(spec.wrt)


FLOAT32_ARGS = {
    "rnn_step": {},
    "rnn": {"t": 3},
    "lstm_step": {"gates": 4, "cell": True},
    "lstm": {"t": 3, "gates": 4},
}


@pytest.mark.parametrize("name", SPECS)
def test_float32_in_float32_out(name):
    spec = get_spec(name)
    args = _args(np.random.default_rng(0), 2, 3, 2, dtype=np.float32, **FLOAT32_ARGS[name])
    *outputs, cache = spec.forward(*args)
    assert all(out.dtype == np.float32 for out in outputs)
    grads = spec.backward(*[np.ones_like(out) for out in outputs], cache)
    assert [g.dtype for g in grads] == [np.dtype(np.float32)] * len(spec.wrt)
    assert [g.shape for g in grads] == [a.shape for a in args]


# -- forward against independent loop oracles ----------------------------------------------


def _sigmoid(a):
    return 1.0 / (1.0 + math.exp(-a))


def rnn_step_oracle(x, prev_h, Wx, Wh, b):
    n, d = x.shape
    h = prev_h.shape[1]
    out = np.empty((n, h))
    for i in range(n):
        for j in range(h):
            a = b[j] + sum(x[i, k] * Wx[k, j] for k in range(d)) + sum(prev_h[i, k] * Wh[k, j] for k in range(h))
            out[i, j] = math.tanh(a)
    return out


def lstm_step_oracle(x, prev_h, prev_c, Wx, Wh, b):
    n, d = x.shape
    h = prev_h.shape[1]
    next_h, next_c = np.empty((n, h)), np.empty((n, h))
    for i in range(n):
        for j in range(h):
            def pre(gate, i=i, j=j):
                col = gate * h + j
                return (b[col] + sum(x[i, k] * Wx[k, col] for k in range(d))
                        + sum(prev_h[i, k] * Wh[k, col] for k in range(h)))
            in_gate, forget, out_gate, cand = _sigmoid(pre(0)), _sigmoid(pre(1)), _sigmoid(pre(2)), math.tanh(pre(3))
            next_c[i, j] = forget * prev_c[i, j] + in_gate * cand
            next_h[i, j] = out_gate * math.tanh(next_c[i, j])
    return next_h, next_c


@given(case=layer_cases("rnn_step"))
def test_rnn_step_forward_matches_loops(case):
    next_h, _ = ref.rnn_step_forward(*case.args)
    np.testing.assert_allclose(next_h, rnn_step_oracle(*case.args), rtol=1e-12, atol=1e-14)


@given(case=layer_cases("rnn"))
def test_rnn_forward_is_the_step_looped_over_time(case):
    x, h0, Wx, Wh, b = case.args
    h, _ = ref.rnn_forward(*case.args)
    prev = h0
    for t in range(x.shape[1]):
        prev = rnn_step_oracle(x[:, t], prev, Wx, Wh, b)
        np.testing.assert_allclose(h[:, t], prev, rtol=1e-12, atol=1e-14)


@given(case=layer_cases("lstm_step"))
def test_lstm_step_forward_matches_loops(case):
    next_h, next_c, _ = ref.lstm_step_forward(*case.args)
    oracle_h, oracle_c = lstm_step_oracle(*case.args)
    np.testing.assert_allclose(next_h, oracle_h, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(next_c, oracle_c, rtol=1e-12, atol=1e-14)


@given(case=layer_cases("lstm"))
def test_lstm_forward_is_the_step_looped_over_time_from_zero_cell(case):
    x, h0, Wx, Wh, b = case.args
    h, _ = ref.lstm_forward(*case.args)
    prev_h, prev_c = h0, np.zeros_like(h0)
    for t in range(x.shape[1]):
        prev_h, prev_c = lstm_step_oracle(x[:, t], prev_h, prev_c, Wx, Wh, b)
        np.testing.assert_allclose(h[:, t], prev_h, rtol=1e-12, atol=1e-14)


@given(case=layer_cases("rnn"), seed=st.integers(0, 2**16))
def test_rnn_backward_is_backprop_through_time_of_the_step(case, seed):
    x, h0, Wx, Wh, b = case.args
    h, cache = ref.rnn_forward(*case.args)
    dh = np.random.default_rng(seed).standard_normal(h.shape)
    dx, dh0, dWx, dWh, db = ref.rnn_backward(dh, cache)
    carry, total = np.zeros_like(h0), [np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)]
    for t in reversed(range(x.shape[1])):
        step_cache = ref.rnn_step_forward(x[:, t], h0 if t == 0 else h[:, t - 1], Wx, Wh, b)[1]
        dx_t, carry, *dparams = ref.rnn_step_backward(dh[:, t] + carry, step_cache)
        np.testing.assert_allclose(dx[:, t], dx_t, rtol=1e-12, atol=1e-14)
        total = [s + g for s, g in zip(total, dparams)]
    for analytic, oracle in zip((dh0, dWx, dWh, db), (carry, *total)):
        np.testing.assert_allclose(analytic, oracle, rtol=1e-12, atol=1e-14)


# -- explicit geometries: T = 1, N = 1, H = 1 ----------------------------------------------


GEOMETRIES = [  # (N, T, D, H)
    (1, 1, 1, 1),
    (1, 4, 3, 2),
    (3, 1, 2, 4),
    (2, 3, 4, 1),
]


@pytest.mark.parametrize("n, t, d, h", GEOMETRIES)
@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_explicit_geometries_pass(cell, n, t, d, h):
    rng = np.random.default_rng(n * 1000 + t * 100 + d * 10 + h)
    gates = 4 if cell == "lstm" else 1
    seq_args = _args(rng, n, d, h, t=t, gates=gates)
    step_args = _args(rng, n, d, h, gates=gates, cell=cell == "lstm")
    seq, step = get_spec(cell), get_spec(f"{cell}_step")
    for spec, args in ((seq, seq_args), (step, step_args)):
        report = check_layer(spec.forward, spec.backward, *args, wrt=spec.wrt)
        assert report.passed, str(report)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_single_time_step_sequence_equals_one_step(cell):
    x, h0, Wx, Wh, b = _args(np.random.default_rng(3), 2, 3, 2, t=1, gates=4 if cell == "lstm" else 1)
    h, _ = getattr(ref, f"{cell}_forward")(x, h0, Wx, Wh, b)
    if cell == "rnn":
        expected, _ = ref.rnn_step_forward(x[:, 0], h0, Wx, Wh, b)
    else:
        expected, _, _ = ref.lstm_step_forward(x[:, 0], h0, np.zeros_like(h0), Wx, Wh, b)
    np.testing.assert_array_equal(h[:, 0], expected)


def test_sigmoid_is_stable_for_large_preactivations():
    # Pre-activations of +-800 overflow a naive exp; the LSTM must stay finite and exact.
    x = np.array([[1.0]])
    h0 = np.zeros((1, 1))
    Wx = np.array([[800.0, -800.0, 800.0, 0.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        next_h, next_c, _ = ref.lstm_step_forward(x, h0, np.ones((1, 1)), Wx, np.zeros((1, 4)), np.zeros(4))
    assert next_c[0, 0] == 0.0  # f = sigmoid(-800) = 0, i * g = tanh(0) = 0
    assert next_h[0, 0] == 0.0


# -- torch as an independent reference (forward and gradients, float64) ---------------------


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch")


def _torch_grads(torch, loss, tensors):
    loss.backward()
    return [t.grad.numpy() for t in tensors]


# ours: i, f, o, g; torch: i, f, g, o
def _torch_gate_order(h):
    return np.r_[0:2 * h, 3 * h:4 * h, 2 * h:3 * h]


@settings(max_examples=10)
@given(case=layer_cases("rnn"), seed=st.integers(0, 2**16))
def test_rnn_matches_torch(torch, case, seed):
    x, h0, Wx, Wh, b = case.args
    d, h = x.shape[2], h0.shape[1]
    rnn = torch.nn.RNN(d, h, nonlinearity="tanh", batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        rnn.weight_ih_l0.copy_(torch.from_numpy(Wx.T))
        rnn.weight_hh_l0.copy_(torch.from_numpy(Wh.T))
        rnn.bias_ih_l0.copy_(torch.from_numpy(b))
        rnn.bias_hh_l0.zero_()
    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0[None], requires_grad=True)
    out_t, _ = rnn(xt, h0t)
    out, cache = ref.rnn_forward(*case.args)
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-12, atol=1e-14)
    dh = np.random.default_rng(seed).standard_normal(out.shape)
    (out_t * torch.from_numpy(dh)).sum().backward()
    dx, dh0, dWx, dWh, db = ref.rnn_backward(dh, cache)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dh0, h0t.grad.numpy()[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dWx, rnn.weight_ih_l0.grad.numpy().T, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dWh, rnn.weight_hh_l0.grad.numpy().T, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(db, rnn.bias_ih_l0.grad.numpy(), rtol=1e-10, atol=1e-12)


@settings(max_examples=10)
@given(case=layer_cases("rnn_step"), seed=st.integers(0, 2**16))
def test_rnn_step_matches_torch(torch, case, seed):
    tensors = [torch.tensor(a, requires_grad=True) for a in case.args]
    xt, ht, wxt, wht, bt = tensors
    out_t = torch.tanh(xt @ wxt + ht @ wht + bt)
    out, cache = ref.rnn_step_forward(*case.args)
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-12, atol=1e-14)
    dnext = np.random.default_rng(seed).standard_normal(out.shape)
    expected = _torch_grads(torch, (out_t * torch.from_numpy(dnext)).sum(), tensors)
    for analytic, numeric in zip(ref.rnn_step_backward(dnext, cache), expected):
        np.testing.assert_allclose(analytic, numeric, rtol=1e-10, atol=1e-12)


@settings(max_examples=10)
@given(case=layer_cases("lstm"), seed=st.integers(0, 2**16))
def test_lstm_matches_torch_with_permuted_gates(torch, case, seed):
    x, h0, Wx, Wh, b = case.args
    d, h = x.shape[2], h0.shape[1]
    perm = _torch_gate_order(h)
    lstm = torch.nn.LSTM(d, h, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.from_numpy(Wx[:, perm].T))
        lstm.weight_hh_l0.copy_(torch.from_numpy(Wh[:, perm].T))
        lstm.bias_ih_l0.copy_(torch.from_numpy(b[perm]))
        lstm.bias_hh_l0.zero_()
    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0[None], requires_grad=True)
    out_t, _ = lstm(xt, (h0t, torch.zeros_like(h0t)))
    out, cache = ref.lstm_forward(*case.args)
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-12, atol=1e-14)
    dh = np.random.default_rng(seed).standard_normal(out.shape)
    (out_t * torch.from_numpy(dh)).sum().backward()
    dx, dh0, dWx, dWh, db = ref.lstm_backward(dh, cache)
    unpermute = np.argsort(perm)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dh0, h0t.grad.numpy()[0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dWx, lstm.weight_ih_l0.grad.numpy().T[:, unpermute], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dWh, lstm.weight_hh_l0.grad.numpy().T[:, unpermute], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(db, lstm.bias_ih_l0.grad.numpy()[unpermute], rtol=1e-10, atol=1e-12)


@settings(max_examples=10)
@given(case=layer_cases("lstm_step"), seed=st.integers(0, 2**16))
def test_lstm_step_matches_torch_cell(torch, case, seed):
    x, prev_h, prev_c, Wx, Wh, b = case.args
    h = prev_h.shape[1]
    perm = _torch_gate_order(h)
    cell = torch.nn.LSTMCell(x.shape[1], h, dtype=torch.float64)
    with torch.no_grad():
        cell.weight_ih.copy_(torch.from_numpy(Wx[:, perm].T))
        cell.weight_hh.copy_(torch.from_numpy(Wh[:, perm].T))
        cell.bias_ih.copy_(torch.from_numpy(b[perm]))
        cell.bias_hh.zero_()
    xt, ht, ct = (torch.tensor(a, requires_grad=True) for a in (x, prev_h, prev_c))
    next_h_t, next_c_t = cell(xt, (ht, ct))
    next_h, next_c, cache = ref.lstm_step_forward(*case.args)
    np.testing.assert_allclose(next_h, next_h_t.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(next_c, next_c_t.detach().numpy(), rtol=1e-12, atol=1e-14)
    rng = np.random.default_rng(seed)
    dnext_h, dnext_c = rng.standard_normal(next_h.shape), rng.standard_normal(next_c.shape)
    ((next_h_t * torch.from_numpy(dnext_h)).sum() + (next_c_t * torch.from_numpy(dnext_c)).sum()).backward()
    dx, dprev_h, dprev_c, dWx, dWh, db = ref.lstm_step_backward(dnext_h, dnext_c, cache)
    unpermute = np.argsort(perm)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dprev_h, ht.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dprev_c, ct.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dWx, cell.weight_ih.grad.numpy().T[:, unpermute], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dWh, cell.weight_hh.grad.numpy().T[:, unpermute], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(db, cell.bias_ih.grad.numpy()[unpermute], rtol=1e-10, atol=1e-12)


# -- invalid shapes: the message names every dimension --------------------------------------


def test_lstm_step_rejects_wrong_hidden_weights():
    x, h, c, Wx, _, b = _args(np.random.default_rng(0), 2, 3, 5, gates=4, cell=True)
    with pytest.raises(ValueError, match=r"x \(2, 3\) has D=3 and prev_h \(2, 5\) has H=5, so Wh must have "
                                         r"shape \(H, 4H\) = \(5, 20\); got \(5, 16\)"):
        ref.lstm_step_forward(x, h, c, Wx, np.zeros((5, 16)), b)


def test_rnn_step_rejects_input_weights_with_wrong_rows():
    x, h, _, Wh, b = _args(np.random.default_rng(0), 2, 3, 5)
    with pytest.raises(ValueError, match=r"x \(2, 3\) has D=3 features but Wx \(4, 5\) has 4 rows "
                                         r"\(needs shape \(D, H\) = \(3, 5\)\)"):
        ref.rnn_step_forward(x, h, np.zeros((4, 5)), Wh, b)


def test_rnn_rejects_batch_mismatch_and_wrong_bias():
    x, h0, Wx, Wh, b = _args(np.random.default_rng(0), 2, 3, 4, t=5)
    with pytest.raises(ValueError, match=r"x \(2, 5, 3\) has N=2 samples but h0 \(3, 4\) has 3 rows"):
        ref.rnn_forward(x, np.zeros((3, 4)), Wx, Wh, b)
    with pytest.raises(ValueError, match=r"b must have shape \(H,\) = \(4,\); got \(3,\)"):
        ref.rnn_forward(x, h0, Wx, Wh, np.zeros(3))
    with pytest.raises(ValueError, match=r"x must have 3 dimensions \(N, T, D\); got shape \(2, 3\)"):
        ref.rnn_forward(x[:, 0], h0, Wx, Wh, b)


def test_lstm_rejects_bias_of_size_h_and_mismatched_cell():
    x, h0, Wx, Wh, b = _args(np.random.default_rng(0), 2, 3, 4, t=2, gates=4)
    with pytest.raises(ValueError, match=r"b must have shape \(4H,\) = \(16,\); got \(4,\)"):
        ref.lstm_forward(x, h0, Wx, Wh, np.zeros(4))
    with pytest.raises(ValueError, match=r"prev_c must have the shape \(N, H\) = \(2, 4\) of prev_h; got \(2, 3\)"):
        ref.lstm_step_forward(x[:, 0], h0, np.zeros((2, 3)), Wx, Wh, b)


# -- realistic bugs the checker must catch, naming the right gradients ----------------------


def rnn_backward_without_carry(dh, cache):
    """Bug: each step sees only its own dh[:, t]; dprev_h is not carried back in time."""
    x, h0, Wx, Wh, b, h = cache
    dx, dWx, dWh, db = np.zeros_like(x), np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)
    dprev_h = np.zeros_like(h0)
    for t in reversed(range(x.shape[1])):
        step_cache = ref.rnn_step_forward(x[:, t], h0 if t == 0 else h[:, t - 1], Wx, Wh, b)[1]
        dx[:, t], dprev_h, dWx_t, dWh_t, db_t = ref.rnn_step_backward(dh[:, t], step_cache)
        dWx += dWx_t
        dWh += dWh_t
        db += db_t
    return dx, dprev_h, dWx, dWh, db


def test_rnn_backward_without_recurrent_carry_fails():
    spec = get_spec("rnn")
    args = _args(np.random.default_rng(1), 2, 3, 3, t=4)
    report = check_layer(spec.forward, rnn_backward_without_carry, *args, wrt=spec.wrt)
    assert report.failed_gradients == ["x", "h0", "Wx", "Wh", "b"], str(report)
    # The last step receives no carry, so dx is right there and wrong at every earlier step.
    dx = report.gradients["x"]
    assert dx.n_mismatched > 0 and all(m.index[1] < 3 for m in dx.mismatches)
    assert dx.n_mismatched <= 2 * 3 * 3


def test_rnn_missing_carry_is_found_and_shrunk_to_two_steps():
    result = check_spec(get_spec("rnn"), backward=rnn_backward_without_carry, examples=20)
    assert not result.passed
    assert set(result.gradient_verdicts().values()) == {"FAILED"}
    # With T = 1 there is nothing to carry: the smallest failing case has T = 2.
    assert result.failing_case.geometry["T"] == 2


def _buggy_lstm_step_backward(dnext_h, dnext_c, cache, *, swap_if=False, forget_in_dprev_c=True):
    """A student's LSTM step backward from the reference cache, with optional bugs."""
    x, prev_h, prev_c, Wx, Wh, _, i, f, o, g, tanh_c = cache
    dc = dnext_c + dnext_h * o * (1 - tanh_c**2)
    di, df = dc * g * i * (1 - i), dc * prev_c * f * (1 - f)
    do, dg = dnext_h * tanh_c * o * (1 - o), dc * i * (1 - g**2)
    da = np.hstack([df, di, do, dg] if swap_if else [di, df, do, dg])
    dprev_c = dc * f if forget_in_dprev_c else dc
    return da @ Wx.T, da @ Wh.T, dprev_c, x.T @ da, prev_h.T @ da, da.sum(axis=0)


def test_correct_student_lstm_step_backward_passes():
    spec = get_spec("lstm_step")
    args = _args(np.random.default_rng(2), 3, 2, 3, gates=4, cell=True)
    assert check_layer(spec.forward, _buggy_lstm_step_backward, *args).passed


def test_lstm_gate_order_swapped_in_backward_fails():
    spec = get_spec("lstm_step")
    h = 3
    args = _args(np.random.default_rng(2), 3, 2, h, gates=4, cell=True)

    def backward(dnext_h, dnext_c, cache):
        return _buggy_lstm_step_backward(dnext_h, dnext_c, cache, swap_if=True)

    report = check_layer(spec.forward, backward, *args)
    # dprev_c = dc * f does not go through the stacked gate gradient: it stays right.
    assert report.failed_gradients == ["x", "prev_h", "Wx", "Wh", "b"], str(report)
    # Only the columns of the i and f blocks are wrong.
    for name in ("Wx", "Wh", "b"):
        assert all(m.index[-1] < 2 * h for m in report.gradients[name].mismatches)


def test_lstm_dprev_c_without_forget_gate_fails():
    spec = get_spec("lstm_step")
    args = _args(np.random.default_rng(4), 2, 3, 2, gates=4, cell=True)

    def backward(dnext_h, dnext_c, cache):
        return _buggy_lstm_step_backward(dnext_h, dnext_c, cache, forget_in_dprev_c=False)

    report = check_layer(spec.forward, backward, *args)
    assert report.failed_gradients == ["prev_c"], str(report)


def test_lstm_sequence_with_that_bug_fails_through_the_cell_carry():
    spec = get_spec("lstm")
    args = _args(np.random.default_rng(5), 2, 4, 3, t=3, gates=4)

    def backward(dh, cache):
        x, h0, Wx, Wh, b, steps = cache
        dx = np.zeros_like(x)
        dWx, dWh, db = np.zeros_like(Wx), np.zeros_like(Wh), np.zeros_like(b)
        dprev_h, dprev_c = np.zeros_like(h0), np.zeros_like(h0)
        for t in reversed(range(x.shape[1])):
            dx[:, t], dprev_h, dprev_c, a, c, d = _buggy_lstm_step_backward(
                dh[:, t] + dprev_h, dprev_c, steps[t], forget_in_dprev_c=False)
            dWx, dWh, db = dWx + a, dWh + c, db + d
        return dx, dprev_h, dWx, dWh, db

    report = check_layer(spec.forward, backward, *args, wrt=spec.wrt)
    assert report.failed_gradients == ["x", "h0", "Wx", "Wh", "b"], str(report)
    # The last step's dx does not depend on the cell carry.
    assert all(m.index[1] < 2 for m in report.gradients["x"].mismatches)
