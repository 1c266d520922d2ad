"""Mutants and variants of the recurrent layers: the tanh RNN and the LSTM (single steps and
whole sequences) and scaled dot-product attention."""

from __future__ import annotations

from benchmarks.mutants import Mutant, Variant, Warned
from gradcheck.kinds import ViolationKind

LOOPS = "examples/layers_correct.py"
RECURRENT = "reference_layers/recurrent.py"
ATTENTION = "reference_layers/attention.py"

ALL_RNN = frozenset({"x", "h0", "Wx", "Wh", "b"})
ALL_RNN_STEP = frozenset({"x", "prev_h", "Wx", "Wh", "b"})

# The LOOPS rnn_backward loop, shared by several edits below.
_RNN_LOOP = (
    "    for t in reversed(range(T)):\n"
    "        dx_t, dprev, dWx_t, dWh_t, db_t = rnn_step_backward(dh[:, t, :] + dprev, cache[t])\n"
    "        dx[:, t, :] = dx_t\n"
    "        dWx += dWx_t\n"
    "        dWh += dWh_t\n"
    "        db += db_t\n"
    "    return dx, dprev, dWx, dWh, db\n"
)

# The reference LSTM step, forward and backward, from the candidate gate to the gate gradients.
_LSTM_G_TO_GRADS = (
    "    g = np.tanh(a[:, 3 * hidden:])\n"
    "    next_c = f * prev_c + i * g\n"
    "    tanh_c = np.tanh(next_c)\n"
    "    next_h = o * tanh_c\n"
    "    return next_h, next_c, (x, prev_h, prev_c, Wx, Wh, b, i, f, o, g, tanh_c)\n"
    "\n"
    "\n"
    "def _lstm_step_grads(\n"
    "    dnext_h: np.ndarray, dnext_c: np.ndarray, cache: LstmStepCache\n"
    ") -> tuple[np.ndarray, ...]:\n"
    "    x, prev_h, prev_c, Wx, Wh, _, i, f, o, g, tanh_c = cache\n"
    "    dc = dnext_c + dnext_h * o * (1 - tanh_c * tanh_c)\n"
    "    da = np.concatenate(\n"
    "        [\n"
    "            dc * g * i * (1 - i),\n"
    "            dc * prev_c * f * (1 - f),\n"
    "            dnext_h * tanh_c * o * (1 - o),\n"
    "            dc * i * (1 - g * g),\n"
)

# The reference attention's softmax backward line.
_DSCORES = (
    "    dscores = weights * (dweights - np.sum(weights * dweights, axis=-1, keepdims=True))"
    " * scale\n"
)

