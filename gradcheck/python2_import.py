"""Importing a package written for Python 2 on Python 3, as its course ran it.

CS231n was taught in Python 2.7 until 2017. Its students' packages hold files that
Python 3 rejects before running a line: ``print x`` statements, indentation mixing tabs
and spaces (Python 2 read a tab as reaching the next multiple of 8 columns),
``except E, e:`` and ``raise E, "text"``; and a package's module may import a sibling
by its bare name (``from linear_svm import *``), which Python 2 resolved inside the
package first. One such file anywhere in a package (a ``k_nearest_neighbor.py`` the
package's ``__init__.py`` imports) makes every classifier of the package unimportable,
though each was right in its course.

In a worker process, :func:`install` makes the imports of a student's folder do what
Python 2 did, and nothing else:

- a file Python 3 compiles runs as written; a file it cannot compile is compiled from
  :func:`translate`, which rewrites exactly those statements, token by token, and leaves
  every other character where it was (line numbers in tracebacks stay right);
- a bare-name import that finds nothing else, made by a module of a package in the
  folder, imports the package's sibling of that name (Python 3 first tries the name
  absolutely, so a real module of that name still wins).

Each use is recorded (:func:`python2_used`): the checked layer passes with the
``python2`` warning, since the code breaks on today's Python.
"""

from __future__ import annotations

import ast
import importlib.abc
import importlib.machinery
import importlib.util
import io
import os
import sys
import tokenize
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

from gradcheck.stray_imports import MISSING, Missing, replace_stray_imports

__all__ = ["Python2SyntaxLoader", "folder_relative", "install", "python2_used", "python3_source", "translate"]

_STATEMENT_ENDS = (tokenize.NEWLINE, tokenize.ENDMARKER)
_used: dict[str, str] = {}  # file -> the Python 2 it needed
_roots: list[str] = []  # the student folders whose imports get Python 2 treatment


def python2_used() -> dict[str, str]:
    """The Python 2 this process imported: ``{file (relative to its folder): what}``."""
    return dict(_used)


def _statements(tokens: list[tokenize.TokenInfo]) -> list[list[tokenize.TokenInfo]]:
    """The simple statements of a token stream (split at NEWLINE, at ``;`` and after the ``:``
    of a compound statement's header, outside brackets), without comments and layout tokens."""
    statements: list[list[tokenize.TokenInfo]] = [[]]
    depth = 0
    skip = (tokenize.COMMENT, tokenize.NL, tokenize.INDENT, tokenize.DEDENT, tokenize.ENCODING)
    for tok in tokens:
        if tok.type in skip:
            continue
        if tok.type in _STATEMENT_ENDS or (depth == 0 and tok.type == tokenize.OP and tok.string in ";:"):
            statements[-1].append(tok)
            statements.append([])
            continue
        if tok.type == tokenize.OP and tok.string in "([{":
            depth += 1
        elif tok.type == tokenize.OP and tok.string in ")]}":
            depth = max(0, depth - 1)
        statements[-1].append(tok)
    return [s for s in statements if len(s) > 1]


def _top_level_commas(body: list[tokenize.TokenInfo]) -> list[int]:
    """Indices in ``body`` of the commas outside brackets."""
    depth, found = 0, []
    for index, tok in enumerate(body):
        if tok.type == tokenize.OP and tok.string in "([{":
            depth += 1
        elif tok.type == tokenize.OP and tok.string in ")]}":
            depth -= 1
        elif depth == 0 and tok.type == tokenize.OP and tok.string == ",":
            found.append(index)
    return found


