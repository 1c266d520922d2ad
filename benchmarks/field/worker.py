"""Subprocess entry: import one student file and label every layer it defines.

``python -m benchmarks.field.worker FILE ID OUT_JSON [LAYER_SECONDS]``

Student code may print, hang, call exit or import course modules that do not exist here:
stdout/stderr go to /dev/null, each layer gets a SIGALRM time limit, ``cs231n.*`` and
``past.builtins`` imports are served by stub modules (``cs231n.layers`` re-exports plain
numpy layers so that e.g. rnn_layers files that import it work; only functions defined in the
student's own file are labelled). The result is rewritten to OUT_JSON after every layer, so
the parent keeps what was done if the process dies.
"""

from __future__ import annotations

import functools
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import re
import signal
import sys
import types
import warnings
from pathlib import Path
from typing import Any


class LayerTimeout(BaseException):
    """Raised by SIGALRM; a BaseException so that student ``except Exception`` does not eat it."""


def _missing(name: str) -> Any:
    def stub(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{name} is a stub in the labeller")

    return stub


def _module_getattr(module: str, attr: str) -> Any:
    if attr.startswith("__"):
        raise AttributeError(attr)
    return _missing(f"{module}.{attr}")


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Serves cs231n.*, past.* and future.* with stub modules."""

    ROOTS = ("cs231n", "past", "future")

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname.split(".")[0] not in self.ROOTS:
            return None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec: Any) -> Any:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        module.__path__ = []
        name = module.__name__
        if name == "past.builtins":
            module.__dict__.update(xrange=range, basestring=str, unicode=str, raw_input=input, long=int)
        elif name == "cs231n.layers":
            import reference_layers

            module.__dict__.update({k: getattr(reference_layers, k) for k in reference_layers.__all__})
        if name != "past.builtins":
            module.__getattr__ = functools.partial(_module_getattr, name)  # type: ignore[attr-defined]


def _import_student(path: Path) -> types.ModuleType:
    source = path.read_text(errors="replace")
    package = "cs231n.classifiers" if re.search(r"^\s*from \.\.", source, re.M) else "cs231n"
    name = f"{package}._student"
    __import__(package)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _own(module: types.ModuleType, name: str | None) -> Any:
    fn = getattr(module, name, None) if name else None
    if callable(fn) and getattr(fn, "__module__", None) == module.__name__:
        return fn
    return None


def _on_alarm(signum: int, frame: Any) -> None:
    raise LayerTimeout


def _write(out: Path, result: dict[str, Any]) -> None:
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, sort_keys=True, default=str))
    os.replace(tmp, out)


def _label_one(spec: Any, module: types.ModuleType, file_id: str, limit: int) -> dict[str, Any] | None:
    from benchmarks.field.aggregate import label_layer
    from benchmarks.field.judge import exc_text

    fwd, bwd = _own(module, spec.forward), _own(module, spec.backward)
    if fwd is None or (spec.backward is not None and bwd is None):
        return None
    paired = spec.name == "batchnorm_alt" and _own(module, "batchnorm_forward_alt") is not None
    if paired:  # the student wrote its own forward for the alt backward; label that pair
        fwd = _own(module, "batchnorm_forward_alt")
    signal.alarm(limit)
    try:
        label = label_layer(spec, fwd, bwd, file_id)
        if paired:
            label["info"] = sorted({*label.get("info", []), "paired_with_batchnorm_forward_alt"})
        return label
    except LayerTimeout:
        return {"status": "crash", "correct": False, "culprits": ["timeout"],
                "details": f"no result within {limit} s"}
    except BaseException as exc:
        return {"status": "crash", "correct": False, "culprits": ["labeller"],
                "details": f"labeller error: {exc_text(exc)}"}
    finally:
        signal.alarm(0)


# crashes that come from this NumPy, whatever the student's code does after them
ENV_CRASH = re.compile(r"only 0-dimensional arrays can be converted|was removed in the NumPy"
                       r"|setting an array element with a sequence"
                       r"|has no attribute '(pad|int|float|bool|object|mat|asscalar)'"
                       r"|unexpected keyword argument 'newshape'")


def _crashed(label: dict[str, Any]) -> bool:
    return label.get("status") == "crash" and label.get("culprits") != ["timeout"]


def _label_all(module: types.ModuleType, path: Path, file_id: str, out: Path, result: dict[str, Any],
               limit: int) -> None:
    """Plain labels first; then layers that crash are re-run under Python 2 division / old NumPy."""
    from benchmarks.field.specs import SPECS

    for spec in SPECS:
        label = _label_one(spec, module, file_id, limit)
        if label is not None:
            result["layers"][spec.name] = label
            _write(out, result)
    redo = [s for s in SPECS if s.name in result["layers"] and _crashed(result["layers"][s.name])]
    if not redo:
        return
    from benchmarks.field.compat import import_compat

    try:
        old = import_compat(path, module.__name__.rsplit(".", 1)[0])
    except BaseException:
        return
    for spec in redo:
        label = _label_one(spec, old, file_id, limit)
        plain = result["layers"][spec.name]
        if label is None or (_crashed(label) and not ENV_CRASH.search(plain.get("details", ""))):
            continue
        label["env_status"] = label["status"]
        label["status"] = "env_error"
        label["correct"] = None
        label["env_details"] = ("crashes here, not under Python 2 division / NumPy < 2: "
                                + plain.get("details", ""))
        result["layers"][spec.name] = label
        _write(out, result)


def main(argv: list[str]) -> int:
    path, file_id, out = Path(argv[0]), argv[1], Path(argv[2])
    limit = int(argv[3]) if len(argv) > 3 else 20
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    warnings.simplefilter("ignore")
    sys.meta_path.insert(0, _StubFinder())
    sys.setrecursionlimit(10000)
    signal.signal(signal.SIGALRM, _on_alarm)
    result: dict[str, Any] = {"import": "ok", "layers": {}}
    import numpy as np
    import torch  # noqa: F401 - loaded before student code can shadow anything

    np.seterr(all="ignore")
    signal.alarm(30)
    try:
        module = _import_student(path)
    except BaseException as exc:
        first = (f"{type(exc).__name__}: {exc}".splitlines() or [""])[0][:200]
        result["import"] = f"import_error: {first}"
        _write(out, result)
        return 0
    finally:
        signal.alarm(0)
    _write(out, result)
    _label_all(module, path, file_id, out, result, limit)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
