"""The worker: the only process that imports the checked code.

It holds the student's module and answers the judge (:mod:`gradcheck.judge`) over the
data-only channel (:mod:`gradcheck.channel`): load the target, list what it defines,
call a function on arrays it is sent, read or set an attribute. Results that are not
plain data (a forward's cache, a model) stay here as objects the judge knows by a
handle. Arguments the call changed in place (an input written into, the running mean a
batchnorm forward stores in ``bn_param``) are sent back with the result, so the judge
sees the writes. It decides nothing: no reference, no numerical derivative, no verdict.

Importing ``reference_layers`` or ``gradcheck`` from the checked code is refused: the
code gets a stand-in whose every name raises when called and is reported, so a file that
hands in the checker's reference is judged for doing that.
"""

from __future__ import annotations

import builtins
import importlib
import inspect
import os
import resource
import socket
import sys
import tempfile
import types
import warnings
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from gradcheck import legacy
from gradcheck.channel import ChannelError, Codec, read_frame, write_frame
from gradcheck.contract import user_traceback
from gradcheck.discover import TargetError, discover, load_target
from gradcheck.python2_import import python2_used
from gradcheck.stray_imports import stray_used

__all__ = ["serve", "worker_main"]

OWN_PACKAGES = ("reference_layers", "gradcheck")
_TEXT_LIMIT = 20_000


class _Refused:
    """What checked code gets for a name of the checker's own packages: calling it raises."""

    def __init__(self, origin: str, name: str) -> None:
        self.__dict__.update(__module__=origin, __name__=name, __qualname__=name)

    def __getattr__(self, name: str) -> _Refused:
        if name.startswith("__"):
            raise AttributeError(name)
        return _Refused(self.__dict__["__module__"], name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise ImportError(f"{self.__dict__['__name__']} comes from {self.__dict__['__module__']}, the "
                          "checker's own reference implementation, which checked code may not import")


class _Guard:
    """Refuses imports of the checker's packages by code that is not the checker's."""

    def __init__(self) -> None:
        self.refused: list[str] = []
        self.original_import = builtins.__import__
        self.original_import_module = importlib.import_module

    def install(self) -> None:
        builtins.__import__ = self._import
        importlib.import_module = self._import_module

    def _own(self, name: str, importer: Any) -> bool:
        caller = str((importer or {}).get("__name__", "")) if isinstance(importer, dict) else ""
        return name.split(".")[0] in OWN_PACKAGES and caller.split(".")[0] not in OWN_PACKAGES

    @staticmethod
    def _private(name: str) -> bool:
        """A private helper module of the checker's (``reference_layers._validate``): no layer
        in it, so it is not refused."""
        return any(part.startswith("_") for part in name.split(".")[1:])

    def _stand_in(self, name: str) -> types.ModuleType:
        """The module ``name`` as checked code gets it: its layers raise when called (and
        are reported); its private helpers (``_pad``, ``_windows``) are the real ones."""
        module = types.ModuleType(name)

        def attribute(attr: str) -> Any:
            if attr.startswith("__"):
                raise AttributeError(attr)
            if attr.startswith("_"):
                return getattr(self.original_import_module(name), attr)
            if name not in self.refused:
                self.refused.append(name)
            return _Refused(name, attr)

        module.__getattr__ = attribute  # type: ignore[method-assign]
        return module

    def _import(self, name: str, globals: Any = None, locals: Any = None, fromlist: Any = (),
                level: int = 0) -> Any:
        if level == 0 and self._own(name, globals) and not self._private(name):
            return self._stand_in(name)
        return self.original_import(name, globals, locals, fromlist, level)

    def _import_module(self, name: str, package: str | None = None) -> Any:
        caller = sys._getframe(1).f_globals
        if not name.startswith(".") and self._own(name, caller) and not self._private(name):
            return self._stand_in(name)
        return self.original_import_module(name, package)


def _describe(obj: Any, codec: Codec, arrays: list[np.ndarray]) -> dict[str, Any]:
    """What the judge needs to know of a callable: names, docstring, signature."""
    try:
        parameters = list(inspect.signature(obj).parameters.values())
    except (TypeError, ValueError):
        parameters = None
    described = None if parameters is None else [
        [p.name, int(p.kind), p.default is not inspect.Parameter.empty,
         None if p.default is inspect.Parameter.empty else codec.encode(p.default, arrays)]
        for p in parameters]
    doc = inspect.getdoc(obj)
    return {"name": str(getattr(obj, "__name__", type(obj).__name__)),
            "qualname": str(getattr(obj, "__qualname__", "")), "module": str(getattr(obj, "__module__", "")),
            "doc": doc[:_TEXT_LIMIT] if isinstance(doc, str) else None,
            "class": isinstance(obj, type), "parameters": described}


class _Warnings:
    """The warnings the checked code raises in a call (``ComplexWarning`` tells the judge
    that the forward drops imaginary parts), each once, as ``[category, message]``."""

    def __init__(self) -> None:
        self.catcher = warnings.catch_warnings(record=True)
        self.found: list[list[str]] = []

    def __enter__(self) -> _Warnings:
        log = self.catcher.__enter__()
        self.log = log if log is not None else []  # the list itself: it fills during the call
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc: Any) -> None:
        for w in self.log:
            item = [type(w.message).__name__[:80], str(w.message)[:2000]]
            if item not in self.found and len(self.found) < 20:
                self.found.append(item)
        self.catcher.__exit__(*exc)


