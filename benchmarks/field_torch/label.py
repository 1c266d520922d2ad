"""Label each torch-course layer class independently of gradcheck, with torch autograd.

``python -m benchmarks.field_torch.label DIR [--out benchmarks/field_torch/labels.json]``

Every file is imported in its own subprocess (stand-in helper modules on the path). Each
layer class gets six float64 cases inside the course's contract (convolution and pooling:
sizes the stride divides, half of them not square, as the course's ``(N, C, H, W)``
allows). Its forward is compared with a torch reference (``torch.nn.functional`` or plain
tensor ops) at rtol 1e-6 of the output's largest entry, and each gradient from
``backward`` with torch's autograd of ``sum(dout * reference(inputs))`` at rtol 1e-5 of the
gradient's largest entry. Dropout: train-mode outputs must be 0 or ``x / (1 - p)`` (p
drops a unit, as the course says) with a plausible kept fraction, and ``dx = dout * out /
x``. Batch norm: running statistics after one train call must be ``(1 - momentum) * batch
statistic``; test mode is forward-only. The batch-norm sandwiches (``Linear_BatchNorm_ReLU``,
``Conv_BatchNorm_ReLU[_Pool]``): train-mode forward and gradients against autograd of the
composition (linear or ``conv2d``, batch statistics, ReLU, 2x2 max pool), the running mean of
the values batch norm sees, and the test-mode forward with the statistics the layer stored.
Labels: ``correct``, ``wrong`` (with why), ``unimplemented`` (NotImplementedError, or the
course's template left as it is: a forward that returns ``None`` as its output, a backward
whose gradients are all ``None``). The models (``TwoLayerNet`` ... ``DeepConvNet``) are
labelled by :mod:`benchmarks.field_torch.label_models`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CLASSES = ("Linear", "ReLU", "Linear_ReLU", "Dropout", "Conv", "MaxPool", "Conv_ReLU", "Conv_ReLU_Pool",
           "BatchNorm", "BatchNorm.backward_alt", "SpatialBatchNorm",
           "Linear_BatchNorm_ReLU", "Conv_BatchNorm_ReLU", "Conv_BatchNorm_ReLU_Pool")
SANDWICHES = ("Linear_BatchNorm_ReLU", "Conv_BatchNorm_ReLU", "Conv_BatchNorm_ReLU_Pool")


# Inside the course's contract (sizes the stride divides), half of them not square: H != W,
# HH != WW, pool_height != pool_width, outputs with H' != W'. (x H, W; filter HH, WW; stride, pad)
CONV_GEOMETRIES = (((5, 5), (3, 3), 1, 1), ((6, 6), (2, 2), 2, 0), ((5, 5), (3, 3), 1, 2),
                   ((4, 6), (3, 2), 1, 1), ((5, 9), (3, 3), 2, 0), ((4, 5), (3, 2), 1, 2))
# (x H, W; pool_height, pool_width; stride)
POOL_GEOMETRIES = (((5, 5), (2, 2), 1), ((6, 6), (2, 2), 2), ((4, 6), (2, 3), 1),
                   ((6, 4), (3, 2), 1), ((6, 8), (2, 2), 2), ((4, 6), (2, 2), 2))


def _cases(name: str, gen: Any) -> list[tuple[tuple[Any, ...], Any]]:
    """``(args, reference)`` pairs; ``reference(*differentiable args) -> out``."""
    import torch

    def t(*shape: int) -> Any:
        return torch.randn(*shape, generator=gen, dtype=torch.float64)

    out = []
    for k in range(6):
        n = 2 + k % 3
        if name in ("Linear", "Linear_ReLU"):
            act = torch.relu if name == "Linear_ReLU" else (lambda v: v)
            out.append(((t(n, 2, 3), t(6, 4), t(4)),
                        lambda x, w, b, act=act: act(x.reshape(x.shape[0], -1) @ w + b)))
        elif name == "ReLU":
            x = t(n, 3, 2)
            out.append(((x + 0.2 * torch.sign(x),), torch.relu))  # no entry near the kink
        elif name in ("Conv", "Conv_ReLU", "Conv_ReLU_Pool"):
            out.append(_conv_case(name, k, n, t))
        elif name == "MaxPool":
            out.append(_pool_case(k, n, t))
        elif name in ("BatchNorm", "BatchNorm.backward_alt", "SpatialBatchNorm"):
            out.append(_batchnorm_case(name == "SpatialBatchNorm", k, n, t))
        elif name in SANDWICHES:
            out.append(_sandwich_case(name, k, n, t))
    return out


def _conv_case(name: str, k: int, n: int, t: Any) -> tuple[tuple[Any, ...], Any]:
    import torch
    import torch.nn.functional as F

    def conv_ref(x: Any, w: Any, b: Any, c: dict[str, int]) -> Any:
        return F.conv2d(x, w, b, stride=c["stride"], padding=c["pad"])

    if name == "Conv_ReLU_Pool":  # the course's sandwich: its pool is 2x2, stride 2
        c2 = {"stride": 1, "pad": 1}
        p2 = {"pool_height": 2, "pool_width": 2, "stride": 2}
        return ((t(n, 2, 4, 4), t(3, 2, 3, 3), t(3), c2, p2),
                lambda x, w, b: F.max_pool2d(torch.relu(conv_ref(x, w, b, c2)), 2, 2))
    (h, w), (hh, ww), stride, pad = CONV_GEOMETRIES[k]
    conv = {"stride": stride, "pad": pad}
    act = torch.relu if name == "Conv_ReLU" else (lambda v: v)
    return ((t(n, 2, h, w), t(3, 2, hh, ww), t(3), conv),
            lambda x, w, b: act(conv_ref(x, w, b, conv)))


def _pool_case(k: int, n: int, t: Any) -> tuple[tuple[Any, ...], Any]:
    import torch.nn.functional as F

    (h, w), (ph, pw), stride = POOL_GEOMETRIES[k]
    pool = {"pool_height": ph, "pool_width": pw, "stride": stride}
    return ((t(n, 2, h, w), pool), lambda x: F.max_pool2d(x, (ph, pw), stride))


def _batchnorm_case(spatial: bool, k: int, n: int, t: Any) -> tuple[tuple[Any, ...], Any]:
    import torch

    c = 3
    x = t(n + 2, c, 2, 3) * 2 + 1 if spatial else t(n + 2, c) * 2 + 1
    eps = 1e-5 if k < 5 else 1e-3
    dims = (0, 2, 3) if spatial else (0,)
    shape = (1, c, 1, 1) if spatial else (1, c)

    def bn(x: Any, g: Any, b: Any) -> Any:
        mean = x.mean(dim=dims, keepdim=True)
        var = x.var(dim=dims, unbiased=False, keepdim=True)
        return (x - mean) / torch.sqrt(var + eps) * g.reshape(shape) + b.reshape(shape)

    return (x, t(c), t(c), {"mode": "train", "eps": eps}), bn


# The sandwiches' convolutions as the course's DeepConvNet uses them (3x3, stride 1, pad 1;
# 1x1 pad 0 once), half of the inputs not square; the pool is 2x2, stride 2, on even sizes.
SANDWICH_GEOMETRIES = (((4, 4), 3, 1), ((4, 6), 3, 1), ((6, 4), 1, 0), ((2, 4), 3, 1), ((6, 6), 3, 1),
                       ((4, 2), 3, 1))


def _normalise(a: Any, g: Any, b: Any, eps: float, stats: tuple[Any, Any] | None = None) -> Any:
    """Batch norm of ``a`` over every axis but 1 (batch statistics unless ``stats``)."""
    dims = (0, 2, 3) if a.ndim == 4 else (0,)
    shape = (1, -1, 1, 1) if a.ndim == 4 else (1, -1)
    if stats is None:
        mean, var = a.mean(dim=dims, keepdim=True), a.var(dim=dims, unbiased=False, keepdim=True)
    else:
        mean, var = (s.reshape(shape) for s in stats)
    return (a - mean) / (var + eps).sqrt() * g.reshape(shape) + b.reshape(shape)


def _sandwich_pre(name: str, args: tuple[Any, ...]) -> Any:
    """The sandwich's values before batch norm (linear layer or convolution)."""
    import torch.nn.functional as F

    x, w, b = args[:3]
    if name == "Linear_BatchNorm_ReLU":
        return x.reshape(x.shape[0], -1) @ w + b
    return F.conv2d(x, w, b, stride=args[5]["stride"], padding=args[5]["pad"])


