"""The judge's side of the channel: the worker's objects as local stand-ins.

:class:`Worker` forks the worker process (:mod:`gradcheck.worker_server`) and sends it
requests. What the worker keeps comes back as proxies the checker uses as it would the
objects themselves: a :class:`RemoteFunction` is called like the student's function (its
name, docstring and signature are the function's), a cache is an opaque
:class:`RemoteHandle`, a model a :class:`RemoteObject` whose ``params`` dict writes
through. Arguments the call wrote into are written into the caller's arrays, so the
contract checks see them. Every reply is validated; a worker that dies or sends garbage
raises :class:`WorkerGone`, which ends the check of that layer (it is the checked code's
doing, never a verdict the checked code can shape).
"""

from __future__ import annotations

import builtins
import copy
import inspect
import os
import signal
import socket
import warnings
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np

from gradcheck.channel import ChannelError, Codec, read_frame, write_frame

__all__ = ["RemoteError", "RemoteFunction", "RemoteHandle", "RemoteObject", "Worker", "WorkerGone",
           "exit_reason"]


class WorkerGone(BaseException):
    """The worker process ended, or broke the channel: nothing more can be asked of it.
    A ``BaseException``: it passes through the checker's handling of the code's errors."""


class RemoteError(Exception):
    """The checked code raised in the worker: its type name, message and own traceback."""

    def __init__(self, type_name: str, message: str, trace: str) -> None:
        super().__init__(message)
        self.type_name, self.remote_traceback = type_name, trace


_NAMED: dict[tuple[type, str], type] = {}


def _named(base: type, name: str) -> type:
    """A subclass of ``base`` called ``name`` (made once): errors, warnings and kept objects
    of the worker carry the names of the student's types into every message."""
    found = _NAMED.get((base, name))
    if found is None:
        found = _NAMED[(base, name)] = type(name, (base,), {})
    return found


def _error(data: Any) -> RemoteError:
    """A ``RemoteError`` whose class is named as the original (``ValueError``), so every
    message that names the exception's type names the student's."""
    if not isinstance(data, dict):
        return RemoteError("Exception", "the worker reported an error without details", "")
    name = _identifier(str(data.get("type", "Exception"))) or "Exception"
    cls = _named(RemoteError, name)
    return cls(name, str(data.get("message", "")), str(data.get("traceback", "")))


def _identifier(text: str) -> str:
    """A type name the worker sent, kept to what a Python name can be (80 characters)."""
    return "".join(c for c in text if c.isalnum() or c == "_")[:80]


def exit_reason(code: int | None) -> str:
    """Why a process ended, from its exit code (negative: the signal that killed it), in
    the user's terms."""
    code = code if code is not None else -1
    if code < 0:
        number = -code
        name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else str(number)
        return f"crashed the Python interpreter ({name})"
    return f"ended the Python process with exit status {code} (os._exit, or a crash)"