class _Server:
    """The objects kept for the judge, and the operations it may ask for."""

    def __init__(self, sock: socket.socket, guard: _Guard) -> None:
        self.sock, self.guard = sock, guard
        self.objects: dict[int, Any] = {}
        self.counter = 0
        self.codec = Codec(self.keep, self.lookup)
        self.pending: list[np.ndarray] = []
        self.watched: list[tuple[int, int, weakref.ref[np.ndarray], bytes]] = []

    def keep(self, obj: Any) -> dict[str, Any]:
        self.counter += 1
        self.objects[self.counter] = obj
        node: dict[str, Any] = {"h": self.counter, "type": type(obj).__name__[:80]}
        if callable(obj):
            node["meta"] = _describe(obj, self.codec, self.pending)
        return node

    def lookup(self, node: dict[str, Any]) -> Any:
        try:
            return self.objects[int(node["h"])]
        except (KeyError, TypeError, ValueError):
            raise ChannelError(f"no object {node.get('h')!r} is kept") from None

    def watch_arguments(self, call: int, args: list[Any], contents: list[bytes | None]) -> None:
        """Remember the arrays of call number ``call`` and their ``contents`` after it: a
        cache may hold them, and a later call write into them (a backward into the ``x``
        its forward cached)."""
        self.watched += [(call, i, weakref.ref(a), seen) for i, (a, seen) in enumerate(zip(args, contents))
                         if isinstance(a, np.ndarray) and seen is not None]

    def earlier_writes(self) -> list[list[Any]]:
        """``[call, index, value]`` for each remembered array written into since it was last
        seen; arrays nothing holds any more are forgotten."""
        found, alive = [], []
        for call, index, ref, seen in self.watched:
            array = ref()
            if array is None:
                continue
            now = array.tobytes()
            if now != seen:
                found.append([call, index, self.encode(array)])
            alive.append((call, index, ref, now))
        self.watched = alive
        return found

    def encode(self, value: Any, opaque: bool = False) -> Any:
        return self.codec.encode(value, self.pending, opaque)

    def loop(self) -> None:
        while True:
            try:
                header, arrays = read_frame(self.sock)
            except EOFError:
                return
            for handle in header.get("release", ()):
                self.objects.pop(handle, None)
            self.pending = []
            try:
                reply = {"ok": True, **_OPERATIONS[str(header["op"])](self, header, arrays)}
            except BaseException as exc:  # the checked code may raise anything, SystemExit included
                self.pending = []
                reply = {"ok": False, "error": {
                    "type": type(exc).__name__[:80], "message": str(exc)[:_TEXT_LIMIT],
                    "traceback": user_traceback(exc)[-_TEXT_LIMIT:]}}
            write_frame(self.sock, reply, self.pending)


