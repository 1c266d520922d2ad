"""Mutants and variants of the normalisation layers (batch, spatial batch, layer and group
normalisation) and of dropout.

Some bugs need two coordinated edits (a forward change and the backward consistent with
it, or a forward and backward that must agree on a layout); :func:`_span` takes the exact
source text between two markers as the snippet, so that the edit stays one exact
replacement of text that occurs once.
"""

from __future__ import annotations

from benchmarks.mutants import ROOT, Mutant, Variant, Warned
from gradcheck.kinds import ViolationKind

LOOPS = "examples/layers_correct.py"
NORM = "reference_layers/normalization.py"
DROPOUT = "reference_layers/dropout.py"


def _span(source: str, start: str, end: str) -> str:
    """The text of ``source`` from the first ``start`` to the first ``end`` after it (inclusive)."""
    text = (ROOT / source).read_text()
    i = text.index(start)
    return text[i:text.index(end, i) + len(end)]


def _replace(text: str, *pairs: tuple[str, str]) -> str:
    """``text`` with each ``old`` (which must occur exactly once) replaced by its ``new``."""
    for old, new in pairs:
        if text.count(old) != 1:
            raise ValueError(f"{old!r} occurs {text.count(old)} times in the span")
        text = text.replace(old, new)
    return text


# batchnorm_forward and batchnorm_backward of the student-style file, from the variance
# line of the forward to the dx line of the backward.
_BN_LOOPS = _span(LOOPS, "        var = x.var(axis=0)\n", "dmu / N\n")
# spatial_batchnorm_forward and _backward of the reference: the layout changes of both.
_SBN = _span(NORM, "    flat = x.transpose(0, 2, 3, 1)",
             "return dx.reshape(n, h, w, c).transpose(0, 3, 1, 2), dgamma, dbeta\n")
# spatial_groupnorm_forward and _backward of the reference: the axes of both.
_GN = _span(NORM, "    xhat, _, _, inv_std = _standardise(grouped, (2, 3, 4), eps)\n",
            "xhat.reshape(grouped), inv_std, (2, 3, 4))\n")
# layernorm_forward and layernorm_backward of the reference.
_LN = _span(NORM, "    xhat, _, _, inv_std = _standardise(x, (1,), eps)\n",
            "return dx, np.sum(dout * xhat, axis=0), np.sum(dout, axis=0)\n")

