"""Label the torch course's models independently of gradcheck, with torch autograd.

Called by :func:`benchmarks.field_torch.label.label_file` on every file of the corpus: each
of ``TwoLayerNet``, ``FullyConnectedNet`` (plain; with dropout when its constructor takes
it), ``ThreeLayerConvNet`` and ``DeepConvNet`` (plain and with batch norm) the file
defines is built small from keyword arguments of the course's own signature (sizes of our
choosing, float64, ``device='cpu'``, torch's generator seeded; biases the constructor
leaves at zero get small random values, which keep ReLUs and pools off their kinks), and
labelled:

- the loss of ``model.loss(X, y)`` against the course's architecture written in torch on
  the student's parameters (softmax cross-entropy plus ``reg * sum(W**2)`` over the
  weights; ``0.5 * reg`` accepted for ``FullyConnectedNet`` only, whose template asks for it
  while the other models' templates and notebook ask for no 0.5), rtol 1e-6; not with
  dropout, whose mask is the student's;
- every gradient against autograd of that loss (rtol 1e-5 of the gradient's largest entry,
  at least 1e-3: a bias before batch norm has a gradient of exactly 0), or, with dropout,
  against central differences of the student's own loss (torch's generator reseeded before
  every call, and the course's dropout seeds itself);
- gradients under names that are not in ``model.params``, or batch norm without its gamma
  in it, are wrong: the course's solver would never train them.

``unimplemented``: the course's template left as it is (no parameters, no gradients) or
``NotImplementedError``. A model that raises anything else is ``wrong``.
"""

from __future__ import annotations

import inspect
import re
import signal
from typing import Any

import torch
import torch.nn.functional as F

SEED = 7
REG = 0.2
N, CLASSES = 5, 4
RTOL_LOSS, RTOL_GRAD = 1e-6, 1e-5
FACTORS = {"TwoLayerNet": (1.0,), "FullyConnectedNet": (0.5, 1.0), "ThreeLayerConvNet": (1.0,),
           "DeepConvNet": (1.0,)}
_SETTINGS: dict[str, dict[str, Any]] = {
    "TwoLayerNet": {"input_dim": 6, "hidden_dim": 5, "weight_scale": 0.4},
    "FullyConnectedNet": {"hidden_dims": [5, 4], "input_dim": 6, "weight_scale": 0.4, "seed": SEED},
    "ThreeLayerConvNet": {"input_dims": (3, 8, 8), "num_filters": 3, "filter_size": 5, "hidden_dim": 5,
                          "weight_scale": 0.2},
    "DeepConvNet": {"input_dims": (3, 8, 8), "num_filters": [4, 4, 4], "max_pools": [0, 2],
                    "weight_scale": 0.3},
}


def configurations(cls: type) -> list[str]:
    params = inspect.signature(cls).parameters
    if cls.__name__ == "FullyConnectedNet":
        return ["plain", "dropout"] if "dropout" in params else ["plain"]
    if cls.__name__ == "DeepConvNet":
        return ["plain", "batchnorm"] if "batchnorm" in params else ["plain"]
    return [""]


def _build(cls: type, config: str) -> Any:
    kwargs = dict(_SETTINGS[cls.__name__], num_classes=CLASSES, reg=REG, dtype=torch.float64, device="cpu")
    if config == "dropout":
        kwargs["dropout"] = 0.4
    if config == "batchnorm":
        kwargs["batchnorm"] = True
    torch.manual_seed(SEED)
    model = cls(**kwargs)
    gen = torch.Generator().manual_seed(SEED)
    for key, value in list(getattr(model, "params", {}).items()):
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not value.any():
            model.params[key] = value + 0.1 * torch.randn(value.shape, generator=gen, dtype=value.dtype)
    return model


def _data(name: str) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(SEED + 1)
    dims = _SETTINGS[name].get("input_dims", (_SETTINGS[name].get("input_dim", 6),))
    X = torch.randn(N, *dims, generator=gen, dtype=torch.float64)
    return X, torch.randint(CLASSES, (N,), generator=gen)


