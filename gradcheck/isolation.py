"""Running somebody's code in a separate process with a time limit.

The checker itself must survive anything the checked code does: raise, return garbage,
loop forever, call ``sys.exit`` or ``os._exit``, crash the interpreter, or tamper with
the checker's own classes. Each task runs in a judge process (:mod:`gradcheck.judge`),
forked from a ``multiprocessing`` fork server that has gradcheck, numpy and hypothesis
imported already (so a task starts in milliseconds, not a second); the judge forks the
worker that imports the checked code and decides the verdict from its answers. Both are
killed when the time is up. What comes back is either the judge's JSON result, through a
pipe, or a reason there is none, each with what the checked code printed.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import multiprocessing.connection
import multiprocessing.spawn as mp_spawn
import os
import re
import signal
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from gradcheck.candidate import Outcome
from gradcheck.discover import Discovery, Match
from gradcheck.kinds import ViolationKind
from gradcheck.options import CheckOptions
from gradcheck.remote import exit_reason
from gradcheck.specs import get_spec

__all__ = ["Sandbox", "WorkerFailure", "check_isolated", "discover_isolated", "reference_outcome",
           "run_isolated"]

_PRELOAD = ["gradcheck.judge", "gradcheck.worker_server"]
_context: Any = None
_lock = threading.RLock()


_OUTPUT_LIMIT = 100_000  # characters of printed output kept (the last ones)


@dataclass(frozen=True)
class Sandbox:
    """What a worker process gets besides its time limit.

    memory_mb : int or None
        Address space of the process (``RLIMIT_AS``), in MiB: an allocation beyond it raises
        ``MemoryError`` in the checked code, which becomes an error naming the limit.
    fresh_cwd : bool
        Run in a new, empty temporary working directory (removed afterwards). Targets must
        then be absolute paths.

    Standard input is always closed (``/dev/null``): a stray ``input()`` ends at once.
    """

    memory_mb: int | None = None
    fresh_cwd: bool = False

    def __post_init__(self) -> None:
        if self.memory_mb is not None and (not isinstance(self.memory_mb, int) or self.memory_mb < 1):
            raise ValueError(f"memory_mb={self.memory_mb!r} must be a positive number of MiB, or None")

    def explain(self, text: str) -> str | None:
        """The message for a worker that ran out of the memory limit, judged by ``text``
        (its error or output); ``None`` when ``text`` shows no exhausted memory."""
        found = _MEMORY_ERROR.search(text) if self.memory_mb is not None else None
        if found is None:
            return None
        start = text.rfind("\n", 0, found.start()) + 1
        end = text.find("\n", found.end())
        line = text[start:end if end >= 0 else len(text)].strip()
        return (f"exceeded the memory limit of {self.memory_mb} MB per worker (--memory): the code "
                f"allocates more than that ({line})")


_MEMORY_ERROR = re.compile(r"\bMemoryError\b|Unable to allocate|Cannot allocate memory")


class WorkerFailure(Exception):
    """The worker produced no result; the message says why, in the user's terms.

    ``reason`` is the why alone; ``output`` what the process printed (the message ends
    with its last lines when the process crashed).
    """

    def __init__(self, reason: str, output: str = "", *, with_tail: bool = False) -> None:
        tail = _tail(output) if with_tail else ""
        super().__init__(reason + (f"; last output:\n{tail}" if tail else ""))
        self.reason = reason
        self.output = output


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


def _tail(text: str, lines: int = 12) -> str:
    kept = [line for line in text.strip().splitlines() if line.strip()][-lines:]
    return "\n".join(kept)


def _captured(path: str) -> str:
    """What the process printed (stdout and stderr), its last ``_OUTPUT_LIMIT`` characters."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - _OUTPUT_LIMIT))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    if size > _OUTPUT_LIMIT:
        text = f"[... {size - _OUTPUT_LIMIT} earlier bytes of output not kept ...]\n" + text
    return text


def _child(task_path: str, conn: Any, log_path: str) -> None:
    # line-buffered: what was printed before a crash of the interpreter is in the file
    log = open(log_path, "w", encoding="utf-8", buffering=1)  # lives as long as the process
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = sys.stderr = log
    _close_stdin()
    os.setsid()  # the judge and its worker: one process group, killed together
    from gradcheck.judge import judge

    with open(task_path, encoding="utf-8") as fh:
        task = json.load(fh)
    warnings.simplefilter("ignore")
    result = judge(task, close=(conn.fileno(),))
    conn.send_bytes(json.dumps(result).encode("utf-8"))
    log.flush()


def _close_stdin() -> None:
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.stdin = open(os.devnull, encoding="utf-8")  # lives as long as the process


