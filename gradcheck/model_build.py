"""Building a student's model small, seeded and in float64, from its own signature.

Course years name the constructor's arguments differently; each concept (the input size,
the weight scale, the normalisation, dropout) is passed under whichever name the
constructor has. A required argument gradcheck does not know is a :class:`BuildError`.
"""

from __future__ import annotations

import copy
import inspect
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import reference_layers as ref
from gradcheck.contract import user_traceback

__all__ = ["REG", "BuildError", "Built", "build", "parameters_of", "reference_params"]

Factors = tuple[float, ...]  # of reg * sum(W**2) in the loss: 1.0, 0.5

REG = 0.3  # every model is checked with its regularisation on
_N = 4
_ALIASES = {
    "input": ("input_dim", "input_size", "input_dims"),
    "hidden": ("hidden_dim", "hidden_size"),
    "classes": ("num_classes", "output_size"),
    "scale": ("weight_scale", "std"),
}
_VOCABULARY = ["<NULL>", "<START>", "<END>", "a", "cat", "on", "mat"]


class BuildError(Exception):
    """The model could not be built; the message says why, in the student's terms."""


class _WithReg:
    """Assignment 1's ``TwoLayerNet.loss(X, y, reg)`` seen as ``loss(X, y)`` with reg on."""

    def __init__(self, model: Any, reg: float) -> None:
        self.model, self.reg, self.params = model, reg, model.params

    def loss(self, X: Any, y: Any) -> Any:
        return self.model.loss(X, y, reg=self.reg)


@dataclass
class Built:
    """A model ready to check: ``model.loss(X, y)``, and the losses a right model may give."""

    model: Any
    X: Any
    y: Any
    settings: dict[str, Any]
    references: list[Any] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # losses a right model of another convention gives, which the course does not accept
    others: list[tuple[str, Any]] = field(default_factory=list)

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.settings.items())


def _settings(name: str, config: str, parameters: dict[str, inspect.Parameter],
              seed: int) -> dict[str, Any]:
    """The constructor's keyword arguments for ``name`` in ``config``."""
    concepts: dict[str, Any] = {"input": 5, "hidden": 4, "classes": 3, "scale": 0.5}
    if name == "FullyConnectedNet":
        concepts.pop("hidden")
        concepts["hidden_dims"] = [4, 3]
    if name == "ThreeLayerConvNet":
        concepts.update(input=(2, 6, 6), hidden=4, scale=0.3, num_filters=3, filter_size=3)
    if name == "DeepConvNet":  # EECS 498/598: 3x3 convolutions, 2x2 pools after layers 0 and 2
        concepts = {"input": (2, 4, 4), "classes": 3, "scale": 0.3, "num_filters": [3, 3, 3],
                    "max_pools": [0, 2]}
    if name == "CaptioningRNN":
        concepts = {"word_to_idx": {w: i for i, w in enumerate(_VOCABULARY)}, "input": 4,
                    "wordvec_dim": 3, "hidden": 5, "cell_type": config}
    kwargs: dict[str, Any] = {}
    for concept, value in concepts.items():
        for alias in _ALIASES.get(concept, (concept,)):
            if alias in parameters:
                kwargs[alias] = value
                break
    kwargs.update({k: v for k, v in (("reg", REG), ("dtype", np.float64), ("seed", seed))
                   if k in parameters})
    if "normalization" in parameters and config.split(",")[0] in ("batchnorm", "layernorm"):
        kwargs["normalization"] = config.split(",")[0]
    for flag in ("use_batchnorm", "batchnorm"):
        if flag in parameters and config.startswith("batchnorm"):
            kwargs[flag] = True
    if "dropout" in config:
        kwargs["dropout_keep_ratio" if "dropout_keep_ratio" in parameters else "dropout"] = 0.5
    return kwargs


def parameters_of(cls: type) -> dict[str, inspect.Parameter]:
    """The constructor's parameters (without ``self``); none when it has no signature."""
    try:
        return dict(inspect.signature(cls).parameters)
    except (TypeError, ValueError):
        return {}