def _load(server: _Server, header: dict[str, Any], arrays: list[np.ndarray]) -> dict[str, Any]:
    try:
        module = load_target(str(header["target"]), python2=bool(header.get("python2")), python2_imports=True)
    except TargetError as exc:
        return {"import_error": str(exc), "refused": server.guard.refused}
    source = ""
    try:
        with open(module.__file__ or "", encoding="utf-8", errors="replace") as fh:
            source = fh.read()
    except (OSError, TypeError):
        pass
    return {"value": server.keep(module), "source": source[:2_000_000], "refused": server.guard.refused}


def _discover(server: _Server, header: dict[str, Any], arrays: list[np.ndarray]) -> dict[str, Any]:
    module = server.codec.decode(header["module"], arrays)
    return {"discovery": discover(module, str(header["target"])).to_dict(),
            "refused": server.guard.refused}


def _call(server: _Server, header: dict[str, Any], arrays: list[np.ndarray]) -> dict[str, Any]:
    decode = server.codec.decode
    fn = decode(header["fn"], arrays)
    args = list(decode(header["args"], arrays))
    kwargs = decode(header["kwargs"], arrays)
    before = [a.tobytes() if isinstance(a, np.ndarray) else None for a in args]
    if header.get("seed") is not None:
        np.random.seed(int(header["seed"]))  # noqa: NPY002 - the course's code draws from it
    with _Warnings() as caught:
        result = fn(*args, **kwargs)
    role = header.get("role", "data")
    if role == "object":
        value = server.keep(result)
    elif role == "forward" and isinstance(result, (tuple, list)) and len(result) >= 2:
        *outputs, cache = result
        items = [server.encode(v) for v in outputs] + [None if cache is None else server.keep(cache)]
        value = {"t" if isinstance(result, tuple) else "l": items}
    else:
        value = server.encode(result)
    after = [a.tobytes() if isinstance(a, np.ndarray) else None for a in args]
    synced = [[i, server.encode(a)] for i, (a, b, c) in enumerate(zip(args, before, after))
              if (b is not None and c != b) or type(a) in (dict, list)]
    earlier = server.earlier_writes()
    server.watch_arguments(int(header.get("call", 0)), args, after)
    return {"value": value, "synced": synced, "earlier": earlier, "warnings": caught.found}


def _call_many(server: _Server, header: dict[str, Any], arrays: list[np.ndarray]) -> dict[str, Any]:
    fn = server.codec.decode(header["fn"], arrays)
    forward = header.get("role") == "forward"
    results = []
    with _Warnings() as caught:
        for args in server.codec.decode(header["calls"], arrays):
            result = fn(*args)
            if forward and isinstance(result, (tuple, list)) and len(result) >= 2:
                result = (*result[:-1], None)  # the cache is not wanted
            results.append(server.encode(result))
    return {"value": {"l": results}, "warnings": caught.found}


def _getattr(server: _Server, header: dict[str, Any], arrays: list[np.ndarray]) -> dict[str, Any]:
    obj = server.codec.decode(header["obj"], arrays)
    return {"value": server.encode(getattr(obj, str(header["name"])))}


def _setattr(server: _Server, header: dict[str, Any], arrays: list[np.ndarray]) -> dict[str, Any]:
    obj = server.codec.decode(header["obj"], arrays)
    value = server.codec.decode(header["value"], arrays)
    if "key" in header:  # obj.name[key] = value
        getattr(obj, str(header["name"]))[server.codec.decode(header["key"], arrays)] = value
    else:
        setattr(obj, str(header["name"]), value)
    return {}


