"""Independent labels for the course's models, from torch and the labeller's own numerics
(never gradcheck).

``python -m benchmarks.grading.label_models FILE OUT`` imports one ``neural_net.py``,
``fc_net.py`` or ``cnn.py`` as the member of its ``cs231n`` package it is (the student's
own ``layers.py`` and ``layer_utils.py`` beside it), builds each of ``TwoLayerNet``,
``FullyConnectedNet`` (plain, with each normalisation and dropout its constructor offers)
and ``ThreeLayerConvNet`` small, in float64, from its own signature, and labels each
configuration:

- the loss against the same architecture in torch with the student's parameters, for
  ``reg * sum(W**2)`` or ``0.5 * reg * sum(W**2)`` over the weight matrices (not for
  dropout, whose masks are the student's);
- every parameter's gradient against torch autograd when the loss agrees, else against
  central differences of the student's own loss (the global generator reseeded before each
  call, so a dropout mask is the same in every call).

Run by :mod:`benchmarks.grading.course_run` in a subprocess, one per file.
"""

from __future__ import annotations

import importlib
import inspect
import json
import signal
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

MODELS = ("TwoLayerNet", "FullyConnectedNet", "ThreeLayerConvNet")
REG = 0.2
N, D, C = 5, 6, 4
RTOL_LOSS, RTOL_GRAD = 1e-6, 1e-5
SEED = 7
EXTENSION = ("im2col_cython", "col2im_cython", "col2im_6d_cython", "im2col_6d_cython")
NUMPY_REMOVED = ("argument 'newshape'", "has no attribute 'int'", "has no attribute 'float'",
                 "has no attribute 'mat'", "np.sum(generator)")
# Python 2 habits (int / int for a size, xrange, dict.iteritems): the course's language until 2017
PYTHON2 = ("object cannot be interpreted as an integer", "slice indices must be integers",
           "name 'xrange' is not defined", "has no attribute 'iteritems'", "has no attribute 'itervalues'")


class Unbuildable(Exception):
    """The constructor needs something the labeller does not know how to set."""


def configurations(cls: type) -> list[str]:
    if cls.__name__ != "FullyConnectedNet":
        return [""]
    params = inspect.signature(cls).parameters
    norms = (["batchnorm", "layernorm"] if "normalization" in params
             else ["batchnorm"] if "use_batchnorm" in params else [])
    dropout = "dropout" in params or "dropout_keep_ratio" in params
    return ["plain", *norms, *(["dropout"] if dropout else []),
            *([f"{norms[0]}, dropout"] if norms and dropout else [])]