MUTANTS: list[Mutant] = [
    # ---- rnn_step ---------------------------------------------------------------------
    Mutant(
        name="rnn_step: tanh derivative taken as next_h instead of 1 - next_h**2",
        source=LOOPS, spec="rnn_step",
        old="    da = dnext_h * (1 - next_h**2)\n",
        new="    da = dnext_h * next_h\n",
        expect=ALL_RNN_STEP,
    ),
    Mutant(
        name="rnn_step: dWh computed with x instead of prev_h",
        source=LOOPS, spec="rnn_step",
        old="    dWh = prev_h.T.dot(da)\n",
        new="    dWh = x.T.dot(da)\n",
        expect=frozenset({"Wh"}),
    ),
    Mutant(
        name="rnn_step: dprev_h through Wx instead of Wh",
        source=RECURRENT, spec="rnn_step",
        old="    return da @ Wx.T, da @ Wh.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)\n",
        new="    return da @ Wx.T, da @ Wx.T, x.T @ da, prev_h.T @ da, da.sum(axis=0)\n",
        expect=frozenset({"prev_h"}),
    ),
    Mutant(
        name="rnn_step: db summed over the hidden units instead of the batch",
        source=LOOPS, spec="rnn_step",
        old="    db = da.sum(axis=0)\n",
        new="    db = da.sum(axis=1)\n",
        expect=frozenset({"b"}),
    ),
    # ---- rnn --------------------------------------------------------------------------
    Mutant(
        name="rnn: recurrent carry dropped (dprev not added to dh[:, t])",
        source=LOOPS, spec="rnn",
        old="rnn_step_backward(dh[:, t, :] + dprev, cache[t])\n",
        new="rnn_step_backward(dh[:, t, :], cache[t])\n",
        expect=ALL_RNN, geometry="T=2",
    ),
    Mutant(
        name="rnn: backward walks time forwards instead of backwards",
        source=LOOPS, spec="rnn",
        old="    for t in reversed(range(T)):\n",
        new="    for t in range(T):\n",
        expect=ALL_RNN, geometry="T=2",
    ),
    Mutant(
        name="rnn: dh0 taken from the last step's dprev instead of the first's",
        source=LOOPS, spec="rnn",
        old=_RNN_LOOP,
        new=_RNN_LOOP.replace(
            "        dx[:, t, :] = dx_t\n",
            "        dx[:, t, :] = dx_t\n        if t == T - 1:\n            dh0 = dprev\n",
        ).replace("    return dx, dprev, dWx, dWh, db\n", "    return dx, dh0, dWx, dWh, db\n"),
        expect=frozenset({"h0"}), geometry="T=2",
    ),
    Mutant(
        name="rnn: dWh assigned (=) instead of accumulated (+=) over time",
        source=LOOPS, spec="rnn",
        old="        dWh += dWh_t\n",
        new="        dWh = dWh_t\n",
        expect=frozenset({"Wh"}), geometry="T=2",
    ),
    Mutant(
        name="rnn: h0 used as the previous state of every step in backward",
        source=RECURRENT, spec="rnn",
        old="        prev_h = h[:, t - 1] if t > 0 else h0\n",
        new="        prev_h = h0\n",
        expect=frozenset({"Wh"}), geometry="T=2",
    ),
    Mutant(
        name="rnn: backward loop bound off by one (last step skipped)",
        source=RECURRENT, spec="rnn",
        old="    for t in reversed(range(x.shape[1])):\n        prev_h = h[:, t - 1]",
        new="    for t in reversed(range(x.shape[1] - 1)):\n        prev_h = h[:, t - 1]",
        expect=ALL_RNN, diagnosis="is all zeros but the numeric gradient is not", geometry="T=1",
    ),
    # ---- lstm_step --------------------------------------------------------------------
    Mutant(
        name="lstm_step: input and forget gate gradients swapped in backward only",
        source=RECURRENT, spec="lstm_step",
        old="            dc * g * i * (1 - i),\n            dc * prev_c * f * (1 - f),\n",
        new="            dc * prev_c * f * (1 - f),\n            dc * g * i * (1 - i),\n",
        expect=frozenset({"x", "prev_h", "Wx", "Wh", "b"}),
    ),
    Mutant(
        name="lstm_step: dprev_c missing the forget-gate factor",
        source=RECURRENT, spec="lstm_step",
        old="    return da @ Wx.T, da @ Wh.T, dc * f, x.T @ da, prev_h.T @ da, da.sum(axis=0)\n",
        new="    return da @ Wx.T, da @ Wh.T, dc, x.T @ da, prev_h.T @ da, da.sum(axis=0)\n",
        expect=frozenset({"prev_c"}),
    ),
    Mutant(
        name="lstm_step: sigmoid instead of tanh for the candidate g (backward consistent)",
        source=RECURRENT, spec="lstm_step",
        old=_LSTM_G_TO_GRADS,
        new=_LSTM_G_TO_GRADS.replace(
            "    g = np.tanh(a[:, 3 * hidden:])\n", "    g = _sigmoid(a[:, 3 * hidden:])\n"
        ).replace("            dc * i * (1 - g * g),\n", "            dc * i * g * (1 - g),\n"),
        expect=frozenset({"forward"}), diagnosis="differs from the reference",
    ),
    Mutant(
        name="lstm_step: output gate gradient forgets tanh(next_c)",
        source=RECURRENT, spec="lstm_step",
        old="            dnext_h * tanh_c * o * (1 - o),\n",
        new="            dnext_h * o * (1 - o),\n",
        expect=frozenset({"x", "prev_h", "Wx", "Wh", "b"}),
    ),
    Mutant(
        name="lstm_step: dnext_c not added to the cell gradient",
        source=RECURRENT, spec="lstm_step",
        old="    dc = dnext_c + dnext_h * o * (1 - tanh_c * tanh_c)\n",
        new="    dc = dnext_h * o * (1 - tanh_c * tanh_c)\n",
        expect=frozenset({"x", "prev_h", "prev_c", "Wx", "Wh", "b"}),
    ),
    # ---- lstm -------------------------------------------------------------------------
    Mutant(
        name="lstm: dWh summed with x instead of prev_h",
        source=RECURRENT, spec="lstm",
        old="    return da @ Wx.T, da @ Wh.T, dc * f, x.T @ da, prev_h.T @ da, da.sum(axis=0)\n",
        new="    return da @ Wx.T, da @ Wh.T, dc * f, x.T @ da, x.T @ da, da.sum(axis=0)\n",
        expect=frozenset({"Wh"}),
    ),
    Mutant(
        name="lstm: cell-state carry dropped (dnext_c = 0 at every step)",
        source=RECURRENT, spec="lstm",
        old="            dh[:, t] + dprev_h, dprev_c, steps[t]\n",
        new="            dh[:, t] + dprev_h, np.zeros_like(dprev_c), steps[t]\n",
        expect=ALL_RNN, geometry="T=2",
    ),
    # ---- attention --------------------------------------------------------------------
    Mutant(
        name="attention: backward missing the 1/sqrt(E) scale",
        source=ATTENTION, spec="attention",
        old=_DSCORES,
        new=_DSCORES.replace(" * scale\n", "\n"),
        # E = 1 hides it: the smallest failing case has E >= 2 (the last axis of query).
        expect=frozenset({"query", "key"}), diagnosis="times the true gradient", geometry="query=(1, 1, 2)",
    ),
    Mutant(
        name="attention: softmax backward without the row sum (dS = dP * P)",
        source=ATTENTION, spec="attention",
        old=_DSCORES,
        new="    dscores = weights * dweights * scale\n",
        expect=frozenset({"query", "key"}),
    ),
    Mutant(
        name="attention: backward recomputes the weights without the mask",
        source=ATTENTION, spec="attention",
        old="    query, key, value, weights, scale = cache\n",
        new=(
            "    query, key, value, _, scale = cache\n"
            "    scores = (query @ np.swapaxes(key, 1, 2)) * scale\n"
            "    weights = np.exp(scores - scores.max(axis=-1, keepdims=True))\n"
            "    weights = weights / weights.sum(axis=-1, keepdims=True)\n"
        ),
        expect=frozenset({"query", "key", "value"}), geometry="mask=(",
    ),
    Mutant(
        name="attention: dvalue transposed (dout^T @ p instead of p^T @ dout)",
        source=ATTENTION, spec="attention",
        old="    dvalue = np.swapaxes(weights, 1, 2) @ dout\n",
        new="    dvalue = np.swapaxes(dout, 1, 2) @ weights\n",
        expect=frozenset({"value"}), diagnosis="axes of value in the wrong order",
    ),
    Mutant(
        name="attention: dvalue = p @ dout (transpose of the weights forgotten)",
        source=ATTENTION, spec="attention",
        old="    dvalue = np.swapaxes(weights, 1, 2) @ dout\n",
        new="    dvalue = weights @ dout\n",
        # S = T gives wrong values, S != T makes the backward raise: no gradient can be
        # compared then, so all three are named along with the contract violation.
        expect=frozenset({"query", "key", "value", "contract:backward_error"}),
        diagnosis="backward raised ValueError", geometry="query=(1, 1, 1), key=(1, 2, 1)",
    ),
    Mutant(
        name="attention: dquery built from value instead of key",
        source=ATTENTION, spec="attention",
        old="    dquery = dscores @ key\n",
        new="    dquery = dscores @ value\n",
        expect=frozenset({"query"}),
    ),
    Mutant(
        name="attention: scores scaled by 1/E instead of 1/sqrt(E) (backward consistent)",
        source=ATTENTION, spec="attention",
        old="    scale = 1.0 / math.sqrt(e)",
        new="    scale = 1.0 / e",
        expect=frozenset({"forward"}), diagnosis="differs from the reference", geometry="query=(1, 1, 2)",
    ),
]

