"""Mutants and variants of the course's models (``TwoLayerNet`` of assignment 1 and of
``fc_net.py``, ``FullyConnectedNet`` in its configurations), edits of the student-style
package in ``tests/fixtures/assignment``, each checked inside a copy of that package (the
models import their layers from it). The names a verdict gives are the parameters whose
gradient is wrong (``W3``), ``forward`` for a loss unlike the reference model's, and
``contract:<kind>`` for a model a solver could not train."""

from __future__ import annotations

from benchmarks.mutants import Mutant, Variant, Warned
from gradcheck.kinds import ViolationKind

FC_NET = "tests/fixtures/assignment/cs231n/classifiers/fc_net.py"
NEURAL_NET = "tests/fixtures/assignment/cs231n/classifiers/neural_net.py"
LAYERS = "tests/fixtures/assignment/cs231n/layers.py"
CNN = "tests/fixtures/assignment/cs231n/classifiers/cnn.py"

_REG_LOOP = ("            loss += 0.5 * self.reg * np.sum(W * W)\n"
             "            grads['W%d' % i] += self.reg * W\n")
_NORM_INIT = ("                self.params['gamma%d' % (i + 1)] = np.ones(dims[i + 1])\n"
              "                self.params['beta%d' % (i + 1)] = np.zeros(dims[i + 1])\n")
_DROPOUT_FORWARD = ("            h, relu = relu_forward(h)\n            drop = None\n"
                    "            if self.use_dropout:\n"
                    "                h, drop = dropout_forward(h, self.dropout_param)\n")
_DROPOUT_BACKWARD = ("            if drop is not None:\n                dh = dropout_backward(dh, drop)\n"
                     "            dh = relu_backward(dh, relu)\n")

MUTANTS: list[Mutant] = [
    Mutant(
        name="FullyConnectedNet(batchnorm): batch norm left in train mode when y is None (loss(X) "
             "normalises with the batch's statistics)",
        source=FC_NET, spec="FullyConnectedNet(batchnorm)",
        old="            bn_param['mode'] = mode\n", new="            bn_param['mode'] = 'train'\n",
        expect=frozenset({"forward"}), diagnosis="depend on the rest of the batch",
    ),
    Mutant(
        name="FullyConnectedNet(dropout): dropout left on when y is None",
        source=FC_NET, spec="FullyConnectedNet(dropout)",
        old="        self.dropout_param['mode'] = mode\n",
        new="        self.dropout_param['mode'] = 'train'\n",
        expect=frozenset({"forward"}), diagnosis="depend on the rest of the batch",
    ),
    Mutant(
        name="FullyConnectedNet: no regularisation gradient on the last layer",
        source=FC_NET, spec="FullyConnectedNet(plain)",
        old=_REG_LOOP,
        new=("            loss += 0.5 * self.reg * np.sum(W * W)\n            if i < L:\n"
             "                grads['W%d' % i] += self.reg * W\n"),
        expect=frozenset({"W3"}),
    ),
    Mutant(  # the course corpus's 2020_Unlogicaly: the reference refused gamma (1, D), nothing compared
        name="FullyConnectedNet(batchnorm): gamma and beta of shape (1, D), the last layer left out of "
             "the regularisation",
        source=FC_NET, spec="FullyConnectedNet(batchnorm)",
        old="        for i in range(1, L + 1):\n", new="        for i in range(1, L):\n",
        also=(("np.ones(dims[i + 1])", "np.ones((1, dims[i + 1]))"),
              ("np.zeros(dims[i + 1])\n", "np.zeros((1, dims[i + 1]))\n")),
        expect=frozenset({"forward"}), diagnosis="built from the reference layers",
    ),
    Mutant(
        name="FullyConnectedNet: the last layer left out of the regularisation (loss and gradient)",
        source=FC_NET, spec="FullyConnectedNet(plain)",
        old="        for i in range(1, L + 1):\n", new="        for i in range(1, L):\n",
        expect=frozenset({"forward"}), diagnosis="built from the reference layers",
    ),
    Mutant(
        name="FullyConnectedNet: the regularisation gradient assigned with = (the data gradient lost)",
        source=FC_NET, spec="FullyConnectedNet(plain)",
        old="            grads['W%d' % i] += self.reg * W\n",
        new="            grads['W%d' % i] = self.reg * W\n",
        expect=frozenset({"W1", "W2", "W3"}),
    ),
    Mutant(
        name="FullyConnectedNet: dropout in the forward pass, its backward skipped",
        source=FC_NET, spec="FullyConnectedNet(dropout)",
        old="            if drop is not None:\n                dh = dropout_backward(dh, drop)\n", new="",
        expect=frozenset({"W1", "b1", "W2", "b2"}),
    ),
    Mutant(
        name="FullyConnectedNet: batchnorm's gamma and beta kept outside model.params",
        source=FC_NET, spec="FullyConnectedNet(batchnorm)",
        old=_NORM_INIT, new=_NORM_INIT.replace("self.params[", "self.norm_params["),
        also=(("        self.params = {}\n", "        self.params = {}\n        self.norm_params = {}\n"),
              ("self.params['gamma%d' % i], self.params['beta%d' % i]",
               "self.norm_params['gamma%d' % i], self.norm_params['beta%d' % i]")),
        expect=frozenset({"contract:unregistered_params"}), diagnosis="not in model.params",
    ),
    Mutant(
        name="FullyConnectedNet: normalization compared with 'batch_norm', so batchnorm never runs",
        source=FC_NET, spec="FullyConnectedNet(batchnorm)",
        old="            if self.normalization == 'batchnorm':\n                h, norm",
        new="            if self.normalization == 'batch_norm':\n                h, norm",
        also=(("            if self.normalization == 'batchnorm':\n                dh,",
               "            if self.normalization == 'batch_norm':\n                dh,"),),
        expect=frozenset({"forward", "gamma1", "beta1", "gamma2", "beta2"}),
    ),
    Mutant(
        name="FullyConnectedNet: layernorm's backward taken from batchnorm",
        source=FC_NET, spec="FullyConnectedNet(layernorm)",
        old="grads['beta%d' % i] = layernorm_backward(dh, norm)",
        new="grads['beta%d' % i] = batchnorm_backward(dh, norm)",
        # the last hidden layer's gamma and beta come out right: both backwards sum dout * x_hat
        expect=frozenset({"W1", "b1", "gamma1", "beta1", "W2", "b2"}),
    ),
    Mutant(
        # a 2025 student's: the model's loss is off by about 1e-6 relative on an ordinary
        # batch, the loss on a batch of small variance shows it
        name="FullyConnectedNet(batchnorm): its batchnorm_forward divides by sqrt(var) + 1e-12",
        source=LAYERS, checked=FC_NET, spec="FullyConnectedNet(batchnorm)",
        old='    eps = bn_param.get("eps", 1e-5)\n', new='    eps = bn_param.get("eps", 1e-12)\n',
        also=(("        std = np.sqrt(var + eps)\n", "        std = np.sqrt(var) + eps\n"),),
        expect=frozenset({"forward"}), diagnosis="scaled by 0.1",
    ),
    Mutant(
        name="TwoLayerNet (fc_net.py): no regularisation gradient on W1",
        source=FC_NET, spec="TwoLayerNet",
        old="        grads['W1'] += self.reg * self.params['W1']\n", new="",
        expect=frozenset({"W1"}),
    ),
    Mutant(
        name="TwoLayerNet (assignment 1): regularisation gradient reg * W2 for reg * sum(W**2)",
        source=NEURAL_NET, spec="TwoLayerNet",
        old="        grads['W2'] = hidden.T.dot(dscores) + 2 * reg * W2\n",
        new="        grads['W2'] = hidden.T.dot(dscores) + reg * W2\n",
        expect=frozenset({"W2"}),
    ),
    Mutant(
        name="TwoLayerNet (assignment 1): the hidden gradient not masked by the ReLU",
        source=NEURAL_NET, spec="TwoLayerNet",
        old="        dhidden = dscores.dot(W2.T) * (hidden > 0)\n",
        new="        dhidden = dscores.dot(W2.T)\n",
        expect=frozenset({"W1", "b1"}),
    ),
]