def _kwargs(cls: type, config: str) -> dict[str, Any]:
    params = inspect.signature(cls).parameters
    conv = cls.__name__ == "ThreeLayerConvNet"
    wanted: dict[tuple[str, ...], Any] = {
        ("input_dim", "input_size"): (3, 8, 8) if conv else D,
        ("hidden_dim", "hidden_size"): 5, ("hidden_dims",): [5, 4],
        ("num_classes", "output_size"): C, ("weight_scale", "std"): 0.4,
        ("num_filters",): 3, ("filter_size",): 3, ("reg",): REG, ("dtype",): np.float64,
        ("seed",): SEED,
    }
    kwargs = {}
    for names, value in wanted.items():
        name = next((n for n in names if n in params), None)
        if name is not None:
            kwargs[name] = value
    norm = config.split(",")[0]
    if norm in ("batchnorm", "layernorm"):
        kwargs.update({"normalization": norm} if "normalization" in params else {"use_batchnorm": True})
    if "dropout" in config:
        kwargs.update({"dropout_keep_ratio": 0.6} if "dropout_keep_ratio" in params else {"dropout": 0.5})
    missing = [p.name for p in params.values() if p.default is p.empty and p.name not in kwargs
               and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if missing:
        raise Unbuildable(f"required {missing}")
    return kwargs


def _build(cls: type, config: str) -> Any:
    kwargs = _kwargs(cls, config)
    np.random.seed(SEED)  # noqa: NPY002 - the course's constructors draw from the global generator
    model = cls(**kwargs)
    rng = np.random.default_rng(SEED)
    for key, value in list(getattr(model, "params", {}).items()):
        if isinstance(value, np.ndarray) and np.issubdtype(value.dtype, np.floating):
            value = value.astype(np.float64)
            if not np.any(value):  # zero biases put units on ReLU kinks
                value = value + 0.1 * rng.standard_normal(value.shape)
            model.params[key] = value
    return model


def _loss(model: Any, X: np.ndarray, y: np.ndarray) -> tuple[Any, Any]:
    np.random.seed(SEED + 1)  # noqa: NPY002 - the same dropout mask in every call
    if "reg" in inspect.signature(model.loss).parameters and not hasattr(model, "reg"):
        return model.loss(X, y, reg=REG)  # type: ignore[no-any-return]
    return model.loss(X, y)  # type: ignore[no-any-return]


def _data(name: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    X = rng.standard_normal((N, 3, 8, 8) if name == "ThreeLayerConvNet" else (N, D))
    return X, rng.integers(0, C, size=N)


def _torch_loss(name: str, config: str, params: dict[str, torch.Tensor], X: np.ndarray, y: np.ndarray,
                factor: float) -> torch.Tensor:
    """The course's architecture in torch, on the student's parameters."""
    h = torch.tensor(X)
    if name == "ThreeLayerConvNet":
        w = params["W1"]
        h = F.max_pool2d(F.relu(F.conv2d(h, w, params["b1"].reshape(-1), padding=(w.shape[2] - 1) // 2)), 2)
        h = F.relu(h.reshape(len(X), -1) @ params["W2"] + params["b2"])
        scores, weights = h @ params["W3"] + params["b3"], ["W1", "W2", "W3"]
    else:
        layers = sum(1 for k in params if k[0] == "W" and k[1:].isdigit())
        for i in range(1, layers):
            h = h.reshape(len(X), -1) @ params[f"W{i}"] + params[f"b{i}"]
            # torch's norms take gamma and beta as (D,) vectors; students make them (D,) or (1, D)
            if config.startswith(("batchnorm", "layernorm")):
                gamma, beta = params[f"gamma{i}"].reshape(-1), params[f"beta{i}"].reshape(-1)
            if config.startswith("batchnorm"):
                h = F.batch_norm(h, None, None, gamma, beta, training=True, eps=1e-5)
            elif config.startswith("layernorm"):
                h = F.layer_norm(h, h.shape[1:], gamma, beta, eps=1e-5)
            h = F.relu(h)
        scores = h @ params[f"W{layers}"] + params[f"b{layers}"]
        weights = [f"W{i}" for i in range(1, layers + 1)]
    data = F.cross_entropy(scores, torch.tensor(y))
    return data + factor * REG * sum((params[w] * params[w]).sum() for w in weights)


def _reference(name: str, config: str, model: Any, X: np.ndarray, y: np.ndarray,
               loss: float) -> tuple[str, dict[str, np.ndarray] | None]:
    """``("ok", torch gradients)`` when the loss is the course's, ``("wrong", None)`` when it is
    not, ``("not compared", None)`` for dropout or parameters under other names."""
    if "dropout" in config:
        return "not compared", None
    for factor in (1.0, 0.5):
        params = {k: torch.tensor(np.asarray(v, dtype=np.float64), requires_grad=True)
                  for k, v in model.params.items() if isinstance(v, np.ndarray)}
        try:
            want = _torch_loss(name, config, params, X, y, factor)
        except (KeyError, RuntimeError, ValueError, IndexError):
            return "not compared", None
        if abs(float(want) - loss) <= RTOL_LOSS * max(1.0, abs(float(want))):
            want.backward()
            return "ok", {k: t.grad.numpy() if t.grad is not None else np.zeros(t.shape)
                          for k, t in params.items()}
    return "wrong", None


def _numeric(model: Any, X: np.ndarray, y: np.ndarray, h: float = 1e-5) -> dict[str, np.ndarray]:
    grads = {}
    for key, value in model.params.items():
        if not isinstance(value, np.ndarray) or not np.issubdtype(value.dtype, np.floating):
            continue
        grad = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            old = value[index]
            value[index] = old + h
            plus = float(_loss(model, X, y)[0])
            value[index] = old - h
            minus = float(_loss(model, X, y)[0])
            value[index] = old
            grad[index] = (plus - minus) / (2 * h)
        grads[key] = grad
    return grads


def _broadcasts_onto(got: np.ndarray, expected: np.ndarray) -> bool:
    """A gradient of the parameter's size whose shape broadcasts onto the parameter's: ``db``
    of shape (H,) for ``b`` of (1, H) trains under the course's solver (``w -= lr * dw``) and
    passes its notebook check (``rel_error`` broadcasts)."""
    try:
        return got.size == expected.size and np.broadcast_shapes(got.shape, expected.shape) == expected.shape
    except ValueError:
        return False


def _gradient_culprits(grads: Any, want: dict[str, np.ndarray]) -> tuple[list[str], dict[str, float]]:
    culprits, errors = [], {}
    for key, expected in want.items():
        got = grads.get(key) if isinstance(grads, dict) else None
        try:
            got = np.asarray(got, dtype=np.float64)
        except (TypeError, ValueError):
            got = None
        if got is not None and got.shape != expected.shape and _broadcasts_onto(got, expected):
            got = got.reshape(expected.shape)  # as the course's solver and rel_error apply it
        if got is None or got.shape != expected.shape:
            culprits.append(f"d{key}")
            continue
        # relative to the gradient's largest entry, with a floor: a gradient that is truly zero
        # (a bias before batch norm) comes out of central differences as round-off, ~1e-10
        scale = max(float(np.max(np.abs(expected), initial=0.0)), 1e-3)
        error = float(np.max(np.abs(got - expected), initial=0.0) / scale)
        errors[f"d{key}"] = error
        if error > RTOL_GRAD:
            culprits.append(f"d{key}")
    return culprits, errors


def _registration(model: Any, grads: Any, config: str) -> list[str]:
    """``["unregistered_params"]`` when a solver could not train the model: gradients for
    names that are not in ``model.params``, or a normalisation without its gamma in them."""
    names = set(grads) if isinstance(grads, dict) else set()
    norm = config.split(",")[0] in ("batchnorm", "layernorm")
    if names - set(model.params) or (norm and not any(k.startswith("gamma") for k in model.params)):
        return ["unregistered_params"]
    return []


def label_config(cls: type, config: str) -> dict[str, Any]:
    name = cls.__name__
    try:
        model = _build(cls, config)
    except Unbuildable as exc:
        return {"status": "unimplemented", "details": f"constructor: {exc}"}
    except Exception as exc:
        return _crash("constructor", exc)
    if not getattr(model, "params", None):
        return {"status": "unimplemented", "details": "no parameters"}
    X, y = _data(name)
    try:
        loss, grads = _loss(model, X, y)
        loss = float(np.asarray(loss, dtype=np.float64).reshape(()))
    except Exception as exc:
        return _crash("loss", exc)
    if not grads:
        return {"status": "unimplemented", "details": "loss returns no gradients"}
    forward, want = _reference(name, config, model, X, y, loss)
    if want is None:
        want = _numeric(model, X, y)
    culprits, errors = _gradient_culprits(grads, want)
    wrong_forward = forward == "wrong" or _test_mode_differs(name, model, X)
    culprits = (["forward"] if wrong_forward else []) + _registration(model, grads, config) + culprits
    details = f"loss {forward}" + (f"; wrong: {', '.join(culprits)}" if culprits else "")
    return {"status": "wrong" if culprits else "correct", "correct": not culprits, "culprits": culprits,
            "forward": forward, "gradient_errors": errors, "details": details}


def _test_mode_differs(name: str, model: Any, X: np.ndarray) -> bool:
    """Whether ``model.loss(X)`` (test mode, as the course's solver measures accuracy: running
    averages, no dropout) scores the last two samples otherwise alone than in the batch, or
    raises. After the train-mode calls, so that running averages exist."""
    if name == "CaptioningRNN":
        return False
    try:
        whole, alone = model.loss(X), model.loss(X[-2:])
    except Exception as exc:  # the solver's accuracy check raises the same
        text = f"{type(exc).__name__}: {exc}"
        return not any(n in text for n in (*EXTENSION, *NUMPY_REMOVED, *PYTHON2))
    if not (isinstance(whole, np.ndarray) and isinstance(alone, np.ndarray)) or whole.ndim != 2:
        return False
    gap = float(np.max(np.abs(whole[-2:] - alone)))
    return gap > 1e-8 * max(float(np.max(np.abs(whole[-2:]))), 1e-300)


def _crash(where: str, exc: BaseException) -> dict[str, Any]:
    text = f"{where}: {type(exc).__name__}: {exc}".splitlines()[0][:240]
    if any(name in text for name in EXTENSION):
        return {"status": "env_error", "env_status": "crash",
                "env_details": f"needs the compiled extension: {text}"}
    if any(name in text for name in NUMPY_REMOVED):  # the course year's NumPy had it
        return {"status": "env_error", "env_status": "crash", "env_details": f"removed from NumPy: {text}"}
    if any(name in text for name in PYTHON2):  # labelled apart, as label_classifiers does xrange
        return {"status": "env_error", "env_status": "crash", "env_details": f"Python 2: {text}"}
    return {"status": "crash", "correct": False, "culprits": ["forward"], "details": text}


def _import(path: Path) -> Any:
    """``path`` as the member of its ``cs231n`` package (its assignment folder on sys.path)."""
    parts = path.resolve().parts
    root = len(parts) - 1 - parts[::-1].index("cs231n")
    sys.path.insert(0, str(Path(*parts[:root])))
    return importlib.import_module(".".join([*parts[root:-1], path.stem]))


def label_file(path: Path) -> dict[str, Any]:
    warnings.simplefilter("ignore")
    np.seterr(all="ignore")
    try:
        module = _import(path)
    except BaseException as exc:
        return {"import": f"import_error: {type(exc).__name__}: {exc}".splitlines()[0][:300], "layers": {}}
    layers: dict[str, Any] = {}
    for name in MODELS:
        cls = vars(module).get(name)
        if not isinstance(cls, type) or cls.__module__ != module.__name__:
            continue
        for config in configurations(cls):
            label = f"{name}({config})" if config else name
            signal.alarm(120)
            try:
                layers[label] = label_config(cls, config)
            except TimeoutError:
                layers[label] = {"status": "crash", "correct": False, "culprits": ["timeout"],
                                 "details": "over 120 s"}
            finally:
                signal.alarm(0)
    return {"import": "ok", "layers": layers}


def _on_alarm(signum: int, frame: Any) -> None:
    raise TimeoutError


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGALRM, _on_alarm)
    path, out = Path(argv[0]), Path(argv[1])
    out.write_text(json.dumps(label_file(path), sort_keys=True, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
