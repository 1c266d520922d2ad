"""An old-environment import of a student file: Python 2 division and removed NumPy aliases.

Code written for Python 2 (``/`` on ints floors) or for NumPy < 1.24 / < 2 (``np.int``,
``np.mat``, ``np.reshape(newshape=...)``) crashes here for reasons that are not bugs in the
student's layer. The worker re-labels a crashing layer from this import; when the crash goes
away the layer is labelled ``env_error`` (gradcheck, running in this environment, sees the
crash too, so the pair is reported apart from the agreement counts).
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import re
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np


def _int_kind(v: Any) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return True
    return isinstance(v, (np.ndarray, np.generic)) and v.dtype.kind in "iu"


def py2_div(a: Any, b: Any) -> Any:
    """Python 2's ``a / b``: floor division when both operands are integers."""
    if _int_kind(a) and _int_kind(b):
        return a // b
    return a / b


class _Py2Division(ast.NodeTransformer):
    def visit_BinOp(self, node: ast.BinOp) -> Any:
        self.generic_visit(node)
        if isinstance(node.op, ast.Div):
            call = ast.Call(func=ast.Name(id="__py2_div__", ctx=ast.Load()), args=[node.left, node.right],
                            keywords=[])
            return ast.copy_location(call, node)
        return node


_ALIASES = {"int": int, "float": float, "bool": bool, "object": object, "complex": complex, "str": str,
            "long": int, "unicode": str, "mat": np.asmatrix, "Inf": np.inf, "NaN": np.nan,
            "float_": np.float64,
            "product": np.prod, "cumproduct": np.cumprod, "alltrue": np.all, "sometrue": np.any}


def install_numpy_aliases() -> None:
    for name, value in _ALIASES.items():
        if name not in np.__dict__:
            setattr(np, name, value)
    if not hasattr(np.lib, "pad"):
        np.lib.pad = np.pad  # type: ignore[attr-defined]
    if "asscalar" not in np.__dict__:
        np.asscalar = lambda a: np.asarray(a).item()  # type: ignore[attr-defined]
    original = np.reshape
    if getattr(original, "_field_compat", False):
        return

    @functools.wraps(original)
    def reshape(a: Any, *args: Any, newshape: Any = None, **kwargs: Any) -> Any:
        if newshape is not None:
            return original(a, newshape, *args, **kwargs)
        return original(a, *args, **kwargs)

    reshape._field_compat = True  # type: ignore[attr-defined]
    np.reshape = reshape  # type: ignore[assignment]


def import_compat(path: Path, package: str) -> types.ModuleType:
    source = path.read_text(errors="replace")
    tree = ast.parse(source, filename=str(path))
    if not re.search(r"^\s*from __future__ import[^\n]*\bdivision\b", source, re.M):
        tree = ast.fix_missing_locations(_Py2Division().visit(tree))
    install_numpy_aliases()
    name = f"{package}._student_compat"
    spec = importlib.util.spec_from_loader(name, loader=None, origin=str(path))
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    module.__file__ = str(path)
    module.__dict__["__py2_div__"] = py2_div
    module.__dict__.update(xrange=range, unicode=str, basestring=str, long=int, raw_input=input)
    sys.modules[name] = module
    exec(compile(tree, str(path), "exec"), module.__dict__)
    return module