# The field corpus's 2024_Sangreal0616: a ThreeLayerConvNet whose convolution is the course's
# compiled im2col_cython, which has no complex signature, so the numerics fall back to finite
# differences. Its softmax adds 1e-7 to the denominator after shifting by the row maximum (the
# gradient misses the shift's share, about 1e-7 relative), which the joint direction's tight
# tolerance sends down the thorough path; there, a Richardson slope taken across ReLU and
# max-pool kinks a few probe steps away was read as round-off, steps widened, and the right
# model FAILED. The fixture's constructor draws what the student's did: the same kinks.
_CONV_RELU_POOL = """def _softmax_loss(x, y):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    p = e / (1e-7 + e.sum(axis=1, keepdims=True))
    rows = np.arange(x.shape[0])
    dx = p.copy()
    dx[rows, y] -= 1
    return -np.log(p[rows, y]).sum() / x.shape[0], dx / x.shape[0]


def _refuse_complex(*arrays):
    if any(np.iscomplexobj(a) for a in arrays):  # as a compiled, fused-type extension does
        raise TypeError('No matching signature found')


def _conv_relu_pool_forward(x, w, b):
    _refuse_complex(x, w, b)
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    cols = np.stack([xp[:, :, i:i + H, j:j + W] for i in range(HH) for j in range(WW)], axis=2)
    a = np.einsum('nckhw,fck->nfhw', cols, w.reshape(F, C, HH * WW)) + b[None, :, None, None]
    blocks = np.maximum(a, 0).reshape(N, F, H // 2, 2, W // 2, 2)
    out = blocks.max(axis=(3, 5))
    return out, (cols, w, a, blocks, out)


def _conv_relu_pool_backward(dout, cache):
    cols, w, a, blocks, out = cache
    F, C, HH, WW = w.shape
    winner = blocks == out[:, :, :, None, :, None]
    da = (winner * dout[:, :, :, None, :, None]).reshape(a.shape) * (a > 0)
    dw = np.einsum('nckhw,nfhw->fck', cols, da).reshape(w.shape)
    return dw, da.sum(axis=(0, 2, 3))


class ThreeLayerConvNet(object):
"""
_CNN_LOSS = """    def loss(self, X, y=None):
        W1, b1, W2, b2, W3, b3 = (self.params[k] for k in ('W1', 'b1', 'W2', 'b2', 'W3', 'b3'))
        pooled, conv_cache = _conv_relu_pool_forward(X, W1, b1)
        h, hidden_cache = affine_relu_forward(pooled, W2, b2)
        scores, scores_cache = affine_forward(h, W3, b3)
        if y is None:
            return scores
        loss, dscores = _softmax_loss(scores, y)
        loss += 0.5 * self.reg * sum(np.sum(W * W) for W in (W1, W2, W3))
        grads = {}
        dh, grads['W3'], grads['b3'] = affine_backward(dscores, scores_cache)
        dpooled, grads['W2'], grads['b2'] = affine_relu_backward(dh, hidden_cache)
        grads['W1'], grads['b1'] = _conv_relu_pool_backward(dpooled, conv_cache)
        for k in ('W1', 'W2', 'W3'):
            grads[k] += self.reg * self.params[k]
        return loss, grads
"""