MUTANTS: list[Mutant] = [
    # ---- batchnorm (staged backward) ------------------------------------------------------
    Mutant(
        name="batchnorm: dx treats the batch mean and variance as constants",
        source=LOOPS, spec="batchnorm",
        old="    dx = dxhat / std + dvar * 2 * xhat * std / N + dmu / N\n",
        new="    dx = dxhat / std\n",
        expect=frozenset({"x"}), geometry="mode=train",
    ),
    Mutant(
        name="batchnorm: dx misses the variance path (dvar term)",
        source=LOOPS, spec="batchnorm",
        old="    dx = dxhat / std + dvar * 2 * xhat * std / N + dmu / N\n",
        new="    dx = dxhat / std + dmu / N\n",
        expect=frozenset({"x"}), geometry="mode=train",
    ),
    Mutant(
        name="batchnorm: dx misses the mean path (dmu term)",
        source=LOOPS, spec="batchnorm",
        old="    dx = dxhat / std + dvar * 2 * xhat * std / N + dmu / N\n",
        new="    dx = dxhat / std + dvar * 2 * xhat * std / N\n",
        expect=frozenset({"x"}), geometry="mode=train",
    ),
    Mutant(
        name="batchnorm: dgamma not summed over the batch (shape (N, D))",
        source=LOOPS, spec="batchnorm",
        old="    dbeta = np.sum(dout, axis=0)\n    dgamma = np.sum(dout * xhat, axis=0)\n",
        new="    dbeta = np.sum(dout, axis=0)\n    dgamma = dout * xhat\n",
        expect=frozenset({"gamma"}), diagnosis="must be summed over them", geometry="mode=train",
    ),
    Mutant(
        name="batchnorm: dgamma from the centred x instead of xhat (wrong cached tensor)",
        source=NORM, spec="batchnorm",
        old="    dgamma = np.sum(dout * xhat, axis=0)\n    dxhat = dout * gamma\n    if mode == \"test\":\n"
            "        return dxhat * inv_std, dgamma, dbeta\n",
        new="    dgamma = np.sum(dout * xhat, axis=0)\n    dxhat = dout * gamma\n    if mode == \"test\":\n"
            "        return dxhat * inv_std, dgamma, dbeta\n    dgamma = np.sum(dout * xmu, axis=0)\n",
        expect=frozenset({"gamma"}), geometry="mode=train",
    ),
    Mutant(
        name="batchnorm: sign error in the derivative of 1/std",
        source=NORM, spec="batchnorm",
        old="    dstd = -dinv_std / (std * std)  # inv_std = 1 / std\n",
        new="    dstd = dinv_std / (std * std)  # inv_std = 1 / std\n",
        expect=frozenset({"x"}), geometry="mode=train",
    ),
    Mutant(
        name="batchnorm: dgamma and dbeta returned in swapped order",
        source=NORM, spec="batchnorm",
        old="    dx = dxmu + dmu / n  # mu = mean(x)\n    return dx, dgamma, dbeta\n",
        new="    dx = dxmu + dmu / n  # mu = mean(x)\n    return dx, dbeta, dgamma\n",
        expect=frozenset({"gamma", "beta"}), geometry="mode=train",
    ),
    Mutant(
        name="batchnorm: unbiased variance (N - 1) in the forward, backward consistent with it",
        source=LOOPS, spec="batchnorm",
        old=_BN_LOOPS,
        new=_replace(_BN_LOOPS, ("x.var(axis=0)", "x.var(axis=0, ddof=1)"),
                     ("* std / N +", "* std / (N - 1) +")),
        expect=frozenset({"forward"}), geometry="mode=train",
    ),
    Mutant(
        name="batchnorm: eps added outside the square root, sqrt(var) + eps",
        source=LOOPS, spec="batchnorm",
        old="        var = x.var(axis=0)\n        std = np.sqrt(var + eps)\n",
        new="        var = x.var(axis=0)\n        std = np.sqrt(var) + eps\n",
        expect=frozenset({"forward", "x"}), geometry="mode=train",
    ),
    Mutant(
        name="batchnorm: one-pass variance E[x^2] - E[x]^2 computed in float32",
        source=LOOPS, spec="batchnorm",
        old="        var = x.var(axis=0)\n",
        new="        x32 = x.astype(np.float32)\n"
            "        var = np.mean(x32 * x32, axis=0) - np.mean(x32, axis=0) ** 2\n",
        expect=frozenset({"forward"}), geometry="mode=train",
    ),
    # ---- batchnorm_alt (closed-form backward) ----------------------------------------------
    Mutant(
        name="batchnorm_alt: dbeta averaged over the batch instead of summed",
        source=LOOPS, spec="batchnorm_alt",
        old="    dbeta = dout.sum(axis=0)\n",
        new="    dbeta = dout.mean(axis=0)\n",
        expect=frozenset({"beta"}), diagnosis="of the true gradient (N = ", geometry="mode=train",
    ),
    Mutant(
        name="batchnorm_alt: closed form missing the 1/N factor",
        source=LOOPS, spec="batchnorm_alt",
        old="xhat * np.sum(dxhat * xhat, axis=0)) / (N * std)\n",
        new="xhat * np.sum(dxhat * xhat, axis=0)) / std\n",
        expect=frozenset({"x"}), diagnosis="(N = ", geometry="mode=train",
    ),
    # ---- spatial batchnorm -----------------------------------------------------------------
    Mutant(
        name="spatial_batchnorm: reshape to (N*H*W, C) without moving C last (mixes channels and positions)",
        source=NORM, spec="spatial_batchnorm",
        old=_SBN,
        new=_replace(_SBN, ("x.transpose(0, 2, 3, 1).reshape(n * h * w, c)", "x.reshape(n * h * w, c)"),
                     ("out.reshape(n, h, w, c).transpose(0, 3, 1, 2)", "out.reshape(x.shape)"),
                     ("dout.transpose(0, 2, 3, 1).reshape(n * h * w, c)", "dout.reshape(n * h * w, c)"),
                     ("dx.reshape(n, h, w, c).transpose(0, 3, 1, 2)", "dx.reshape(n, c, h, w)")),
        expect=frozenset({"forward"}),
    ),
    Mutant(
        name="spatial_batchnorm: backward reshapes dout without the transpose",
        source=NORM, spec="spatial_batchnorm",
        old="    flat = dout.transpose(0, 2, 3, 1).reshape(n * h * w, c)\n",
        new="    flat = dout.reshape(n * h * w, c)\n",
        expect=frozenset({"x", "gamma", "beta"}),
    ),
    # ---- layernorm -------------------------------------------------------------------------
    Mutant(
        name="layernorm: backward copied from batchnorm (sums over the batch axis)",
        source=LOOPS, spec="layernorm",
        old="    dx = (D * dxhat - dxhat.sum(axis=1, keepdims=True)\n"
            "          - xhat * np.sum(dxhat * xhat, axis=1, keepdims=True)) / (D * std)\n",
        new="    dx = (D * dxhat - dxhat.sum(axis=0)\n"
            "          - xhat * np.sum(dxhat * xhat, axis=0)) / (D * std)\n",
        expect=frozenset({"x"}),
    ),
    Mutant(
        name="layernorm: dgamma summed over the feature axis instead of the batch",
        source=LOOPS, spec="layernorm",
        old="    D = dout.shape[1]\n    dgamma = np.sum(dout * xhat, axis=0)\n",
        new="    D = dout.shape[1]\n    dgamma = np.sum(dout * xhat, axis=1)\n",
        expect=frozenset({"gamma"}), diagnosis="must have the shape of gamma",
    ),
    # ---- spatial groupnorm -----------------------------------------------------------------
    Mutant(
        name="spatial_groupnorm: dgamma of shape (C,) instead of (1, C, 1, 1) (keepdims forgotten)",
        source=NORM, spec="spatial_groupnorm",
        old="    dgamma = np.sum(dout * xhat, axis=(0, 2, 3), keepdims=True)\n",
        new="    dgamma = np.sum(dout * xhat, axis=(0, 2, 3))\n",
        expect=frozenset({"gamma"}), diagnosis="keepdims",
    ),
    Mutant(
        name="spatial_groupnorm: backward means over the whole sample, ignoring the groups",
        source=NORM, spec="spatial_groupnorm",
        old="xhat.reshape(grouped), inv_std, (2, 3, 4))\n",
        new="xhat.reshape(grouped), inv_std, (1, 2, 3, 4))\n",
        expect=frozenset({"x"}), geometry="G=2",
    ),
    Mutant(
        name="spatial_groupnorm: statistics per channel (instance norm) instead of per group, "
             "backward consistent",
        source=NORM, spec="spatial_groupnorm",
        old=_GN,
        new=_replace(_GN, ("_standardise(grouped, (2, 3, 4), eps)", "_standardise(grouped, (3, 4), eps)"),
                     ("inv_std, (2, 3, 4))", "inv_std, (3, 4))")),
        expect=frozenset({"forward"}),
    ),
    Mutant(
        name="spatial_groupnorm: gamma left out of dxhat",
        source=NORM, spec="spatial_groupnorm",
        old="_standardise_backward((dout * gamma).reshape(grouped)",
        new="_standardise_backward(dout.reshape(grouped)",
        expect=frozenset({"x"}),
    ),
    # ---- dropout ---------------------------------------------------------------------------
    Mutant(
        name="dropout: backward draws a new mask",
        source=LOOPS, spec="dropout",
        old="    if dropout_param[\"mode\"] == \"train\":\n        return dout * mask\n",
        new="    if dropout_param[\"mode\"] == \"train\":\n"
            "        p = dropout_param[\"p\"]\n"
            "        return dout * (np.random.rand(*dout.shape) < p) / p\n",
        expect=frozenset({"x"}), diagnosis="the mask selects the wrong entries", geometry="mode=train",
    ),
    Mutant(
        name="dropout: backward draws a new mask from an unseeded generator",
        source=DROPOUT, spec="dropout",
        old="    return dout * mask\n",
        new="    p = cache[0][\"p\"]\n"
            "    return dout * (np.random.default_rng().random(dout.shape) < p) / p\n",
        expect=frozenset({"contract:nondeterministic"}), geometry="mode=train",
        # The shrunk case is tiny, so a fresh mask agrees with the forward's by chance: its
        # contract checks may or may not see the redraw (all repeats agreeing by chance look
        # like a backward nonlinear in dout), and dx may or may not differ there.
        may=frozenset({"x", "contract:nondeterministic_backward", "contract:nonlinear_backward"}),
    ),
    Mutant(
        name="dropout: backward forgets the 1/p scale (mask kept boolean)",
        source=LOOPS, spec="dropout",
        old="        mask = (np.random.rand(*x.shape) < p) / p\n        out = x * mask\n",
        new="        mask = np.random.rand(*x.shape) < p\n        out = x * mask / p\n",
        expect=frozenset({"x"}), geometry="mode=train",
    ),
    Mutant(
        name="dropout: mask applied in test mode too",
        source=DROPOUT, spec="dropout",
        old="    if mode == \"test\":\n        return x.copy(), (dropout_param, None)\n",
        new="",
        expect=frozenset({"forward"}), diagnosis="test mode must return x unchanged", geometry="mode=test",
    ),
]