class Worker:
    """One worker process and the channel to it."""

    def __init__(self, memory_mb: int | None = None, fresh_cwd: str | None = None,
                 close: tuple[int, ...] = ()) -> None:
        judge_end, worker_end = socket.socketpair()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            judge_end.close()
            for fd in close:  # the judge's own channels (its result) are not the worker's
                os.close(fd)
            code = 0
            try:
                from gradcheck.worker_server import worker_main

                worker_main(worker_end, memory_mb, fresh_cwd)
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        worker_end.close()
        self.pid, self.sock = pid, judge_end
        self.released: list[int] = []
        self.codec = Codec(self._refuse, self._proxy)
        self.gone: str | None = None
        self.calls = 0
        self.handed: dict[int, list[Callable[[], Any]]] = {}

    def _refuse(self, value: Any) -> dict[str, Any]:
        if isinstance(value, RemoteHandle) and value.worker is self:
            return {"h": value.id}
        raise TypeError(f"cannot send a {type(value).__name__} to the checked code's worker")

    def _proxy(self, node: dict[str, Any]) -> Any:
        handle = node.get("h")
        if not isinstance(handle, int) or isinstance(handle, bool):
            raise ChannelError(f"a malformed handle {handle!r}")
        meta = node.get("meta")
        type_name = _identifier(str(node.get("type", "object")))
        if isinstance(meta, dict):
            cls = RemoteClass if meta.get("class") else RemoteFunction
            return cls(self, handle, type_name or "function", meta)
        if type_name not in ("", "tuple", "list", "dict", "ndarray"):
            return RemoteObject(self, handle, type_name)
        return _named(RemoteHandle, type_name or "object")(self, handle, type_name)

    def request(self, op: str, **fields: Any) -> tuple[dict[str, Any], Any]:
        """Send one request; the reply's header (its arrays under ``"_arrays"``) and its
        decoded ``value``."""
        if self.gone is not None:
            raise WorkerGone(self.gone)
        arrays: list[np.ndarray] = []
        header: dict[str, Any] = {"op": op, "release": list(self.released)}
        for key, value in fields.items():
            header[key] = self.codec.encode(value, arrays) if key in _ENCODED else value
        self.released.clear()  # in place: the handles' finalizers append to this list
        self.calls += 1
        try:
            write_frame(self.sock, header, arrays)
            reply, got = read_frame(self.sock)
            if reply.get("ok") is False:
                raise _error(reply.get("error"))
            if reply.get("ok") is not True:
                raise ChannelError("a reply without a status")
            reply["_arrays"] = got
            _warn(reply.get("warnings"))
            return reply, self.codec.decode(reply.get("value"), got)
        except (EOFError, OSError) as exc:
            self.gone = f"{self._ended()} ({exc})" if isinstance(exc, EOFError) else self._ended()
        except ChannelError as exc:
            self.gone = (f"the checked code broke gradcheck's channel to its process (a reply that "
                         f"is not a valid message: {exc})")
        self.close()
        raise WorkerGone(self.gone)

    def _ended(self) -> str:
        try:
            _, status = os.waitpid(self.pid, 0)
        except ChildProcessError:
            return "ended the Python process"
        return exit_reason(os.waitstatus_to_exitcode(status))

    def call(self, fn: RemoteHandle, args: tuple[Any, ...], kwargs: dict[str, Any], role: str,
             seed: int | None = None) -> Any:
        """``fn(*args, **kwargs)`` in the worker; writes into ``args`` are copied back."""
        number = self.calls + 1
        reply, value = self.request("call", fn=fn, args=args, kwargs=kwargs, role=role, seed=seed,
                                    call=number)
        got = reply.get("_arrays") or []
        for index, new in self._listed(reply.get("synced", []), 2):
            if not 0 <= index[0] < len(args):
                raise ChannelError("a malformed written argument")
            _write_back(args[index[0]], self.codec.decode(new, got))
        for (earlier, position), new in self._listed(reply.get("earlier", []), 3):
            refs = self.handed.get(earlier, [])
            original = refs[position]() if 0 <= position < len(refs) else None
            if original is not None:  # written into by this call, through the worker's cache
                _write_back(original, self.codec.decode(new, got))
        self._remember(number, args)
        return value

    @staticmethod
    def _listed(items: Any, size: int) -> list[tuple[list[int], Any]]:
        """``[(integers, value)]`` from a reply's list of ``[int, ..., value]`` items."""
        def valid(item: Any) -> bool:
            return isinstance(item, list) and len(item) == size and all(type(n) is int for n in item[:-1])

        if not isinstance(items, list) or not all(valid(i) for i in items):
            raise ChannelError("a malformed list of written arguments")
        return [(item[:-1], item[-1]) for item in items]

    def _remember(self, number: int, args: tuple[Any, ...]) -> None:
        """The arrays handed to call ``number``, while the caller keeps them: a later call may
        write into them through a cache (see :meth:`call`)."""
        self.handed[number] = [weakref.ref(a) if isinstance(a, np.ndarray) else _dead for a in args]
        if len(self.handed) > 256:  # forget the calls whose arrays are all gone
            self.handed = {k: v for k, v in self.handed.items() if any(r() is not None for r in v)}

    def close(self) -> None:
        """End the worker (killed if it does not end at once) and reap it."""
        try:
            self.sock.close()
        finally:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.gone is None:
            self.gone = "closed"
            self.close()


def _dead() -> None:
    return None


_ENCODED = {"fn", "args", "kwargs", "obj", "value", "key", "module", "watch", "calls"}


def _write_back(original: Any, new: Any) -> None:
    """What the checked code did to an argument, done to the caller's own object."""
    if isinstance(original, np.ndarray) and isinstance(new, np.ndarray):
        if original.shape == new.shape and original.flags.writeable:
            np.copyto(original, new, casting="unsafe")
    elif isinstance(original, dict) and isinstance(new, dict):
        for key in [k for k in original if k not in new]:
            del original[key]
        for key, value in new.items():
            old = original.get(key)
            if isinstance(old, np.ndarray) and isinstance(value, np.ndarray) and old.shape == value.shape \
                    and old.dtype == value.dtype:
                np.copyto(old, value)
            else:
                original[key] = value
    elif isinstance(original, list) and isinstance(new, list):
        original[:] = new


