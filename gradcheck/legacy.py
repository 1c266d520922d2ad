"""Running code written for the Python and NumPy of its course year.

CS231n was taught in Python 2.7 until 2017, and students' files use NumPy names that
later releases removed (``np.int``, ``np.float``, ``np.lib.pad``). Such code was right in
its course; on today's interpreter it raises before its first gradient. The worker
process (and only it: the checked code runs in a process of its own) therefore

- restores NumPy's removed aliases with their old meaning, and records each one used;
- on a failure that Python 2 semantics explain (``range`` of a float from ``/`` on
  integers, ``xrange``), imports the file again with Python 2 semantics: ``a / b`` of
  two integers is floor division, and ``xrange``, ``unicode``, ``long``, ``basestring``
  exist.

Both pass the layer when it is right under its own year's rules, with a warning: the code
breaks on today's Python or NumPy.
"""

from __future__ import annotations

import ast
import builtins
import inspect
import types
from typing import Any

import numpy as np

from gradcheck.contract import Violation
from gradcheck.kinds import ViolationKind
from gradcheck.python2_import import Python2SyntaxLoader

__all__ = [
    "PY2_DIVIDE",
    "Python2Loader",
    "install_numpy_aliases",
    "looks_python2",
    "numpy_warning",
    "python2_import_warning",
    "python2_warning",
]

# name: (old meaning, the NumPy release that removed it)
_NUMPY_ALIASES: dict[str, tuple[Any, str]] = {
    "int": (int, "1.24"), "float": (float, "1.24"), "complex": (complex, "1.24"),
    "object": (object, "1.24"), "str": (str, "1.24"), "unicode": (str, "1.24"),
    "asscalar": (lambda a: np.asarray(a).item(), "1.23"),
    "float_": (np.float64, "2.0"), "complex_": (np.complex128, "2.0"), "int0": (np.intp, "2.0"),
    "string_": (np.bytes_, "2.0"), "unicode_": (np.str_, "2.0"),
    "Inf": (np.inf, "2.0"), "NaN": (np.nan, "2.0"), "NINF": (-np.inf, "2.0"),
    "PINF": (np.inf, "2.0"), "infty": (np.inf, "2.0"),
    "product": (np.prod, "2.0"), "cumproduct": (np.cumprod, "2.0"), "alltrue": (np.all, "2.0"),
    "sometrue": (np.any, "2.0"), "round_": (np.round, "2.0"), "mat": (np.asmatrix, "2.0"),
}
_LIB_ALIASES: dict[str, tuple[Any, str]] = {"pad": (np.pad, "2.0")}
_used: dict[str, str] = {}


def _patch(module: Any, prefix: str, aliases: dict[str, tuple[Any, str]]) -> None:
    original = module.__dict__.get("__getattr__")

    def __getattr__(name: str) -> Any:
        if name in aliases:
            _used[prefix + name] = aliases[name][1]
            return aliases[name][0]
        if original is not None:
            return original(name)
        raise AttributeError(f"module {module.__name__!r} has no attribute {name!r}")

    module.__getattr__ = __getattr__


def install_numpy_aliases() -> None:
    """Give NumPy back the names it removed, recording each use (worker processes only)."""
    import numpy.lib

    _patch(np, "np.", {k: v for k, v in _NUMPY_ALIASES.items() if k not in np.__dict__})
    _patch(numpy.lib, "np.lib.", {k: v for k, v in _LIB_ALIASES.items() if k not in numpy.lib.__dict__})
    if "newshape" not in inspect.signature(np.reshape).parameters:
        np.reshape = _reshape_with_newshape(np.reshape)
    np.sum = _sum_of_generator(np.sum)