VARIANTS: list[Variant] = [
    Variant(
        name="batchnorm: dx in the closed form inside the staged backward",
        source=LOOPS, spec="batchnorm",
        old="    dx = dxhat / std + dvar * 2 * xhat * std / N + dmu / N\n",
        new="    dx = (dxhat - dxhat.mean(axis=0) - xhat * np.mean(dxhat * xhat, axis=0)) / std\n",
    ),
    Variant(
        name="batchnorm: two-pass variance written out (complex-step safe)",
        source=LOOPS, spec="batchnorm",
        old="        var = x.var(axis=0)\n",
        new="        var = np.mean((x - mu) ** 2, axis=0)\n",
    ),
    Variant(
        name="batchnorm_alt: float32 internals (statistics in float32, cast back)",
        source=LOOPS, spec="batchnorm_alt",
        old="        mu = x.mean(axis=0)\n        var = x.var(axis=0)\n        std = np.sqrt(var + eps)\n"
            "        xhat = (x - mu) / std\n",
        new="        x32 = x.astype(np.float32)\n        mu = x32.mean(axis=0)\n"
            "        var = x32.var(axis=0)\n        std = np.sqrt(var + np.float32(eps))\n"
            "        xhat = ((x32 - mu) / std).astype(x.dtype)\n",
    ),
    Variant(
        name="layernorm: batchnorm of the transpose (the CS231n trick)",
        source=NORM, spec="layernorm",
        old=_LN,
        new=_replace(
            _LN,
            ("    xhat, _, _, inv_std = _standardise(x, (1,), eps)\n    return gamma * xhat + beta, "
             "(xhat, inv_std, gamma)\n",
             "    n = x.shape[0]\n"
             "    xhat_t, bn_cache = batchnorm_forward(x.T, np.ones(n), np.zeros(n), {\"mode\": \"train\", "
             "\"eps\": eps})\n"
             "    return gamma * xhat_t.T + beta, (xhat_t.T, bn_cache, gamma)\n"),
            ("    xhat, inv_std, gamma = cache\n"
             "    dx = _standardise_backward(dout * gamma, xhat, inv_std, (1,))\n",
             "    xhat, bn_cache, gamma = cache\n"
             "    dx = batchnorm_backward_alt((dout * gamma).T, bn_cache)[0].T\n"),
        ),
    ),
    Variant(
        name="spatial_batchnorm: channels-first layout (C, N*H*W) and the transposed batchnorm",
        source=NORM, spec="spatial_batchnorm",
        old=_SBN,
        new=_replace(
            _SBN,
            ("x.transpose(0, 2, 3, 1).reshape(n * h * w, c)",
             "x.transpose(1, 0, 2, 3).reshape(c, -1).T"),
            ("out.reshape(n, h, w, c).transpose(0, 3, 1, 2)",
             "out.T.reshape(c, n, h, w).transpose(1, 0, 2, 3)"),
            ("dout.transpose(0, 2, 3, 1).reshape(n * h * w, c)",
             "dout.transpose(1, 0, 2, 3).reshape(c, -1).T"),
            ("dx.reshape(n, h, w, c).transpose(0, 3, 1, 2)",
             "dx.T.reshape(c, n, h, w).transpose(1, 0, 2, 3)"),
        ),
    ),
    Variant(
        name="spatial_groupnorm: dgamma and dbeta by einsum",
        source=NORM, spec="spatial_groupnorm",
        old="    dgamma = np.sum(dout * xhat, axis=(0, 2, 3), keepdims=True)\n"
            "    dbeta = np.sum(dout, axis=(0, 2, 3), keepdims=True)\n",
        new="    dgamma = np.einsum(\"nchw,nchw->c\", dout, xhat).reshape(1, c, 1, 1)\n"
            "    dbeta = np.einsum(\"nchw->c\", dout).reshape(1, c, 1, 1)\n",
    ),
    Variant(
        name="dropout: mask from np.random.default_rng(seed).binomial instead of the legacy global seed",
        source=LOOPS, spec="dropout",
        old="    if \"seed\" in dropout_param:\n        np.random.seed(dropout_param[\"seed\"])\n"
            "    mask = None\n    if mode == \"train\":\n        mask = (np.random.rand(*x.shape) < p) / p\n",
        new="    rng = np.random.default_rng(dropout_param.get(\"seed\"))\n    mask = None\n"
            "    if mode == \"train\":\n        mask = rng.binomial(1, p, size=x.shape) / p\n",
    ),
    Variant(
        name="dropout: reference with the legacy RandomState generator",
        source=DROPOUT, spec="dropout",
        old="    rng = np.random.default_rng(seed)\n    real = np.real(x).dtype\n"
            "    mask = (rng.random(np.shape(x)) < p).astype(real) / real.type(p)\n",
        new="    rng = np.random.RandomState(seed)\n    real = np.real(x).dtype\n"
            "    mask = (rng.rand(*np.shape(x)) < p).astype(real) / real.type(p)\n",
    ),
    Variant(
        name="dropout: backward regenerates the mask from the same seed",
        source=LOOPS, spec="dropout",
        old="    if dropout_param[\"mode\"] == \"train\":\n        return dout * mask\n",
        new="    if dropout_param[\"mode\"] == \"train\":\n"
            "        np.random.seed(dropout_param[\"seed\"])\n"
            "        p = dropout_param[\"p\"]\n"
            "        return dout * ((np.random.rand(*dout.shape) < p) / p)\n",
    ),
]