def _sandwich_post(name: str, s: Any) -> Any:
    import torch
    import torch.nn.functional as F

    out = torch.relu(s)
    return F.max_pool2d(out, 2, 2) if name.endswith("_Pool") else out


def _sandwich_case(name: str, k: int, n: int, t: Any) -> tuple[tuple[Any, ...], Any]:
    eps = 1e-5 if k < 5 else 1e-3
    bn = {"mode": "train", "eps": eps}
    if name == "Linear_BatchNorm_ReLU":
        args: tuple[Any, ...] = (t(n + 2, 4) * 2 + 1, t(4, 3), t(3), t(3), t(3), bn)
    else:
        (h, w), size, pad = SANDWICH_GEOMETRIES[k]
        conv = {"stride": 1, "pad": pad}
        args = (t(n, 2, h, w), t(3, 2, size, size), t(3), t(3), t(3), conv, bn)
        if name.endswith("_Pool"):
            args = (*args, {"pool_height": 2, "pool_width": 2, "stride": 2})

    def reference(x: Any, w: Any, b: Any, g: Any, beta: Any) -> Any:
        a = _sandwich_pre(name, (x, w, b, *args[3:]))
        return _sandwich_post(name, _normalise(a, g, beta, eps))

    return args, reference


def _sandwich_running_stats(cls: Any, name: str, args: tuple[Any, ...]) -> str:
    """After one train call from an empty bn_param: running mean ``0.1 * batch mean`` of the
    values batch norm sees; then the test-mode forward with the statistics stored."""
    k = next(i for i, a in enumerate(args) if isinstance(a, dict) and "mode" in a)
    param = {key: v for key, v in args[k].items() if key != "running_mean"}
    call = [a.clone() if hasattr(a, "clone") else dict(a) for a in args]
    call[k] = param
    cls.forward(*call)
    a = _sandwich_pre(name, args)
    want = 0.1 * a.mean(dim=(0, 2, 3) if a.ndim == 4 else (0,))
    got = param.get("running_mean")
    problem = "not stored" if got is None else _compare(got.reshape(want.shape), want, 1e-6)
    if problem:
        return f"running_mean: {problem}"
    param["mode"] = "test"
    call[k] = param
    out, _ = cls.forward(*[a.clone() if hasattr(a, "clone") else a for a in call])
    stats = (param["running_mean"], param["running_var"])
    test = _sandwich_post(name, _normalise(a, args[3], args[4], param.get("eps", 1e-5), stats))
    problem = _compare(out, test, 1e-6)
    return f"test-mode forward: {problem}" if problem else ""