def _sum_of_generator(total: Any) -> Any:
    """``np.sum(generator)``: Python's ``sum`` of it, as NumPy before 2.4 computed it (with a
    deprecation warning since 1.15); NumPy 2.4 raises."""
    def wrapper(a: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(a, types.GeneratorType):
            _used["np.sum(generator)"] = "2.4"
            result = builtins.sum(a)
            return result if not args and not kwargs else total(result, *args, **kwargs)
        return total(a, *args, **kwargs)

    wrapper.__doc__ = total.__doc__
    return wrapper


def _reshape_with_newshape(reshape: Any) -> Any:
    """``np.reshape(a, newshape=...)``, the keyword NumPy 2.1 deprecated and later removed."""
    def wrapper(a: Any, *args: Any, newshape: Any = None, **kwargs: Any) -> Any:
        if newshape is not None:
            _used["np.reshape(newshape=...)"] = "2.4"
            args = (newshape, *args)
        return reshape(a, *args, **kwargs)

    wrapper.__doc__ = reshape.__doc__
    return wrapper


def used_aliases() -> dict[str, str]:
    """The removed NumPy names used in this process so far, with the release that removed each."""
    return dict(_used)


def numpy_warning(used: dict[str, str] | None = None) -> Violation | None:
    """A warning naming the removed NumPy names the checked code used (``used``, by default
    those used in this process), if any."""
    used = _used if used is None else used
    if not used:
        return None
    names = ", ".join(f"{name} (removed in NumPy {release})" for name, release in sorted(used.items()))
    return Violation(
        ViolationKind.LEGACY_NUMPY,
        f"uses {names}; gradcheck ran it with the old meaning (NumPy {np.__version__} is installed "
        "here, where it raises)")


# -- Python 2 ------------------------------------------------------------------------------

PY2_DIVIDE = "__gradcheck_py2_divide__"
PY2_DICT = "__gradcheck_py2_dict__"
_PY2_DICT_METHODS = {"iteritems": "items", "itervalues": "values", "iterkeys": "keys"}
_PY2_NAMES = {"xrange": range, "unicode": str, "long": int, "basestring": str}
_PY2_SYMPTOMS = (
    "object cannot be interpreted as an integer",
    "slice indices must be integers",
    "only integers, slices",
    "integer argument expected, got float",
    "name 'xrange' is not defined",
    "name 'unicode' is not defined",
    "name 'long' is not defined",
    "name 'basestring' is not defined",
    "object has no attribute 'iteritems'",
    "object has no attribute 'itervalues'",
    "object has no attribute 'iterkeys'",
)


def _py2_divide(a: Any, b: Any) -> Any:
    """``a / b`` as Python 2 computed it: floor division when both are integers."""
    def integral(v: Any) -> bool:
        return isinstance(v, (int, np.integer)) or (
            isinstance(v, np.ndarray) and np.issubdtype(v.dtype, np.integer))

    return a // b if integral(a) and integral(b) else a / b


def _py2_dict(obj: Any, method: str) -> Any:
    """``obj.iteritems()`` (``itervalues``, ``iterkeys``) as Python 2's dict answered it, for an
    object without that method; an object that has it is asked."""
    own = getattr(obj, method, None)
    return own() if own is not None else iter(getattr(obj, _PY2_DICT_METHODS[method])())


class _Divisions(ast.NodeTransformer):
    """``a / b`` through :func:`_py2_divide`, ``d.iteritems()`` through :func:`_py2_dict`."""

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in _PY2_DICT_METHODS and not node.args \
                and not node.keywords:
            call = ast.Call(ast.Name(PY2_DICT, ast.Load()), [func.value, ast.Constant(func.attr)], [])
            return ast.copy_location(call, node)
        return node

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        self.generic_visit(node)
        if not isinstance(node.op, ast.Div):
            return node
        call = ast.Call(ast.Name(PY2_DIVIDE, ast.Load()), [node.left, node.right], [])
        return ast.copy_location(call, node)


class Python2Loader(Python2SyntaxLoader):
    """Loads a module with Python 2's integer division and builtins (and, as its base,
    Python 2 statements translated and stray imports replaced)."""

    def get_code(self, fullname: str) -> Any:
        # Always from the source (no bytecode cache is read or written for this variant).
        path = self.get_filename(fullname)
        tree = _Divisions().visit(self.python3_tree(path)[0])
        return compile(ast.fix_missing_locations(tree), path, "exec", dont_inherit=True)

    def exec_module(self, module: Any) -> None:
        module.__dict__[PY2_DIVIDE] = _py2_divide
        module.__dict__[PY2_DICT] = _py2_dict
        for name, value in _PY2_NAMES.items():
            module.__dict__.setdefault(name, value)
        super().exec_module(module)


def looks_python2(text: str, source: str) -> bool:
    """Whether a failure's text shows a Python 2 habit and the source does not opt out."""
    if "from __future__ import division" in source:
        return False
    return any(symptom in text for symptom in _PY2_SYMPTOMS)


def python2_import_warning(used: dict[str, str]) -> Violation | None:
    """A warning naming the files of the checked code's folder that only Python 2 imports
    (``used``: file -> what it needed, see :mod:`gradcheck.python2_import`), if any."""
    if not used:
        return None
    files = "; ".join(f"{name}: {what}" for name, what in sorted(used.items()))
    return Violation(
        ViolationKind.PYTHON2,
        f"written for Python 2: Python 3 cannot import its package as written ({files}); "
        "gradcheck imported it as Python 2 did, as its course ran it")


def python2_warning(symptom_text: str) -> Violation:
    first = next((line.strip() for line in symptom_text.splitlines()
                  if any(s in line for s in _PY2_SYMPTOMS)), "")
    return Violation(
        ViolationKind.PYTHON2,
        "written for Python 2 (integer division with /, xrange, dict.iteritems): it passes under "
        f"Python 2 semantics, as its course ran it, but fails under Python 3 ({first})")