VARIANTS: list[Variant] = [
    Variant(
        name="rnn: per-step gradients collected and summed after the loop",
        source=LOOPS, spec="rnn",
        old=_RNN_LOOP,
        new=(
            "    dWxs, dWhs, dbs = [], [], []\n"
            "    for t in reversed(range(T)):\n"
            "        dx_t, dprev, dWx_t, dWh_t, db_t = rnn_step_backward(dh[:, t, :] + dprev, cache[t])\n"
            "        dx[:, t, :] = dx_t\n"
            "        dWxs.append(dWx_t)\n"
            "        dWhs.append(dWh_t)\n"
            "        dbs.append(db_t)\n"
            "    dWx, dWh, db = np.sum(dWxs, axis=0), np.sum(dWhs, axis=0), np.sum(dbs, axis=0)\n"
            "    return dx, dprev, dWx, dWh, db\n"
        ),
    ),
    Variant(
        name="rnn_step: float32 internals, cast back to float64",
        source=LOOPS, spec="rnn_step",
        old=(
            "    next_h = np.tanh(x.dot(Wx) + prev_h.dot(Wh) + b)\n"
            "    return next_h, (x, prev_h, Wx, Wh, next_h)\n"
        ),
        new=(
            "    f32 = [np.asarray(a, dtype=np.float32) for a in (x, prev_h, Wx, Wh, b)]\n"
            "    next_h = np.tanh(f32[0].dot(f32[2]) + f32[1].dot(f32[3]) + f32[4])\n"
            "    return next_h.astype(np.float64), (x, prev_h, Wx, Wh, next_h.astype(np.float64))\n"
        ),
    ),
    Variant(
        name="rnn_step: tanh derivative from the cached pre-activation (1 / cosh(a)**2)",
        source=LOOPS, spec="rnn_step",
        old=(
            "    next_h = np.tanh(x.dot(Wx) + prev_h.dot(Wh) + b)\n"
            "    return next_h, (x, prev_h, Wx, Wh, next_h)\n"
            "\n"
            "\n"
            "def rnn_step_backward(dnext_h, cache):\n"
            "    x, prev_h, Wx, Wh, next_h = cache\n"
            "    da = dnext_h * (1 - next_h**2)\n"
        ),
        new=(
            "    a = x.dot(Wx) + prev_h.dot(Wh) + b\n"
            "    return np.tanh(a), (x, prev_h, Wx, Wh, a)\n"
            "\n"
            "\n"
            "def rnn_step_backward(dnext_h, cache):\n"
            "    x, prev_h, Wx, Wh, a = cache\n"
            "    da = dnext_h / np.cosh(a) ** 2\n"
        ),
    ),
    Variant(
        name="lstm: gates computed as four separate matmuls",
        source=RECURRENT, spec="lstm",
        old=(
            "    a = x @ Wx + prev_h @ Wh + b\n"
            "    i = _sigmoid(a[:, :hidden])\n"
            "    f = _sigmoid(a[:, hidden:2 * hidden])\n"
            "    o = _sigmoid(a[:, 2 * hidden:3 * hidden])\n"
            "    g = np.tanh(a[:, 3 * hidden:])\n"
        ),
        new=(
            "    blocks = [slice(k * hidden, (k + 1) * hidden) for k in range(4)]\n"
            "    i, f, o, g = (x @ Wx[:, s] + prev_h @ Wh[:, s] + b[s] for s in blocks)\n"
            "    i, f, o, g = _sigmoid(i), _sigmoid(f), _sigmoid(o), np.tanh(g)\n"
        ),
    ),
    Variant(
        name="lstm_step: gate gradients written as separate blocks joined with np.hstack",
        source=RECURRENT, spec="lstm_step",
        old=(
            "    da = np.concatenate(\n"
            "        [\n"
            "            dc * g * i * (1 - i),\n"
            "            dc * prev_c * f * (1 - f),\n"
            "            dnext_h * tanh_c * o * (1 - o),\n"
            "            dc * i * (1 - g * g),\n"
            "        ],\n"
            "        axis=1,\n"
            "    )\n"
        ),
        new=(
            "    di, df, do, dg = dc * g, dc * prev_c, dnext_h * tanh_c, dc * i\n"
            "    da = np.hstack([di * i * (1 - i), df * f * (1 - f), do * o * (1 - o), dg * (1 - g**2)])\n"
        ),
    ),
    Variant(
        name="attention: backward written with einsum",
        source=ATTENTION, spec="attention",
        old=(
            "    dvalue = np.swapaxes(weights, 1, 2) @ dout\n"
            "    dweights = dout @ np.swapaxes(value, 1, 2)\n"
            + _DSCORES
            + "    dquery = dscores @ key\n"
            + "    dkey = np.swapaxes(dscores, 1, 2) @ query\n"
        ),
        new=(
            "    dvalue = np.einsum('nst,nsv->ntv', weights, dout)\n"
            "    dweights = np.einsum('nsv,ntv->nst', dout, value)\n"
            "    row = np.einsum('nst,nst->ns', weights, dweights)[..., None]\n"
            "    dscores = weights * (dweights - row) * scale\n"
            "    dquery = np.einsum('nst,nte->nse', dscores, key)\n"
            "    dkey = np.einsum('nst,nse->nte', dscores, query)\n"
        ),
    ),
    Variant(
        name="attention: softmax through logsumexp",
        source=ATTENTION, spec="attention",
        old=(
            "    shifted = scores - np.max(real, axis=-1, keepdims=True)\n"
            "    if keep is not None:\n"
            "        weights = np.where(keep, np.exp(np.where(keep, shifted, 0)), 0)\n"
            "    else:\n"
            "        weights = np.exp(shifted)\n"
            "    weights = weights / np.sum(weights, axis=-1, keepdims=True)\n"
        ),
        new=(
            "    m = np.max(real, axis=-1, keepdims=True)\n"
            "    masked = scores if keep is None else np.where(keep, scores, -np.inf)\n"
            "    lse = m + np.log(np.sum(np.exp(masked - m), axis=-1, keepdims=True))\n"
            "    weights = np.exp(masked - lse)\n"
        ),
    ),
    Variant(
        name="attention: masked scores set to -1e9 before an ordinary softmax",
        source=ATTENTION, spec="attention",
        old=(
            "    real = np.real(scores)\n"
            "    if keep is not None:\n"
            "        real = np.where(keep, real, -np.inf)\n"
            "    shifted = scores - np.max(real, axis=-1, keepdims=True)\n"
            "    if keep is not None:\n"
            "        weights = np.where(keep, np.exp(np.where(keep, shifted, 0)), 0)\n"
            "    else:\n"
            "        weights = np.exp(shifted)\n"
        ),
        new=(
            "    if keep is not None:\n"
            "        scores = np.where(keep, scores, -1e9)\n"
            "    weights = np.exp(scores - np.max(np.real(scores), axis=-1, keepdims=True))\n"
        ),
    ),
]

# Correct rewrites with a hazard: they pass, with exactly these warnings.
WARNED = [
    Warned(
        name="rnn_step: backward scales dnext_h in place (dnext_h *= 1 - next_h**2)",
        source=LOOPS, spec="rnn_step",
        old="    da = dnext_h * (1 - next_h**2)\n",
        new="    dnext_h *= 1 - next_h**2\n    da = dnext_h\n",
        expect=frozenset({ViolationKind.DOUT_MUTATED}), diagnosis="Never modify dout in place",
    ),
]