def _compare(got: Any, want: Any, rtol: float, floor: float = 1e-12) -> str:
    """"" when ``got`` is within ``rtol`` of ``want``'s largest entry (at least ``floor``)."""
    import torch

    if not isinstance(got, torch.Tensor):
        return f"returned {type(got).__name__}"
    if tuple(got.shape) != tuple(want.shape):
        return f"shape {tuple(got.shape)}, expected {tuple(want.shape)}"
    got, want = got.detach(), want.detach()
    scale = float(want.abs().max()) if want.numel() else 0.0
    err = float((got.double() - want).abs().max()) if want.numel() else 0.0
    return "" if err <= rtol * max(scale, floor) else f"error {err:.2e} of scale {scale:.2e}"


def _judge(cls: Any, name: str) -> dict[str, Any]:
    import torch

    gen = torch.Generator().manual_seed(0)
    if name == "Dropout":
        return _judge_dropout(cls)
    backward = getattr(cls, "backward_alt" if name.endswith("backward_alt") else "backward")
    for args, reference in _cases(name.split(".")[0], gen):
        wrt = [a for a in args if isinstance(a, torch.Tensor)]
        out, cache = cls.forward(*[a.clone() if isinstance(a, torch.Tensor) else dict(a) for a in args])
        if out is None:  # the course's template: `out = None ... return out, cache`
            return {"label": "unimplemented", "why": "forward returns None"}
        leaves = [a.clone().requires_grad_(True) for a in wrt]
        want = reference(*leaves)
        problem = _compare(out, want.detach(), 1e-6)
        if problem:
            return {"label": "wrong", "why": f"forward: {problem}"}
        dout = torch.randn(want.shape, generator=gen, dtype=torch.float64)
        expected = torch.autograd.grad((want * dout).sum(), leaves)
        grads = backward(dout.clone(), cache)
        grads = grads if isinstance(grads, (tuple, list)) else (grads,)
        if all(g is None for g in grads):  # the template's `dx, dw, db = None, None, None`
            return {"label": "unimplemented", "why": "backward returns None"}
        if len(grads) != len(expected):
            return {"label": "wrong", "why": f"{len(grads)} gradients, expected {len(expected)}"}
        # Batch norm after a bias makes db exactly 0: rounding is judged against the
        # sandwich's other gradients.
        floor = max(float(e.abs().max()) for e in expected) if name in SANDWICHES else 1e-12
        for i, (g, e) in enumerate(zip(grads, expected)):
            problem = _compare(g, e, 1e-5, floor)
            if problem:
                return {"label": "wrong", "why": f"gradient {i}: {problem}"}
        if name in SANDWICHES:
            problem = _sandwich_running_stats(cls, name, args)
            if problem:
                return {"label": "wrong", "why": problem}
        elif "BatchNorm" in name:
            problem = _running_stats(cls, args)
            if problem:
                return {"label": "wrong", "why": problem}
    return {"label": "correct"}


