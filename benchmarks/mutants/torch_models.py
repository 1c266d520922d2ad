"""Patterns the torch-course corpus's models taught (EECS 498/598's ``TwoLayerNet`` ...
``DeepConvNet``, ``benchmarks/field_torch``), as our own edits of
``examples/torch_models_correct.py``, each checked inside a copy of ``examples/`` (the
models import their layers and the course's loss from the files beside them).

Bugs seen in real students' models: a hidden layer without its ReLU and an output layer
with one (forward and backward consistent, so only the loss shows them), no regularisation
at all, a regularisation in the loss with no gradient, the last layer left out of the
regularisation, batch norm's gamma regularised too. Correct rewrites seen: parameters named
``W_1`` (``DeepConvNet``'s template names no keys), ``FullyConnectedNet`` regularised with
``reg * sum(W**2)`` where its template asks for 0.5. Entries exist only where torch is
installed (an optional dependency).
"""

from __future__ import annotations

import importlib.util

from benchmarks.mutants import Mutant, Variant, Warned
from gradcheck.kinds import ViolationKind

SOURCE = "examples/torch_models_correct.py"
_TWO_LAYER_FORWARD = (
    '        hidden, hidden_cache = Linear_ReLU.forward(X, self.params["W1"], self.params["b1"])\n'
    '        scores, scores_cache = Linear.forward(hidden, self.params["W2"], self.params["b2"])\n')
_TWO_LAYER_BACKWARD = (
    '        dhidden, grads["W2"], grads["b2"] = Linear.backward(dscores, scores_cache)\n'
    '        _, grads["W1"], grads["b1"] = Linear_ReLU.backward(dhidden, hidden_cache)\n')
_REGULARISE = (
    "        loss = loss + factor * model.reg * torch.sum(w * w)\n"
    "        grads[key] = grads[key] + 2 * factor * model.reg * w\n")


def _relu(text: str, new: str) -> str:
    """``text`` with its layer class ``Linear_ReLU`` (or ``Linear``) replaced by ``new``."""
    old = "Linear.f" if new.startswith("Linear_ReLU") else "Linear_ReLU.f"
    return text.replace(old, new + ".f").replace(old.replace(".f", ".b"), new + ".b")


def _model(name: str, spec: str, old: str, new: str, **kw: object) -> Mutant:
    return Mutant(name=name, source=SOURCE, spec=spec, old=old, new=new, kind="torch_model",
                  **kw)  # type: ignore[arg-type]


_MUTANTS: list[Mutant] = [
    _model("torch TwoLayerNet: the hidden layer without its ReLU (forward and backward alike)",
           "TwoLayerNet", _TWO_LAYER_FORWARD, _relu(_TWO_LAYER_FORWARD, "Linear"),
           also=((_TWO_LAYER_BACKWARD, _relu(_TWO_LAYER_BACKWARD, "Linear")),),
           expect=frozenset({"forward"}), diagnosis="built from the reference layers"),
    _model("torch TwoLayerNet: a ReLU on the scores (forward and backward alike)",
           "TwoLayerNet", _TWO_LAYER_FORWARD, _relu(_TWO_LAYER_FORWARD, "Linear_ReLU"),
           also=((_TWO_LAYER_BACKWARD, _relu(_TWO_LAYER_BACKWARD, "Linear_ReLU")),),
           expect=frozenset({"forward"})),
    _model("torch FullyConnectedNet: no regularisation at all",
           "FullyConnectedNet(plain)", "        return _regularise(self, loss, grads, factor=0.5)",
           "        return loss, grads", expect=frozenset({"forward"})),
    _model("torch ThreeLayerConvNet: regularisation in the loss, none in the gradients",
           "ThreeLayerConvNet", _REGULARISE, _REGULARISE.replace("grads[key] + 2 * factor * model.reg * w",
                                                                 "grads[key]"),
           expect=frozenset({"W1", "W2", "W3"})),
    _model("torch DeepConvNet: the last layer left out of the regularisation (loss and gradient)",
           "DeepConvNet(plain)", '    for key in [k for k in model.params if k.startswith("W")]:\n',
           '    for key in [k for k in model.params if k.startswith("W")][:-1]:\n',
           expect=frozenset({"forward"})),
    _model("torch DeepConvNet(batchnorm): gamma regularised too (loss and gradient)",
           "DeepConvNet(batchnorm)", '    for key in [k for k in model.params if k.startswith("W")]:\n',
           '    for key in [k for k in model.params if k.startswith(("W", "gamma"))]:\n',
           expect=frozenset({"forward"})),
]

_VARIANTS: list[Variant] = [
    Variant(name="torch DeepConvNet(batchnorm): parameters named W_1, b_1, gamma_1, beta_1 (its template "
                 "prescribes no keys)",
            source=SOURCE, spec="DeepConvNet(batchnorm)", kind="torch_model",
            old='            self.params[f"W{i}"] = weight_scale * torch.randn(filters, C, 3, 3, **like)\n',
            new='            self.params[f"W_{i}"] = weight_scale * torch.randn(filters, C, 3, 3, **like)\n',
            also=(('f"b{i}"', 'f"b_{i}"'), ('f"gamma{i}"', 'f"gamma_{i}"'), ('f"beta{i}"', 'f"beta_{i}"'),
                  ('f"W{i}"', 'f"W_{i}"'), ('f"W{last}"', 'f"W_{last}"'), ('f"b{last}"', 'f"b_{last}"'))),
    Variant(name="torch FullyConnectedNet(plain): reg * sum(W**2) where the template asks for 0.5",
            source=SOURCE, spec="FullyConnectedNet(plain)", kind="torch_model",
            old="return _regularise(self, loss, grads, factor=0.5)",
            new="return _regularise(self, loss, grads, factor=1.0)"),
]

_WARNED: list[Warned] = [
    Warned(name="torch TwoLayerNet: a bias made without device= (fails when the course runs on cuda)",
           source=SOURCE, spec="TwoLayerNet", kind="torch_model",
           old='            "b1": torch.zeros(hidden_dim, dtype=dtype, device=device),\n',
           new='            "b1": torch.zeros(hidden_dim, dtype=dtype),\n',
           expect=frozenset({ViolationKind.DEVICE}), diagnosis="kept in model.params['b1']"),
]

_HAVE_TORCH = importlib.util.find_spec("torch") is not None
MUTANTS: list[Mutant] = _MUTANTS if _HAVE_TORCH else []
VARIANTS: list[Variant] = _VARIANTS if _HAVE_TORCH else []
WARNED: list[Warned] = _WARNED if _HAVE_TORCH else []
