"""Mutants and variants of the basic layers: affine, the element-wise activations, the
classification losses, word embedding and the temporal affine and softmax layers."""

from __future__ import annotations

from benchmarks.mutants import Mutant, Variant, Warned
from gradcheck.kinds import ViolationKind

LOOPS = "examples/layers_correct.py"
AFFINE = "reference_layers/affine.py"
ACTIVATIONS = "reference_layers/activations.py"
LOSSES = "reference_layers/losses.py"
EMBEDDING = "reference_layers/embedding.py"
TEMPORAL = "reference_layers/temporal.py"

MUTANTS: list[Mutant] = [
    # ---- affine -----------------------------------------------------------------------
    Mutant(
        name="affine: db averaged over the batch instead of summed",
        source=LOOPS, spec="affine",
        old="    db = np.sum(dout, axis=0)\n",
        new="    db = np.mean(dout, axis=0)\n",
        expect=frozenset({"b"}), diagnosis="of the true gradient (N = ",
    ),
    Mutant(
        name="affine: dw transposed, reshaped to w's shape to silence the shape error",
        source=AFFINE, spec="affine",
        old="    dw = x2.T @ dout\n",
        new="    dw = (dout.T @ x2).reshape(w.shape)\n",
        expect=frozenset({"w"}), diagnosis="transpose of the right gradient", geometry="w=(2, 2)",
    ),
    Mutant(
        name="affine: dw transposed (dout.T @ x), wrong shape when D != M",
        source=LOOPS, spec="affine",
        old="    dw = x.reshape(N, -1).T.dot(dout)\n",
        new="    dw = dout.T.dot(x.reshape(N, -1))\n",
        expect=frozenset({"w"}), diagnosis="transposed",
    ),
    Mutant(
        name="affine: dx not reshaped back to x's shape (N, d1, ..., dk)",
        source=LOOPS, spec="affine",
        old="    dx = dout.dot(w.T).reshape(x.shape)\n",
        new="    dx = dout.dot(w.T)\n",
        expect=frozenset({"x"}), diagnosis="reshape it to x.shape", geometry="x=(1, 1, 1)",
    ),
    Mutant(
        name="affine: dx with a sign error",
        source=AFFINE, spec="affine",
        old="    dx = (dout @ w.T).reshape(x.shape)\n",
        new="    dx = -(dout @ w.T).reshape(x.shape)\n",
        expect=frozenset({"x"}), diagnosis="sign",
    ),
    Mutant(
        name="affine: dw divided by the batch size",
        source=LOOPS, spec="affine",
        old="    dw = x.reshape(N, -1).T.dot(dout)\n",
        new="    dw = x.reshape(N, -1).T.dot(dout) / N\n",
        expect=frozenset({"w"}), diagnosis="(N = ",
    ),
    # ---- relu -------------------------------------------------------------------------
    Mutant(
        name="relu: mask taken from dout instead of x",
        source=LOOPS, spec="relu",
        old="    dx[x <= 0] = 0\n",
        new="    dx[dout <= 0] = 0\n",
        expect=frozenset({"x"}), diagnosis="mask",
    ),
    Mutant(
        name="relu: mask inverted (x < 0 passes the gradient)",
        source=ACTIVATIONS, spec="relu",
        old="    return np.where(np.real(x) > 0, dout, 0).astype(dout.dtype, copy=False)\n",
        new="    return np.where(np.real(x) < 0, dout, 0).astype(dout.dtype, copy=False)\n",
        expect=frozenset({"x"}), diagnosis="the mask selects the wrong entries",
    ),
    # ---- leaky relu ---------------------------------------------------------------------
    Mutant(
        name="leaky_relu: backward forgets alpha on the negative side",
        source=ACTIVATIONS, spec="leaky_relu",
        old="    return np.where(np.real(x) > 0, dout, alpha * dout).astype(dout.dtype, copy=False)\n",
        new="    return np.where(np.real(x) > 0, dout, 0).astype(dout.dtype, copy=False)\n",
        expect=frozenset({"x"}),
    ),
    # ---- sigmoid ----------------------------------------------------------------------
    Mutant(
        name="sigmoid: backward uses x instead of the output (cache holds x)",
        source=ACTIVATIONS, spec="sigmoid",
        old="    out = 0.5 * (1.0 + np.tanh(0.5 * x))\n    return out, out\n",
        new="    out = 0.5 * (1.0 + np.tanh(0.5 * x))\n    return out, x\n",
        expect=frozenset({"x"}),
    ),
    Mutant(
        name="sigmoid: sign error, s * (s - 1)",
        source=ACTIVATIONS, spec="sigmoid",
        old="    return dout * s * (1.0 - s)\n",
        new="    return dout * s * (s - 1.0)\n",
        expect=frozenset({"x"}), diagnosis="sign",
    ),
    # ---- tanh -------------------------------------------------------------------------
    Mutant(
        name="tanh: backward 1 - t instead of 1 - t**2",
        source=ACTIVATIONS, spec="tanh",
        old="    return dout * (1.0 - t * t)\n",
        new="    return dout * (1.0 - t)\n",
        expect=frozenset({"x"}),
    ),
    # ---- gelu -------------------------------------------------------------------------
    Mutant(
        name="gelu: derivative of x**3 taken as x**2 (factor 3 dropped)",
        source=ACTIVATIONS, spec="gelu",
        old="    inner = _GELU_C * (1.0 + 3.0 * _GELU_A * x * x)\n",
        new="    inner = _GELU_C * (1.0 + _GELU_A * x * x)\n",
        expect=frozenset({"x"}),
    ),
    Mutant(
        name="gelu: tanh term treated as a constant (product rule dropped)",
        source=ACTIVATIONS, spec="gelu",
        old="    local = 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * inner\n",
        new="    local = 0.5 * (1.0 + t)\n",
        expect=frozenset({"x"}),
    ),
    Mutant(
        name="gelu: constant sqrt(pi / 2) instead of sqrt(2 / pi), backward consistent",
        source=ACTIVATIONS, spec="gelu",
        old="_GELU_C = np.sqrt(2.0 / np.pi)\n",
        new="_GELU_C = np.sqrt(np.pi / 2.0)\n",
        expect=frozenset({"forward"}),
    ),
    # ---- softmax loss -----------------------------------------------------------------
    Mutant(
        name="softmax_loss: dx without the -1 at the label",
        source=LOOPS, spec="softmax_loss",
        old="    dx[np.arange(N), y] -= 1\n",
        new="",
        expect=frozenset({"x"}),
    ),
    Mutant(
        name="softmax_loss: dx not divided by N",
        source=LOOPS, spec="softmax_loss",
        old="    dx[np.arange(N), y] -= 1\n    dx /= N\n",
        new="    dx[np.arange(N), y] -= 1\n",
        expect=frozenset({"x"}), diagnosis="(N = ",
    ),
    Mutant(
        name="softmax_loss: loss summed over the batch, dx consistently not divided by N",
        source=LOOPS, spec="softmax_loss",
        old="    loss = -np.sum(log_probs[np.arange(N), y]) / N\n    dx = probs.copy()\n"
            "    dx[np.arange(N), y] -= 1\n    dx /= N\n",
        new="    loss = -np.sum(log_probs[np.arange(N), y])\n    dx = probs.copy()\n"
            "    dx[np.arange(N), y] -= 1\n",
        expect=frozenset({"forward"}),
    ),
    # ---- svm loss ---------------------------------------------------------------------
    Mutant(
        name="svm_loss: label column misses the count of positive margins",
        source=LOOPS, spec="svm_loss",
        old="    dx[np.arange(N), y] -= num_pos\n",
        new="",
        expect=frozenset({"x"}),
    ),
    Mutant(
        name="svm_loss: margin without the +1 (forward bug, backward consistent)",
        source=LOOPS, spec="svm_loss",
        old="    margins = np.maximum(0, x - correct[:, np.newaxis] + 1.0)\n",
        new="    margins = np.maximum(0, x - correct[:, np.newaxis])\n",
        expect=frozenset({"forward"}),
    ),
    Mutant(
        name="svm_loss: label column's own margin of 1 left in the loss",
        source=LOOPS, spec="svm_loss",
        old="    margins[np.arange(N), y] = 0\n",
        new="",
        expect=frozenset({"forward"}),
    ),
    # ---- temporal softmax loss --------------------------------------------------------
    Mutant(
        name="temporal_softmax_loss: loss and dx averaged over N * T instead of N",
        source=LOOPS, spec="temporal_softmax_loss",
        old="    loss = -np.sum(mask_flat * np.log(probs[np.arange(N * T), y_flat])) / N\n"
            "    dx_flat = probs.copy()\n    dx_flat[np.arange(N * T), y_flat] -= 1\n    dx_flat /= N\n",
        new="    loss = -np.sum(mask_flat * np.log(probs[np.arange(N * T), y_flat])) / (N * T)\n"
            "    dx_flat = probs.copy()\n    dx_flat[np.arange(N * T), y_flat] -= 1\n"
            "    dx_flat /= N * T\n",
        expect=frozenset({"forward"}),
    ),
    Mutant(
        name="temporal_softmax_loss: dx divided by N * T while the loss is divided by N",
        source=LOOPS, spec="temporal_softmax_loss",
        old="    dx_flat /= N\n",
        new="    dx_flat /= N * T\n",
        expect=frozenset({"x"}), diagnosis="length of axis 1",
    ),
    Mutant(
        name="temporal_softmax_loss: mask ignored in dx",
        source=LOOPS, spec="temporal_softmax_loss",
        old="    dx_flat *= mask_flat[:, None]\n",
        new="",
        expect=frozenset({"x"}),
    ),
    # ---- word embedding ---------------------------------------------------------------
    Mutant(
        name="word_embedding: dW[x] += dout keeps one of repeated indices",
        source=LOOPS, spec="word_embedding",
        old="    np.add.at(dW, x, dout)\n",
        new="    dW[x] += dout\n",
        expect=frozenset({"W"}), geometry="x=(1, 2), W=(1, 1), distinct_indices=1",
    ),
    # ---- temporal affine --------------------------------------------------------------
    Mutant(
        name="temporal_affine: db summed over the batch axis only",
        source=LOOPS, spec="temporal_affine",
        old="    db = dout.sum(axis=(0, 1))\n",
        new="    db = dout.sum(axis=0)\n",
        expect=frozenset({"b"}),
    ),
    Mutant(
        name="temporal_affine: x flattened time-major, dout batch-major in dw",
        source=LOOPS, spec="temporal_affine",
        old="    dw = x.reshape(N * T, D).T.dot(dout.reshape(N * T, M))\n",
        new="    dw = x.transpose(1, 0, 2).reshape(N * T, D).T.dot(dout.reshape(N * T, M))\n",
        expect=frozenset({"w"}),
    ),
]