def _construct(cls: type, kwargs: dict[str, Any], seed: int) -> Any:
    parameters = parameters_of(cls)
    unknown = [p.name for p in parameters.values()
               if p.default is inspect.Parameter.empty and p.name not in kwargs
               and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if unknown:
        raise BuildError(f"{cls.__name__}.__init__ requires {', '.join(unknown)}, which gradcheck "
                         "does not know how to set")
    np.random.seed(seed)  # noqa: NPY002 - the course's constructors draw from the global generator
    # a class in the worker process: seeded there (see gradcheck.remote.RemoteClass)
    make = cls.with_global_seed(seed) if hasattr(cls, "with_global_seed") else cls
    try:
        model = make(**kwargs)
    except (Exception, SystemExit) as exc:
        raise BuildError(f"{cls.__name__}({_call_text(kwargs)}) raised {type(exc).__name__}: "
                         f"{exc}\n{user_traceback(exc)}") from None
    params = getattr(model, "params", None)
    if not isinstance(params, dict) or not params:
        raise BuildError(f"{cls.__name__}({_call_text(kwargs)}) has no parameters in model.params "
                         "(an empty dict: the constructor is not written yet?)")
    rng = np.random.default_rng(seed)
    for key, value in params.items():
        if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
            params[key] = value.astype(np.float64)
            if value.size and not np.any(value):
                # Zero biases put every unit whose inputs a ReLU turned off on the kink of
                # the next ReLU; small random ones keep the check away from kinks.
                params[key] = params[key] + 0.1 * rng.standard_normal(value.shape)
    return model


def _call_text(kwargs: dict[str, Any]) -> str:
    def shown(value: Any) -> str:  # a dtype as its name: torch's models get torch's own
        numpy_type = isinstance(value, type) and issubclass(value, np.generic)
        return np.dtype(value).name if numpy_type else repr(value)

    return ", ".join(f"{k}={shown(v)}" for k, v in kwargs.items() if k != "word_to_idx")


def _input_shape(kwargs: dict[str, Any]) -> tuple[int, ...]:
    """The shape of a batch for the input size the model was built with."""
    size = next((kwargs[a] for a in _ALIASES["input"] if a in kwargs), 5)
    return (_N, *size) if isinstance(size, tuple) else (_N, size)


def build(cls: type, config: str, seed: int, factors: dict[str, Factors] | None = None) -> Built:
    """``cls`` built small in ``config``, with data and the reference losses. ``factors``:
    the factors of ``reg * sum(W**2)`` the course accepts in each model's loss (CS231n: 1 and
    0.5, course years differ)."""
    name = cls.__name__
    parameters = parameters_of(cls)
    kwargs = _settings(name, config, parameters, seed)
    model = _construct(cls, kwargs, seed)
    rng = np.random.default_rng(seed)
    settings = {k: v for k, v in kwargs.items() if k not in ("word_to_idx", "dtype", "seed")}
    if name == "CaptioningRNN":
        features = rng.standard_normal((3, kwargs.get("input_dim", 4)))
        captions = rng.integers(0, len(_VOCABULARY), size=(3, 5))
        captions[:, 0] = 1  # <START>
        captions[0, -2:] = 0  # <NULL>: masked out of the loss
        built = Built(model, features, captions, settings)
    else:
        built = Built(model, rng.standard_normal(_input_shape(kwargs)), rng.integers(0, 3, size=_N), settings)
    if "reg" in inspect.signature(model.loss).parameters and "reg" not in kwargs:
        built.model = _WithReg(model, REG)
        settings["loss reg"] = REG
    accepted = (factors or {}).get(name, (1.0, 0.5))
    built.references, note = _references(name, config, built, kwargs, accepted)
    if built.references:
        others = tuple(f for f in (1.0, 0.5) if f not in accepted)
        built.others = [(_penalty(f), loss) for f, loss in
                        zip(others, _references(name, config, built, kwargs, others)[0])]
    built.notes += [note] if note else []
    return built


def _penalty(factor: float) -> str:
    return "reg * sum(W**2)" if factor == 1.0 else f"{factor:g} * reg * sum(W**2)"


def _references(name: str, config: str, built: Built, kwargs: dict[str, Any],
                factors: Factors) -> tuple[list[Any], str]:
    """The losses a right model gives with these parameters (one per factor of the
    regularisation), or why none is compared."""
    params = reference_params(built.model.params)
    X, y = built.X, built.y
    try:
        if name == "CaptioningRNN":
            return [ref.captioning_rnn_loss(params, X, y, config, 0)], ""
        if "dropout" in config:
            return [], ("the loss is not compared with the reference model's: dropout masks depend "
                        "on the random generator your dropout layer uses")
        if name == "ThreeLayerConvNet":
            return [ref.three_layer_convnet_loss(params, X, y, REG, f) for f in factors], ""
        if name == "DeepConvNet":
            numbered = _numbered(params)
            return [ref.deep_convnet_loss(numbered, X, y, REG, kwargs["max_pools"], config == "batchnorm", f)
                    for f in factors], ""
        norm = config if config in ("batchnorm", "layernorm") else None
        return [ref.fully_connected_net_loss(params, X, y, REG, norm, f) for f in factors], ""
    except (KeyError, ValueError, IndexError) as exc:
        return [], (f"the loss is not compared with the reference model's: your parameters are not "
                    f"the course's ({type(exc).__name__}: {exc})")


def reference_params(params: dict[str, Any]) -> dict[str, Any]:
    """A copy of a model's parameters for the reference model: biases, gammas and betas made
    of shape ``(1, D)`` as the ``(D,)`` vectors the reference layers take (the course's layers
    broadcast either)."""
    params = copy.deepcopy(params)
    return {k: v.reshape(-1) if isinstance(v, np.ndarray) and v.ndim == 2 and v.shape[0] == 1
            and re.fullmatch(r"(b|gamma|beta)_?\d+", str(k)) else v for k, v in params.items()}


def _numbered(params: dict[str, Any]) -> dict[str, Any]:
    """EECS 498/598's DeepConvNet parameters as ``W1``, ``b1``, ``gamma1``, ... from the first
    layer on: its template names no keys, and students write ``W_1`` or count from ``W0``."""
    found = {k: re.fullmatch(r"(W|b|gamma|beta)_?(\d+)", str(k)) for k in params}
    layers = sorted({int(m.group(2)) for m in found.values() if m})
    return {f"{m.group(1)}{layers.index(int(m.group(2))) + 1}": params[k] for k, m in found.items() if m}