def _scores(name: str, config: str, p: dict[str, torch.Tensor], X: torch.Tensor) -> torch.Tensor:
    """The course's architecture on the parameters ``p``."""
    if name == "ThreeLayerConvNet":
        w = p["W1"]
        h = F.max_pool2d(F.relu(F.conv2d(X, w, p["b1"], padding=(w.shape[2] - 1) // 2)), 2, 2)
        h = F.relu(h.reshape(len(X), -1) @ p["W2"] + p["b2"])
        return h @ p["W3"] + p["b3"]
    layers = sum(1 for k in p if k[0] == "W" and k[1:].isdigit())
    h = X
    for i in range(1, layers):
        if name == "DeepConvNet":
            h = F.conv2d(h, p[f"W{i}"], p[f"b{i}"], padding=1)
            if config == "batchnorm":
                h = F.batch_norm(h, None, None, p[f"gamma{i}"], p[f"beta{i}"], training=True, eps=1e-5)
            h = F.relu(h)
            h = F.max_pool2d(h, 2, 2) if i - 1 in _SETTINGS[name]["max_pools"] else h
        else:
            h = F.relu(h.reshape(len(X), -1) @ p[f"W{i}"] + p[f"b{i}"])
    return h.reshape(len(X), -1) @ p[f"W{layers}"] + p[f"b{layers}"]


def _numbered(p: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """DeepConvNet's parameters as W1, b1, gamma1, ... from the first layer on: its template
    names no keys, and students write W_1 or count from W0."""
    found = {k: re.fullmatch(r"(W|b|gamma|beta)_?(\d+)", str(k)) for k in p}
    layers = sorted({int(m.group(2)) for m in found.values() if m})
    return {f"{m.group(1)}{layers.index(int(m.group(2))) + 1}": p[k] for k, m in found.items() if m}


def _reference(name: str, config: str, model: Any, X: torch.Tensor, y: torch.Tensor,
               loss: float) -> tuple[str, dict[str, torch.Tensor] | None]:
    """``("ok", autograd gradients)`` when the loss is the course's, ``("wrong: ...", None)``
    when it is not, ``("not compared", None)`` with dropout."""
    if config == "dropout":
        return "not compared", None
    found = {}
    for factor in (1.0, 0.5):
        p = {k: v.detach().clone().requires_grad_(True) for k, v in model.params.items()
             if isinstance(v, torch.Tensor) and v.is_floating_point()}
        q = _numbered(p) if name == "DeepConvNet" else p
        try:
            weights = [k for k in q if k[0] == "W" and k[1:].isdigit()]
            want = F.cross_entropy(_scores(name, config, q, X), y) + factor * REG * sum(
                (q[w] * q[w]).sum() for w in weights)
        except (KeyError, RuntimeError, ValueError, IndexError) as exc:
            return f"wrong: the course's architecture on these parameters raises {exc}"[:200], None
        found[factor] = float(want.detach())
        if abs(found[factor] - loss) <= RTOL_LOSS * max(1.0, abs(found[factor])):
            if factor not in FACTORS[name]:
                return f"wrong: the loss has {factor:g} * reg * sum(W**2)", None
            want.backward()
            return "ok", {k: t.grad if t.grad is not None else torch.zeros_like(t) for k, t in p.items()}
    return f"wrong: loss {loss:.8g}, the course's architecture gives {found[FACTORS[name][0]]:.8g}", None


def _loss(model: Any, X: torch.Tensor, y: torch.Tensor) -> tuple[Any, Any]:
    torch.manual_seed(SEED + 2)
    return model.loss(X.clone(), y.clone())


def _numeric(model: Any, X: torch.Tensor, y: torch.Tensor, h: float = 1e-6) -> dict[str, torch.Tensor]:
    grads = {}
    for key, value in model.params.items():
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            continue
        value = model.params[key] = value.detach().clone()
        grad = torch.zeros_like(value)
        flat, out = value.view(-1), grad.view(-1)
        for i in range(flat.numel()):
            old = float(flat[i])
            flat[i] = old + h
            plus = float(_loss(model, X, y)[0])
            flat[i] = old - h
            minus = float(_loss(model, X, y)[0])
            flat[i] = old
            out[i] = (plus - minus) / (2 * h)
        grads[key] = grad
    return grads


def _culprits(grads: Any, want: dict[str, torch.Tensor]) -> list[str]:
    culprits = []
    for key, expected in want.items():
        got = grads.get(key) if isinstance(grads, dict) else None
        if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(expected.shape):
            culprits.append(f"d{key}")
            continue
        scale = max(float(expected.abs().max()), 1e-3)
        if float((got.detach().double() - expected).abs().max()) > RTOL_GRAD * scale:
            culprits.append(f"d{key}")
    return culprits


def label_config(cls: type, config: str) -> dict[str, Any]:
    """The label of one configuration of a model class."""
    name = cls.__name__
    model = _build(cls, config)
    params = getattr(model, "params", None)
    if not isinstance(params, dict) or not params:
        return {"label": "unimplemented", "why": "no parameters"}
    X, y = _data(name)
    result = _loss(model, X, y)
    if not isinstance(result, tuple) or len(result) != 2 or not result[1]:
        return {"label": "unimplemented", "why": "loss returns no gradients"}
    loss, grads = result
    forward, want = _reference(name, config, model, X, y, float(torch.as_tensor(loss).detach()))
    if want is None:
        want = _numeric(model, X, y)
    culprits = [forward.removeprefix("wrong: ")] if forward.startswith("wrong") else []
    stray = sorted(set(grads) - set(params)) if isinstance(grads, dict) else []
    if stray or (config == "batchnorm" and not any(str(k).startswith("gamma") for k in params)):
        culprits.append(f"unregistered parameters {stray}")
    culprits += _culprits(grads, want)
    culprits += _test_mode(model, X)
    return {"label": "wrong", "why": "; ".join(culprits)} if culprits else {"label": "correct"}


def _test_mode(model: Any, X: torch.Tensor) -> list[str]:
    """The course's solver scores batches with ``model.loss(X)`` (test mode: running averages,
    no dropout): the last two samples must score alike alone and in the batch. After the
    train-mode calls above, so that running averages exist."""
    with torch.no_grad():
        whole, alone = model.loss(X.clone()), model.loss(X[-2:].clone())
    if not (isinstance(whole, torch.Tensor) and isinstance(alone, torch.Tensor)) or whole.dim() != 2:
        return []
    gap = float((whole[-2:].double() - alone.double()).abs().max())
    scale = max(float(whole[-2:].abs().max()), 1e-300)
    return ["test mode: scores depend on the batch"] if gap > 1e-8 * scale else []


def label_models(module: Any) -> dict[str, Any]:
    """Labels of every model class ``module`` defines, under gradcheck's names for them
    (``FullyConnectedNet(dropout)``); at most 120 s each."""
    labels: dict[str, Any] = {}
    for name in FACTORS:
        cls = vars(module).get(name)
        if not isinstance(cls, type) or cls.__module__ != module.__name__:
            continue
        for config in configurations(cls):
            label = f"{name}({config})" if config else name
            previous = signal.signal(signal.SIGALRM, _on_alarm)
            signal.alarm(120)
            try:
                labels[label] = label_config(cls, config)
            except NotImplementedError:
                labels[label] = {"label": "unimplemented"}
            except Exception as exc:  # the student's code may raise anything
                # the template's own checks of what is not written yet: "Got 0; expected 8"
                unimplemented = ((isinstance(exc, (TypeError, AttributeError)) and "None" in str(exc))
                                 or (isinstance(exc, AssertionError) and "Got 0;" in str(exc)))
                labels[label] = {"label": "unimplemented" if unimplemented else "wrong",
                                 "why": f"raised {type(exc).__name__}: {exc}"[:200]}
            finally:
                signal.alarm(0)
                signal.signal(signal.SIGALRM, previous)
    return labels


def _on_alarm(signum: int, frame: Any) -> None:
    raise TimeoutError("over 120 s")
