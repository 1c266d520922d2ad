"""Running somebody's code in a separate process with a time limit.

The checker itself must survive anything the checked code does: raise, return garbage,
loop forever, call ``sys.exit`` or ``os._exit``, or crash the interpreter. Each task runs
in its own process, forked from a ``multiprocessing`` fork server that has gradcheck,
numpy and hypothesis imported already (so a task starts in milliseconds, not a second),
and is killed when its time is up. What comes back is either the task's JSON result or
a reason the process produced none.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import multiprocessing.spawn as mp_spawn
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

from gradcheck.candidate import Outcome
from gradcheck.discover import Discovery, Match
from gradcheck.options import CheckOptions
from gradcheck.specs import get_spec

__all__ = ["WorkerFailure", "check_isolated", "discover_isolated", "run_isolated"]

_PRELOAD = ["gradcheck._worker", "gradcheck.candidate", "gradcheck.discover"]
_context: Any = None
_lock = threading.RLock()


class WorkerFailure(Exception):
    """The worker produced no result; the message says why, in the user's terms."""


def _get_context() -> Any:
    global _context
    with _lock:
        if _context is None:
            if "forkserver" in multiprocessing.get_all_start_methods():
                ctx = multiprocessing.get_context("forkserver")
                ctx.set_forkserver_preload(_PRELOAD)
            else:  # pragma: no cover - platforms without fork (Windows)
                ctx = multiprocessing.get_context("spawn")  # type: ignore[assignment]
            _context = ctx
        return _context


@contextlib.contextmanager
def _without_main_fixup() -> Iterator[None]:
    """Start workers without re-importing the caller's ``__main__`` in them.

    multiprocessing re-runs the main script in every new process (so its functions can be
    unpickled); our worker only needs gradcheck, and re-running a user's unguarded script
    would repeat its side effects (or recurse). The preparation data simply omits it.
    """
    original = mp_spawn.get_preparation_data

    def prepare(name: str) -> dict[str, Any]:
        data: dict[str, Any] = original(name)
        data.pop("init_main_from_path", None)
        data.pop("init_main_from_name", None)
        return data

    mp_spawn.get_preparation_data = prepare
    try:
        yield
    finally:
        mp_spawn.get_preparation_data = original


def _tail(path: str, lines: int = 12) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            text = fh.read()
    except OSError:
        return ""
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return "\n".join(kept)


def _child(task_path: str, result_path: str, log_path: str) -> None:
    log = open(log_path, "w", encoding="utf-8")  # lives as long as the process
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = log
    os.setsid()
    from gradcheck._worker import main

    main([task_path, result_path])
    log.flush()


def run_isolated(task: dict[str, Any], timeout: float, timeout_option: str = "--timeout") -> dict[str, Any]:
    """Run ``task`` in a fresh process; raise :class:`WorkerFailure` when it gives no result.

    ``timeout_option`` is how the caller's face names the limit (``--gradcheck-timeout``
    in pytest), for the message of a task that runs out of time.
    """
    ctx = _get_context()
    with tempfile.TemporaryDirectory(prefix="gradcheck-") as tmp:
        task_path = os.path.join(tmp, "task.json")
        result_path = os.path.join(tmp, "result.json")
        log_path = os.path.join(tmp, "output.log")
        with open(task_path, "w", encoding="utf-8") as fh:
            json.dump(task, fh)
        proc = ctx.Process(target=_child, args=(task_path, result_path, log_path), daemon=True)
        with _lock, _without_main_fixup():
            proc.start()
        proc.join(timeout)
        if proc.is_alive():
            _kill(proc)
            raise WorkerFailure(
                f"timed out after {timeout:g} s: an endless loop, or a layer too slow for "
                f"its generated cases (raise the limit with {timeout_option})"
            )
        if os.path.exists(result_path) and os.path.getsize(result_path):
            with open(result_path, encoding="utf-8") as fh:
                result: dict[str, Any] = json.load(fh)
            return result
        code = proc.exitcode if proc.exitcode is not None else -1
        if code < 0:
            number = -code
            name = signal.Signals(number).name if number in signal.Signals._value2member_map_ else str(number)
            reason = f"crashed the Python interpreter ({name})"
        else:
            reason = f"ended the Python process with exit status {code} (os._exit, or a crash)"
        detail = _tail(log_path)
        raise WorkerFailure(reason + (f"; last output:\n{detail}" if detail else ""))


def _kill(proc: Any) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.join(5)


def discover_isolated(path: str, timeout: float) -> Discovery | str:
    """The layers found in ``path``, or the reason it could not be imported."""
    try:
        result = run_isolated({"kind": "discover", "target": path}, timeout)
    except WorkerFailure as exc:
        return f"importing {path}: {exc}"
    if "import_error" in result:
        return str(result["import_error"])
    return Discovery.from_dict(result["discovery"])


def check_isolated(path: str, match: Match, options: CheckOptions, timeout: float,
                   timeout_option: str = "--timeout") -> Outcome:
    """Check one layer of ``path`` in a worker; a worker that dies is a failing outcome."""
    task = {"kind": "check", "target": path, "spec": match.spec, "forward": match.forward,
            "backward": match.backward, "options": options.to_dict(), "match_kind": match.kind,
            "config": match.config}
    started = time.perf_counter()
    outcome = Outcome(spec=match.spec, functions=(match.forward, match.backward), kind=match.kind)
    try:
        result = run_isolated(task, timeout, timeout_option)
    except WorkerFailure as exc:
        named = {"layer": match.spec, "torch": match.config}.get(match.kind)
        wrt = get_spec(named).wrt if named else ()
        outcome.gradients = {name: "-" for name in wrt}
        outcome.forward = "-"
        outcome.error = str(exc)
        outcome.seconds = time.perf_counter() - started
        return outcome
    if "import_error" in result:
        outcome.error = str(result["import_error"])
        return outcome
    return Outcome.from_dict(result["outcome"])