def _torch_watch(server: _Server, header: dict[str, Any], arrays: list[np.ndarray]) -> tuple[Any, Any]:
    """The module of a torch check and a tensor watch for it, torch set up as the judge asks."""
    import torch

    from gradcheck.devices import TensorWatch

    module = server.codec.decode(header["module"], arrays)
    torch.set_num_threads(1)
    if header.get("float64_default"):
        torch.set_default_dtype(torch.float64)
    watch = TensorWatch(getattr(module, "__file__", "") or "", getattr(torch, str(header["dtype"])),
                        str(header["device"]))
    return module, watch


def _torch_pair(server: _Server, header: dict[str, Any], arrays: list[np.ndarray]) -> dict[str, Any]:
    from gradcheck.torch_adapter import numpy_pair
    from gradcheck.torch_layers import resolve

    module, watch = _torch_watch(server, header, arrays)
    backward = header.get("backward")
    pair = numpy_pair(resolve(module, str(header["forward"])),
                      resolve(module, str(backward)) if backward else None,
                      device=str(header["device"]), watch=watch, label=header.get("label"))
    return {"value": {"t": [server.keep(pair[0]), None if pair[1] is None else server.keep(pair[1]),
                            server.keep(watch)]}}


def _torch_model(server: _Server, header: dict[str, Any], arrays: list[np.ndarray]) -> dict[str, Any]:
    """A constructor of the module's torch model making numpy-facing models (the tensors
    never cross the channel), and the tensor watch around its calls."""
    from gradcheck.torch_adapter import numpy_model

    module, watch = _torch_watch(server, header, arrays)
    make = numpy_model(getattr(module, str(header["name"])), device=str(header["device"]),
                       seed=int(header["seed"]), watch=watch)
    return {"value": {"t": [server.keep(make), server.keep(watch)]}}


def _array_pair(server: _Server, header: dict[str, Any], arrays: list[np.ndarray]) -> dict[str, Any]:
    """The module's functions as functions on numpy arrays, computing with the array
    library it was written for; or why that library cannot be used here."""
    from gradcheck.array_api import LibraryUnusable
    from gradcheck.array_layers import array_pair

    module = server.codec.decode(header["module"], arrays)
    backward = header.get("backward")
    try:
        pair = array_pair(module, str(header["forward"]), str(backward) if backward else None,
                          str(header["library"]))
    except (LibraryUnusable, ImportError) as exc:
        return {"unusable": str(exc)}
    return {"value": {"t": [server.keep(pair[0]), None if pair[1] is None else server.keep(pair[1])]}}


def _hazards(server: _Server, header: dict[str, Any], arrays: list[np.ndarray]) -> dict[str, Any]:
    watch = server.codec.decode(header["watch"], arrays)
    return {"hazards": [[h.kind, h.function, h.created, h.used, h.dtype, h.device] for h in watch.hazards]}


def _legacy(server: _Server, header: dict[str, Any], arrays: list[np.ndarray]) -> dict[str, Any]:
    return {"used": dict(legacy.used_aliases()), "python2": python2_used(), "stray": stray_used()}


_OPERATIONS: dict[str, Callable[[_Server, dict[str, Any], list[np.ndarray]], dict[str, Any]]] = {
    "load": _load, "discover": _discover, "call": _call, "call_many": _call_many, "getattr": _getattr,
    "setattr": _setattr, "torch_pair": _torch_pair, "torch_model": _torch_model, "hazards": _hazards,
    "array_pair": _array_pair, "legacy": _legacy,
}


def _die_with_parent() -> None:
    """Linux: the worker is killed when the judge ends, whatever the checked code is doing."""
    try:
        import ctypes
        import signal

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


def worker_main(sock: socket.socket, memory_mb: int | None, fresh_cwd: str | None) -> None:
    """The forked worker's life: limits, the import guard, then answering the judge."""
    _die_with_parent()
    if fresh_cwd is not None:
        os.chdir(tempfile.mkdtemp(prefix="cwd-", dir=fresh_cwd))
    if memory_mb is not None:
        limit = memory_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    legacy.install_numpy_aliases()
    serve(sock)


def serve(sock: socket.socket) -> None:
    guard = _Guard()
    guard.install()
    _Server(sock, guard).loop()