VARIANTS: list[Variant] = [
    Variant(
        name="FullyConnectedNet(batchnorm): its batchnorm_forward's variance as E[x^2] - E[x]^2",
        source=LAYERS, checked=FC_NET, spec="FullyConnectedNet(batchnorm)",
        old="        var = x.var(axis=0)\n", new="        var = (x * x).mean(axis=0) - mu * mu\n",
    ),
    Variant(
        name="FullyConnectedNet: reg * sum(W**2) with gradient 2 * reg * W (the course since 2017)",
        source=FC_NET, spec="FullyConnectedNet(plain)",
        old=_REG_LOOP,
        new=("            loss += self.reg * np.sum(W * W)\n"
             "            grads['W%d' % i] += 2 * self.reg * W\n"),
    ),
    Variant(
        name="FullyConnectedNet: dropout before the ReLU (the masks commute)",
        source=FC_NET, spec="FullyConnectedNet(dropout)",
        old=_DROPOUT_FORWARD,
        new=("            drop = None\n            if self.use_dropout:\n"
             "                h, drop = dropout_forward(h, self.dropout_param)\n"
             "            h, relu = relu_forward(h)\n"),
        also=((_DROPOUT_BACKWARD,
               "            dh = relu_backward(dh, relu)\n            if drop is not None:\n"
               "                dh = dropout_backward(dh, drop)\n"),),
    ),
    Variant(
        name="FullyConnectedNet(batchnorm, dropout): parameters kept in float64 whatever dtype says",
        source=FC_NET, spec="FullyConnectedNet(batchnorm, dropout)",
        old="            self.params[k] = v.astype(dtype)\n",
        new="            self.params[k] = v.astype(np.float64)\n",
    ),
    Variant(
        name="TwoLayerNet (assignment 1): the softmax through log-sum-exp",
        source=NEURAL_NET, spec="TwoLayerNet",
        old="        loss = -np.sum(np.log(probs[np.arange(N), y])) / N\n",
        new=("        log_probs = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))\n"
             "        loss = -np.sum(log_probs[np.arange(N), y]) / N\n"),
    ),
    Variant(
        name="ThreeLayerConvNet: a compiled convolution (no complex step), 1e-7 in the softmax, kinks nearby",
        source=CNN, spec="ThreeLayerConvNet",
        old=("    def loss(self, X, y=None):\n        W1 = self.params['W1']\n"
             "        conv_param = {'stride': 1, 'pad': (W1.shape[2] - 1) // 2}\n"
             "        h, conv_cache = conv_relu_forward(X, W1, self.params['b1'], conv_param)\n"
             "        raise NotImplementedError(\"the pooling layer comes next\")\n"),
        new=_CNN_LOSS,
        also=(("class ThreeLayerConvNet(object):\n", _CONV_RELU_POOL),),
    ),
]

WARNED: list[Warned] = [
    Warned(
        name="TwoLayerNet (assignment 1): the loss returned as an array of shape (1, 1)",
        source=NEURAL_NET, spec="TwoLayerNet",
        old="        loss = -np.sum(np.log(probs[np.arange(N), y])) / N\n",
        new="        loss = -np.sum(np.log(probs[np.arange(N), y]), keepdims=True).reshape(1, 1) / N\n",
        expect=frozenset({ViolationKind.LOSS_SHAPE}), diagnosis="shape (1, 1)",
    ),
    Warned(  # the course corpus: five 2017-2018 models make b of shape (1, H)
        name="TwoLayerNet: biases of shape (1, H), their gradients of shape (H,) from affine_backward",
        source=FC_NET, spec="TwoLayerNet",
        old="        self.params['b1'] = np.zeros(hidden_dim)\n",
        new="        self.params['b1'] = np.zeros((1, hidden_dim))\n",
        expect=frozenset({ViolationKind.BROADCAST_GRADIENT}), diagnosis="grads['b1'] has shape (4,)",
    ),
]