# Correct rewrites with a hazard: they pass, with exactly these warnings.
WARNED = [
    Warned(
        name="dropout: p used as the DROP probability (pre-2019 convention)",
        source=LOOPS, spec="dropout",
        old="        mask = (np.random.rand(*x.shape) < p) / p\n",
        new="        mask = (np.random.rand(*x.shape) >= p) / (1 - p)\n",
        expect=frozenset({ViolationKind.CONVENTION}),
        diagnosis="probability of DROPPING a unit (the course up to 2017)",
    ),
    Warned(
        name="batchnorm: test mode caches like train mode, so backward uses the batch-statistics formula",
        source=LOOPS, spec="batchnorm",
        old='        cache = ("test", gamma, std, xhat)\n',
        new="        cache = (xhat, gamma, std)\n",
        expect=frozenset({ViolationKind.TEST_MODE_BACKWARD}), diagnosis="judged by its forward here",
    ),
    Warned(
        name="dropout: backward multiplies dout in place",
        source=LOOPS, spec="dropout",
        old="    if dropout_param[\"mode\"] == \"train\":\n        return dout * mask\n",
        new="    if dropout_param[\"mode\"] == \"train\":\n        dout *= mask\n        return dout\n",
        expect=frozenset({ViolationKind.DOUT_MUTATED}), diagnosis="wrote into the upstream gradient",
    ),
]