def run_isolated(task: dict[str, Any], timeout: float, timeout_option: str = "--timeout",
                 sandbox: Sandbox | None = None) -> dict[str, Any]:
    """Run ``task`` in a judge process (which runs the checked code in a worker of its
    own); raise :class:`WorkerFailure` when it gives no result.

    The result's ``"output"`` is what the checked code printed. ``timeout_option`` is how
    the caller's face names the limit (``--gradcheck-timeout`` in pytest), for the message
    of a task that runs out of time; ``sandbox`` adds a memory limit and a fresh working
    directory for the worker. The result comes back through a pipe only the judge holds:
    the worker has no way to it, and no file it could forge.
    """
    ctx = _get_context()
    # the checked code may write into this folder too: a failed clean-up is not our crash
    with tempfile.TemporaryDirectory(prefix="gradcheck-", ignore_cleanup_errors=True) as tmp:
        task_path = os.path.join(tmp, "task.json")
        log_path = os.path.join(tmp, "output.log")
        if sandbox is not None:
            task = {**task, "sandbox": {"memory_mb": sandbox.memory_mb,
                                        "fresh_cwd": tmp if sandbox.fresh_cwd else None}}
        with open(task_path, "w", encoding="utf-8") as fh:
            json.dump(task, fh)
        receiver, sender = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_child, args=(task_path, sender, log_path), daemon=False)
        with _lock, _without_main_fixup():
            proc.start()
        sender.close()
        result, ended = _receive(receiver, proc, timeout)
        if result is None and not ended:
            _kill(proc)
            raise WorkerFailure(
                f"timed out after {timeout:g} s: an endless loop, or a layer too slow for "
                f"its generated cases (raise the limit with {timeout_option})", _captured(log_path)
            )
        _kill(proc)
        output = _captured(log_path)
        if result is not None and "gone" not in result:
            result["output"] = output
            return result
        reason = str(result["gone"]) if result is not None else exit_reason(proc.exitcode)
        memory = sandbox.explain(output) if sandbox is not None else None
        raise WorkerFailure(memory or reason, output, with_tail=True)


def _receive(receiver: Any, proc: Any, timeout: float) -> tuple[dict[str, Any] | None, bool]:
    """The judge's result (``None`` when there is none), and whether the judge ended
    rather than ran out of time."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            left = deadline - time.monotonic()
            ready = multiprocessing.connection.wait([receiver, proc.sentinel], max(0.0, left))
            if receiver in ready:
                data: dict[str, Any] = json.loads(receiver.recv_bytes().decode("utf-8"))
                return data, True
            if ready or left <= 0:
                return None, bool(ready)
    except (EOFError, OSError, ValueError):
        return None, True
    finally:
        receiver.close()


def _reported_kind(match_kind: str) -> str:
    """What an outcome of a match of ``match_kind`` is, as JSON says it: a torch layer is a
    ``layer`` (so is a layer of an array API library), a torch model a ``model``."""
    return {"torch": "layer", "torch_model": "model", "array_api": "layer"}.get(match_kind, match_kind)


def unfinished(spec: str, functions: tuple[str, str | None], kind: str, config: str,
               reason: str) -> Outcome:
    """A check that ended without a verdict (its process died, timed out, broke the
    channel): the reason, and ``-`` for every gradient of the layer's spec."""
    named = {"layer": spec, "torch": config, "array_api": spec}.get(kind)
    outcome = Outcome(spec=spec, functions=functions, kind=_reported_kind(kind))
    outcome.gradients = {name: "-" for name in (get_spec(named).wrt if named else ())}
    outcome.forward, outcome.error = "-", reason
    return outcome


def reference_outcome(match: Match) -> Outcome:
    """The verdict on a layer whose functions are the checker's own reference, imported:
    FAILED, with that reason (checking it would only check the reference)."""
    outcome = Outcome(spec=match.spec, functions=(match.forward, match.backward), kind="layer")
    outcome.forward = "FAILED"
    outcome.gradients = {name: "-" for name in get_spec(match.spec).wrt}
    outcome.contract = [ViolationKind.REFERENCE_IMPORTED.value]
    outcome.forward_message = (
        f"{match.forward} is imported from {match.config}: it hands in the checker's own "
        "reference implementation instead of the student's code, so there is nothing of the "
        "student's to check. Write the layer in the file itself.")
    return outcome


def _kill(proc: Any) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.join(5)


def discover_isolated(path: str, timeout: float, sandbox: Sandbox | None = None) -> Discovery | str:
    """The layers found in ``path``, or the reason it could not be imported."""
    try:
        result = run_isolated({"kind": "discover", "target": path}, timeout, sandbox=sandbox)
    except WorkerFailure as exc:
        return f"importing {path}: {exc}"
    if "import_error" in result:
        error = str(result["import_error"])
        memory = sandbox.explain(error) if sandbox is not None else None
        return f"importing {path}: {memory}\n{error}" if memory else error
    if not isinstance(result.get("discovery"), dict):
        return f"importing {path}: the judge returned no list of layers (got {sorted(result)})"
    return Discovery.from_dict(result["discovery"])


def check_isolated(path: str, match: Match, options: CheckOptions, timeout: float,
                   timeout_option: str = "--timeout", sandbox: Sandbox | None = None) -> Outcome:
    """Check one layer of ``path`` in a worker; a worker that dies is a failing outcome,
    and so is one that ran out of the ``sandbox``'s memory."""
    if match.kind == "reference":
        return reference_outcome(match)
    task = {"kind": "check", "target": path, "spec": match.spec, "forward": match.forward,
            "backward": match.backward, "options": options.to_dict(), "match_kind": match.kind,
            "config": match.config}
    started = time.perf_counter()
    outcome = Outcome(spec=match.spec, functions=(match.forward, match.backward),
                      kind=_reported_kind(match.kind))
    try:
        result = run_isolated(task, timeout, timeout_option, sandbox)
    except WorkerFailure as exc:
        # what it printed last is shown as its output
        outcome = unfinished(match.spec, (match.forward, match.backward), match.kind, match.config,
                             exc.reason)
        outcome.output = exc.output
        outcome.seconds = time.perf_counter() - started
        return outcome
    if "import_error" in result:
        outcome.error = str(result["import_error"])
        return outcome
    outcome = Outcome.from_dict(result["outcome"])
    outcome.output = result["output"]
    if sandbox is not None and not outcome.passed:
        memory = sandbox.explain("\n".join([outcome.error, outcome.forward_message, outcome.report_text]))
        if memory:
            outcome.error = memory
    return outcome