def _running_stats(cls: Any, args: tuple[Any, ...]) -> str:
    x, gamma, beta, param = args
    param = dict(param)
    cls.forward(x.clone(), gamma, beta, param)
    dims = (0, 2, 3) if x.ndim == 4 else (0,)
    want = 0.1 * x.mean(dim=dims)
    got = param.get("running_mean")
    problem = "not stored" if got is None else _compare(got.reshape(want.shape), want, 1e-6)
    if problem:
        return f"running_mean: {problem}"
    param["mode"] = "test"
    out, _ = cls.forward(x.clone(), gamma, beta, param)
    shape = (1, -1, 1, 1) if x.ndim == 4 else (1, -1)
    test = ((x - param["running_mean"].reshape(shape)) / (param["running_var"].reshape(shape)
            + param.get("eps", 1e-5)).sqrt() * gamma.reshape(shape) + beta.reshape(shape))
    problem = _compare(out, test, 1e-6)
    return f"test-mode forward: {problem}" if problem else ""


def _judge_dropout(cls: Any) -> dict[str, Any]:
    import torch

    gen = torch.Generator().manual_seed(1)
    for p in (0.25, 0.6):
        x = torch.randn(400, 25, generator=gen, dtype=torch.float64) + 3.0
        out, cache = cls.forward(x.clone(), {"mode": "train", "p": p, "seed": 7})
        if out is None:
            return {"label": "unimplemented", "why": "forward returns None"}
        kept = (out != 0)
        scaled = (out[kept] - x[kept] / (1 - p)).abs().max() if kept.any() else torch.tensor(0.0)
        if float(scaled) > 1e-6 * float(x.abs().max() / (1 - p)):
            return {"label": "wrong", "why": f"p={p}: kept entries are not x / (1 - p)"}
        fraction = float(kept.double().mean())
        if abs(fraction - (1 - p)) > 0.05:
            return {"label": "wrong", "why": f"p={p}: kept fraction {fraction:.3f}, expected {1 - p}"}
        dout = torch.randn(x.shape, generator=gen, dtype=torch.float64)
        problem = _compare(cls.backward(dout.clone(), cache), dout * out / x, 1e-5)
        if problem:
            return {"label": "wrong", "why": f"p={p} backward: {problem}"}
    test, _ = cls.forward(x.clone(), {"mode": "test", "p": 0.5})
    problem = _compare(test, x, 1e-12)
    return {"label": "wrong", "why": f"test mode: {problem}"} if problem else {"label": "correct"}


def label_file(path: str) -> dict[str, Any]:
    """Labels of every layer class ``path`` defines (runs inside the subprocess)."""
    import importlib.util

    import torch

    from benchmarks.field_torch.label_models import label_models

    torch.set_num_threads(1)
    sys.path.insert(0, str(Path(path).parent))
    spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    labels: dict[str, Any] = {}
    for name in CLASSES:
        cls = vars(module).get(name.split(".")[0])
        if not isinstance(cls, type) or cls.__module__ != module.__name__:
            continue
        if name.endswith("backward_alt") and not hasattr(cls, "backward_alt"):
            continue
        try:
            labels[name] = _judge(cls, name)
        except NotImplementedError:
            labels[name] = {"label": "unimplemented"}
        except Exception as exc:  # the student's code may raise anything
            unimplemented = isinstance(exc, (TypeError, AttributeError)) and "None" in str(exc)
            labels[name] = {"label": "unimplemented" if unimplemented else "wrong",
                            "why": f"raised {type(exc).__name__}: {exc}"[:200]}
    return labels | label_models(module)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.field_torch.label")
    parser.add_argument("dir", type=Path)
    parser.add_argument("--out", type=Path, default=HERE / "labels.json")
    parser.add_argument("--only", nargs="+", metavar="ID/FILE",
                        help="relabel only these files (or every file of this name), keeping the others")
    args = parser.parse_args(argv)
    stubs = str(args.dir / "_stubs")
    labels = json.loads(args.out.read_text(encoding="utf-8")) if args.only and args.out.exists() else {}
    for path in sorted(args.dir.glob("*/*.py")):
        if path.parent.name == "_stubs":
            continue
        key = f"{path.parent.name}/{path.name}"
        if args.only and key not in args.only and path.name not in args.only:
            continue
        code = (f"import sys, json; sys.path.insert(0, {stubs!r}); "
                "from benchmarks.field_torch.label import label_file; "
                f"print(json.dumps(label_file({str(path)!r})))")
        try:
            run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
            labels[key] = json.loads(run.stdout.strip().splitlines()[-1]) if run.returncode == 0 else \
                {"_import_error": run.stderr.strip().splitlines()[-1:]}
        except (subprocess.TimeoutExpired, IndexError, json.JSONDecodeError) as exc:
            labels[key] = {"_import_error": [f"{type(exc).__name__}"]}
        print(key, {k: v["label"] for k, v in labels[key].items() if isinstance(v, dict)}, file=sys.stderr)
    args.out.write_text(json.dumps(labels, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