class _Source:
    """The source text addressed by token positions, with edits applied last to first."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0]
        for line in text.splitlines(keepends=True):
            self.starts.append(self.starts[-1] + len(line))
        self.edits: list[tuple[int, int, str]] = []

    def offset(self, position: tuple[int, int]) -> int:
        return self.starts[position[0] - 1] + position[1]

    def between(self, start: tokenize.TokenInfo, end: tokenize.TokenInfo) -> str:
        """The text from the start of ``start`` to the end of ``end``."""
        return self.text[self.offset(start.start):self.offset(end.end)]

    def replace(self, first: tokenize.TokenInfo, last: tokenize.TokenInfo, text: str) -> None:
        self.edits.append((self.offset(first.start), self.offset(last.end), text))

    def edited(self) -> str:
        text = self.text
        for start, end, new in sorted(self.edits, reverse=True):
            text = text[:start] + new + text[end:]
        return text


def _print_call(source: _Source, body: list[tokenize.TokenInfo]) -> str | None:
    """``print a, b,`` -> ``print(a, b, end=" ")``; ``print >>f, a`` -> ``print(a, file=f)``."""
    if len(body) > 1 and body[1].string == "(" and _closing(body, 1) == len(body) - 1:
        return None  # print(x) or print (a, b): already a call
    args, extra = body[1:], []
    if args and args[0].string == ">>":
        commas = _top_level_commas(args)
        stop = commas[0] if commas else len(args)
        extra.append(f"file={source.between(args[1], args[stop - 1])}")
        args = args[stop + 1:]
    if args and args[-1].string == ",":
        args = args[:-1]
        extra.append('end=" "')
    parts = ([source.between(args[0], args[-1])] if args else []) + extra
    return f"print({', '.join(parts)})"


def _closing(body: list[tokenize.TokenInfo], opening: int) -> int:
    depth = 0
    for index in range(opening, len(body)):
        if body[index].string in "([{":
            depth += 1
        elif body[index].string in ")]}":
            depth -= 1
            if depth == 0:
                return index
    return -1


def _rewrite(source: _Source, statement: list[tokenize.TokenInfo], print_function: bool) -> str | None:
    """Queue the edit of one Python 2 statement; returns what it was, or None."""
    body = statement[:-1] if statement[-1].type in _STATEMENT_ENDS or statement[-1].string in ";:" \
        else statement
    if not body or body[0].type != tokenize.NAME:
        return None
    keyword = body[0].string
    if keyword == "print" and not print_function:
        call = _print_call(source, body)
        if call is not None:
            source.replace(body[0], body[-1], call)
            return "print statement"
        return None
    commas = _top_level_commas(body)
    if keyword == "except" and len(commas) == 1 and statement[-1].string == ":":
        comma = body[commas[0]]
        source.replace(comma, comma, " as")
        return "except E, e"
    if keyword == "raise" and len(commas) == 1:
        kind, value = body[1:commas[0]], body[commas[0] + 1:]
        if kind and value:
            source.replace(body[1], body[-1],
                           f"{source.between(kind[0], kind[-1])}({source.between(value[0], value[-1])})")
            return "raise E, value"
    return None


def _expand_indentation(text: str) -> tuple[str, bool]:
    """Leading tabs as Python 2 read them: to the next multiple of 8 columns. (Inside a
    multi-line string this changes the string's text: harmless in code Python 3 cannot
    compile as written, and the tokenizer of Python 3.12+ refuses mixed indentation.)"""
    lines = text.splitlines(keepends=True)
    changed = False
    for row, line in enumerate(lines):
        indent = line[:len(line) - len(line.lstrip(" \t"))]
        if "\t" in indent:
            lines[row] = indent.expandtabs(8) + line[len(indent):]
            changed = True
    return "".join(lines), changed


def translate(text: str) -> tuple[str, list[str]]:
    """``text`` with its Python 2 statements rewritten, and what was rewritten (empty when
    nothing was). Raises :class:`SyntaxError` (or ``tokenize.TokenError``) for text that is
    not Python 2 either."""
    text, tabs = _expand_indentation(text)
    tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    print_function = "print_function" in {t.string for t in tokens if t.type == tokenize.NAME}
    source = _Source(text)
    found = ["tabs in indentation"] if tabs else []
    for statement in _statements(tokens):
        what = _rewrite(source, statement, print_function)
        if what is not None and what not in found:
            found.append(what)
    return source.edited(), found


def folder_relative(path: str) -> str:
    """``path`` relative to the student folder holding it (the full path elsewhere)."""
    root = max((r for r in _roots if path.startswith(r + os.sep)), key=len, default=None)
    return os.path.relpath(path, root) if root else path


def _record(path: str, what: str) -> None:
    """Note the Python 2 that the file ``path`` needed (several things: joined)."""
    key = folder_relative(path)
    _used[key] = f"{_used[key]}, {what}" if key in _used and what not in _used[key] else what


def python3_source(data: bytes, path: str, error: SyntaxError) -> str:
    """The Python 2 translation of the file ``path`` holding ``data``, which Python 3 refused
    with ``error`` (recorded); a file that is not Python 2 either raises ``error``."""
    try:
        text, found = translate(importlib.util.decode_source(data))
        compile(text, path, "exec", dont_inherit=True, flags=ast.PyCF_ONLY_AST)
    except (SyntaxError, tokenize.TokenError, UnicodeDecodeError):
        raise error from None
    _record(path, f"{', '.join(found)}, line {error.lineno}")
    return text


class Python2SyntaxLoader(importlib.machinery.SourceFileLoader):
    """Compiles a file as written (cached as usual), or from its Python 2 translation when
    Python 3 cannot, and without its stray imports (:mod:`gradcheck.stray_imports`); those
    two are never cached (a cached one would skip the record)."""

    def python3_tree(self, path: str) -> tuple[ast.Module, bool]:
        """The syntax tree of the file ``path`` as Python 3 runs it (as written, or from its
        Python 2 translation), without its stray imports; and whether that differs from the
        file as written."""
        data = self.get_data(path)
        text = importlib.util.decode_source(data)
        translated = False
        try:
            tree = ast.parse(text, path)
        except SyntaxError as error:
            text = python3_source(data, path, error)
            tree, translated = ast.parse(text, path), True
        return tree, replace_stray_imports(tree, folder_relative(path), text) or translated

    def get_code(self, fullname: str) -> Any:
        path = self.get_filename(fullname)
        tree, rewritten = self.python3_tree(path)
        if rewritten:
            return compile(tree, path, "exec", dont_inherit=True)
        return super().get_code(fullname)

    def exec_module(self, module: ModuleType) -> None:
        module.__dict__[MISSING] = Missing
        super().exec_module(module)


class _Sibling(importlib.abc.Loader):
    """Binds a bare name to the package sibling it named in Python 2 (the same module)."""

    def __init__(self, qualified: str) -> None:
        self.qualified = qualified

    def create_module(self, spec: ModuleSpec) -> ModuleType:
        return importlib.import_module(self.qualified)

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the sibling ran when it was imported."""