def _warn(found: Any) -> None:
    """The warnings the checked code raised in the worker, raised again here (by category
    name: ``ComplexWarning`` is how the complex-step probe learns that imaginary parts were
    dropped)."""
    if not isinstance(found, list):
        return
    for item in found[:20]:
        if isinstance(item, list) and len(item) == 2:
            name = _identifier(str(item[0])) or "UserWarning"
            category = getattr(np.exceptions, name, None) or getattr(builtins, name, None)
            if not (isinstance(category, type) and issubclass(category, Warning)):
                category = _named(UserWarning, name)
            warnings.warn(str(item[1]), category, stacklevel=2)




class RemoteHandle:
    """An object kept by the worker (a cache); sent back as itself when passed to a call."""

    def __init__(self, worker: Worker, handle: int, type_name: str) -> None:
        self.worker, self.id, self.type_name = worker, handle, type_name
        weakref.finalize(self, worker.released.append, handle)

    def __deepcopy__(self, memo: Any) -> RemoteHandle:
        return self  # the worker's object is not copied by copying its handle

    def __repr__(self) -> str:
        return f"<{self.type_name} kept by the worker>"


class RemoteFunction(RemoteHandle):
    """A function of the checked code: called in the worker, described locally."""

    role = "data"

    def __init__(self, worker: Worker, handle: int, type_name: str, meta: dict[str, Any]) -> None:
        super().__init__(worker, handle, type_name)
        self.__name__ = str(meta.get("name", "function"))[:200]
        self.__qualname__ = str(meta.get("qualname") or self.__name__)[:200]
        self.__module__ = str(meta.get("module", ""))[:200]
        self.__doc__ = meta["doc"] if isinstance(meta.get("doc"), str) else None
        self.__signature__ = _signature(meta.get("parameters"))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.worker.call(self, args, kwargs, self.role)

    def many(self, calls: list[list[Any]]) -> list[Any]:
        """The results of calling with each argument list in ``calls``, in one message;
        a forward's caches are not kept. Raises as the first call that raises."""
        _, value = self.worker.request("call_many", fn=self, calls=calls, role=self.role)
        if not isinstance(value, list) or len(value) != len(calls):
            raise ChannelError("a batch of results of the wrong length")
        return value

    def __repr__(self) -> str:
        return f"<function {self.__qualname__} in the worker>"


class RemoteClass(RemoteFunction):
    """A class of the checked code: calling it makes an instance in the worker."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.worker.call(self, args, kwargs, "object")

    def with_global_seed(self, seed: int) -> Any:
        """A constructor that seeds the worker's global NumPy generator first."""
        return lambda **kwargs: self.worker.call(self, (), kwargs, "object", seed=seed)


def _signature(parameters: Any) -> inspect.Signature | None:
    if not isinstance(parameters, list):
        return None
    try:
        return inspect.Signature([
            inspect.Parameter(str(name), inspect._ParameterKind(int(kind)),
                              default=default if has_default else inspect.Parameter.empty)
            for name, kind, has_default, default in parameters])
    except (TypeError, ValueError):
        return None


class RemoteObject(RemoteHandle):
    """An instance kept by the worker (a model): attributes are read from it and written to
    it; a dict attribute (``params``) is a local copy that writes through."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("worker", "id", "type_name"):
            raise AttributeError(name)
        try:
            _, value = self.worker.request("getattr", obj=self, name=name)
        except RemoteError as exc:
            raise AttributeError(str(exc)) from None
        if isinstance(value, dict):
            return _MirrorDict(self, name, value)
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("worker", "id", "type_name"):
            object.__setattr__(self, name, value)
            return
        self.worker.request("setattr", obj=self, name=name, value=value)


class _MirrorDict(dict[Any, Any]):
    """``obj.name`` as a local dict: items set here are set on the worker's dict too."""

    def __init__(self, owner: RemoteObject, name: str, items: dict[Any, Any]) -> None:
        super().__init__(items)
        self._owner, self._name = owner, name

    def __setitem__(self, key: Any, value: Any) -> None:
        self._owner.worker.request("setattr", obj=self._owner, name=self._name, key=key, value=value)
        super().__setitem__(key, value)

    def __deepcopy__(self, memo: Any) -> dict[Any, Any]:
        return {k: copy.deepcopy(v, memo) for k, v in self.items()}