VARIANTS: list[Variant] = [
    Variant(
        name="affine: dw and dx by einsum",
        source=AFFINE, spec="affine",
        old="    dx = (dout @ w.T).reshape(x.shape)\n    dw = x2.T @ dout\n",
        new="    dx = np.einsum(\"nm,dm->nd\", dout, w).reshape(x.shape)\n"
            "    dw = np.einsum(\"nd,nm->dm\", x2, dout)\n",
    ),
    Variant(
        name="relu: mask x < 0 instead of x <= 0 (equal on kink-free data)",
        source=LOOPS, spec="relu",
        old="    dx[x <= 0] = 0\n",
        new="    dx[x < 0] = 0\n",
    ),
    Variant(
        name="leaky_relu: forward np.maximum(alpha * x, x) (not complex-step safe)",
        source=ACTIVATIONS, spec="leaky_relu",
        old="    out = np.where(np.real(x) > 0, x, alpha * x).astype(x.dtype, copy=False)\n",
        new="    out = np.maximum(alpha * x, x)\n",
    ),
    Variant(
        name="tanh: computed in float32 inside, returned as float64",
        source=ACTIVATIONS, spec="tanh",
        old="    out = np.tanh(x)\n    return out, out\n",
        new="    out = np.tanh(x.astype(np.float32)).astype(x.dtype)\n    return out, out\n",
    ),
    Variant(
        name="sigmoid: forward 1 / (1 + exp(-x))",
        source=ACTIVATIONS, spec="sigmoid",
        old="    out = 0.5 * (1.0 + np.tanh(0.5 * x))\n    return out, out\n",
        new="    out = 1.0 / (1.0 + np.exp(-x))\n    return out, out\n",
    ),
    Variant(
        name="softmax_loss: scipy logsumexp, probabilities from softmax",
        source=LOSSES, spec="softmax_loss",
        old="    shifted = x - np.max(np.real(x), axis=1, keepdims=True)\n"
            "    log_z = np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))\n"
            "    log_probs = shifted - log_z\n",
        new="    from scipy.special import logsumexp\n\n"
            "    log_probs = x - logsumexp(x, axis=1, keepdims=True)\n",
    ),
    Variant(
        name="softmax_loss: loss summed in float32, dx in float64",
        source=LOSSES, spec="softmax_loss",
        old="    loss = -np.sum(log_probs[rows, y]) / n\n",
        new="    loss = (-np.sum(log_probs[rows, y].astype(np.float32)) / n).astype(x.dtype)\n",
    ),
    Variant(
        name="svm_loss: dx built by loops over samples and classes",
        source=LOOPS, spec="svm_loss",
        old="    num_pos = np.sum(margins > 0, axis=1)\n    dx = np.zeros_like(x)\n"
            "    dx[margins > 0] = 1\n    dx[np.arange(N), y] -= num_pos\n",
        new="    dx = np.zeros_like(x)\n    for i in range(N):\n        for j in range(x.shape[1]):\n"
            "            if j != y[i] and margins[i, j] > 0:\n"
            "                dx[i, j] += 1\n                dx[i, y[i]] -= 1\n",
    ),
    Variant(
        name="word_embedding: dW accumulated by loops over N and T",
        source=LOOPS, spec="word_embedding",
        old="    np.add.at(dW, x, dout)\n",
        new="    for n in range(x.shape[0]):\n        for t in range(x.shape[1]):\n"
            "            dW[x[n, t]] += dout[n, t]\n",
    ),
    Variant(
        name="temporal_affine: dw by flattening N and T",
        source=TEMPORAL, spec="temporal_affine",
        old="    dw = np.einsum(\"ntd,ntm->dm\", x, dout).astype(w.dtype, copy=False)\n",
        new="    dw = x.reshape(-1, x.shape[2]).T @ dout.reshape(-1, dout.shape[2])\n",
    ),
    Variant(
        name="temporal_softmax_loss: loop over time steps",
        source=LOOPS, spec="temporal_softmax_loss",
        old="    dx_flat = probs.copy()\n    dx_flat[np.arange(N * T), y_flat] -= 1\n    dx_flat /= N\n"
            "    dx_flat *= mask_flat[:, None]\n    return loss, dx_flat.reshape(N, T, V)\n",
        new="    dx = np.zeros((N, T, V))\n    p = probs.reshape(N, T, V)\n    for t in range(T):\n"
            "        d = p[:, t].copy()\n        d[np.arange(N), y[:, t]] -= 1\n"
            "        dx[:, t] = d * mask[:, t, None] / N\n    return loss, dx\n",
    ),
]

# Correct rewrites with a hazard: they pass, with exactly these warnings.
WARNED = [
    Warned(
        name="relu: backward masks dout in place (dout *= mask)",
        source=LOOPS, spec="relu",
        old="    dx = dout.copy()\n    dx[x <= 0] = 0\n    return dx\n",
        new="    dout *= x > 0\n    return dout\n",
        expect=frozenset({ViolationKind.DOUT_MUTATED}),
    ),
    Warned(
        name="softmax_loss: max subtracted from x in place (the caller's scores change)",
        source=LOOPS, spec="softmax_loss",
        old="    shifted = x - np.max(x, axis=1, keepdims=True)\n",
        new="    x -= np.max(x, axis=1, keepdims=True)\n    shifted = x\n",
        expect=frozenset({ViolationKind.INPUT_MUTATED}),
    ),
]