def _importer() -> tuple[str, str]:
    """``(package, file)`` of the module whose import statement is running (past the import
    machinery's frames and gradcheck's own, such as the worker's import guard)."""
    frame: Any = sys._getframe(1)
    while frame is not None and (frame.f_code.co_filename.startswith("<frozen importlib")
                                 or str(frame.f_globals.get("__name__", "")).startswith("gradcheck.")):
        frame = frame.f_back
    if frame is None:
        return "", ""
    return str(frame.f_globals.get("__package__") or ""), str(frame.f_globals.get("__file__") or "")


def _in_roots(path: str | None) -> bool:
    """A file of a student folder (not of an environment inside it)."""
    text = str(path or "")
    return bool(text) and any(text.startswith(root + os.sep) for root in _roots) \
        and not any(f"{os.sep}{part}{os.sep}" in text for part in ("site-packages", "dist-packages"))


class _Finder(importlib.abc.MetaPathFinder):
    """Before the path finder: the student folders' modules through
    :class:`Python2SyntaxLoader`, or the loader :func:`install` was given."""

    loader: type[importlib.machinery.SourceFileLoader] = Python2SyntaxLoader

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> ModuleSpec | None:
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not _in_roots(spec.origin) or not str(spec.origin).endswith(".py"):
            return None
        spec.loader = self.loader(fullname, str(spec.origin))
        return spec


class _SiblingFinder(importlib.abc.MetaPathFinder):
    """Last: a bare name no other finder found, imported by a package module of the student
    folders, as that package's sibling (Python 2's implicit relative import)."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> ModuleSpec | None:
        if "." in fullname or path is not None:
            return None
        package, importer = _importer()
        if not package or not _in_roots(importer):
            return None
        sibling = f"{package}.{fullname}"
        if importlib.util.find_spec(sibling) is None:
            return None
        _record(importer, f"implicit relative import of {fullname}")
        return ModuleSpec(fullname, _Sibling(sibling))


def install(*roots: str, loader: type[importlib.machinery.SourceFileLoader] | None = None) -> None:
    """Python 2's imports for the modules under the folders ``roots`` in this process.

    ``loader`` (the loader of Python 2's integer division, :class:`gradcheck.legacy.Python2Loader`)
    loads every module of the folders from then on, not only the checked file: a model's
    layers in a sibling module compute shapes with ``/`` too. The folders' modules imported
    before a change of loader are forgotten, to be imported again with the new one."""
    for root in map(os.path.abspath, roots):
        if root not in _roots and os.path.dirname(root) != root:  # never a whole file system
            _roots.append(root)
    finder = next((f for f in sys.meta_path if isinstance(f, _Finder)), None)
    if finder is None:
        finder = _Finder()
        machinery = importlib.machinery.PathFinder
        sys.meta_path.insert(sys.meta_path.index(machinery) if machinery in sys.meta_path
                             else len(sys.meta_path), finder)
        sys.meta_path.append(_SiblingFinder())
    chosen = loader or Python2SyntaxLoader
    if finder.loader is not chosen:
        finder.loader = chosen
        for name, module in list(sys.modules.items()):
            if _in_roots(getattr(module, "__file__", None)):
                del sys.modules[name]
