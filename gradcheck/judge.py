"""The judge: decides every verdict, and never imports the checked code.

Called in a process of its own by :mod:`gradcheck.isolation`, with a task (``discover``
a target's layers, or ``check`` one of them). The checked code runs in a worker process
the judge forks (:mod:`gradcheck.remote`, :mod:`gradcheck.worker_server`); the judge
generates the cases, computes the references and the numerical derivatives, runs the
contract checks, diagnoses and writes the result. The worker only answers calls, so
whatever the checked code does to the classes, functions and modules of its own process
(gradcheck's included), the verdict is made where it cannot reach.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

from gradcheck import legacy
from gradcheck.candidate import check_candidate
from gradcheck.discover import Discovery, Match
from gradcheck.isolation import unfinished
from gradcheck.options import CheckOptions
from gradcheck.outcome import Outcome
from gradcheck.remote import RemoteError, RemoteFunction, Worker, WorkerGone
from gradcheck.specs import all_specs, get_spec
from gradcheck.stray_imports import stray_import_findings

__all__ = ["judge", "reference_imports"]

_OWN = ("reference_layers", "gradcheck")


def reference_imports(source: str) -> list[str]:
    """The lines of ``source`` that import the checker's own packages, as written."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    found = []
    for node in ast.walk(tree):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
        if any(name.split(".")[0] in _OWN for name in names):
            found.append(f"line {getattr(node, 'lineno', '?')}: {ast.unparse(node)}")
    return found


def judge(task: dict[str, Any], close: tuple[int, ...] = ()) -> dict[str, Any]:
    """The result of ``task``: ``{"discovery": ...}``, ``{"outcome": ...}`` or
    ``{"import_error": ...}``, made in this process from the worker's answers."""
    sandbox = task.get("sandbox") or {}
    with Worker(sandbox.get("memory_mb"), sandbox.get("fresh_cwd"), close) as worker:
        try:
            return _judge(task, worker)
        except WorkerGone as gone:
            return {"gone": str(gone)}


def _judge(task: dict[str, Any], worker: Worker) -> dict[str, Any]:
    target = str(task["target"])
    reply, module = worker.request("load", target=target, python2=False)
    if "import_error" in reply:
        return {"import_error": str(reply["import_error"])}
    if task["kind"] == "discover":
        reply, _ = worker.request("discover", module=module, target=target)
        discovery = _validated(reply.get("discovery"), target)
        refused = reply.get("refused")
        _flag_reference(discovery, [str(r) for r in refused] if isinstance(refused, list) else [],
                        _source(target))
        return {"discovery": discovery.to_dict()}
    outcome = _check(task, module, worker)
    if not outcome.passed:
        # Code of a Python 2 course year: check it again as that course ran it.
        text = "\n".join([outcome.forward_message, outcome.report_text, outcome.error])
        if legacy.looks_python2(text, _source(target)):
            _, again_module = worker.request("load", target=target, python2=True)
            again = _check(task, again_module, worker)
            python2 = legacy.python2_warning(text)
            if again.passed:
                again.add_warning(python2)
            else:  # the verdict on what the code does as its course ran it
                again.notes.append(f"checked under Python 2 semantics: {python2.message}")
            outcome = again
    _missing_dependency(outcome)
    reply, _ = worker.request("legacy")
    stray, notes = stray_import_findings(_texts(reply.get("stray")))
    outcome.notes += notes
    for warning in (legacy.numpy_warning(_texts(reply.get("used"))),
                    legacy.python2_import_warning(_texts(reply.get("python2"))), stray):
        if warning is not None and any(w["kind"] == warning.kind for w in outcome.warnings):
            outcome.notes.append(warning.message)  # one warning per kind: the rest said as a note
        elif warning is not None:
            outcome.add_warning(warning)
    return {"outcome": outcome.to_dict()}


def _texts(data: Any) -> dict[str, str]:
    """A worker's ``{name: text}`` reply, as plain strings (anything else: empty)."""
    return {str(k)[:300]: str(v)[:300] for k, v in data.items()} if isinstance(data, dict) else {}


def _source(target: str) -> str:
    try:
        with open(target, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return ""


def _validated(data: Any, target: str) -> Discovery:
    """The worker's discovery, kept only where it names what the judge knows how to check."""
    try:
        found = Discovery.from_dict(data)
    except (TypeError, KeyError, ValueError):
        return Discovery(target)
    specs = {spec.name for spec in all_specs()}
    kinds = {"layer", "agreement", "model", "torch", "torch_model", "array_api", "reference"}

    def known(m: Match) -> bool:
        texts = all(isinstance(v, str) for v in (m.spec, m.forward, m.kind, m.config))
        return texts and m.kind in kinds and (m.kind != "layer" or m.spec in specs) \
            and (m.backward is None or isinstance(m.backward, str))

    return Discovery(target, [m for m in found.matches if known(m)],
                     [str(f) for f in found.functions], [str(s) for s in found.skipped])


def _flag_reference(discovery: Discovery, refused: list[str], source: str) -> None:
    """A file that imports the checker's reference is said to, in the discovery's notes."""
    lines = reference_imports(source)
    if lines or refused:
        where = "; ".join(lines) if lines else f"at run time: {', '.join(refused)}"
        discovery.skipped.append(f"imports the checker's reference implementation ({where}): "
                                 "refused, and every layer bound to it is FAILED")


def _check(task: dict[str, Any], module: Any, worker: Worker) -> Outcome:
    """The check of one match, against the worker's module; a worker that ends is an error."""
    options = CheckOptions.from_dict(task["options"])
    kind = task.get("match_kind")
    try:
        return _CHECKS.get(kind, _check_layer)(task, module, worker, options)
    except WorkerGone as gone:
        return unfinished(task["spec"], (task["forward"], task.get("backward")), kind or "layer",
                          task.get("config", ""), str(gone))


def _function(module: Any, name: str, role: str) -> Any:
    try:
        fn = getattr(module, name)
    except AttributeError as exc:
        raise RemoteError("AttributeError", str(exc), "") from None
    if isinstance(fn, RemoteFunction):
        fn.role = role
    return fn


def _check_layer(task: dict[str, Any], module: Any, worker: Worker, options: CheckOptions) -> Outcome:
    spec = get_spec(task["spec"])
    backward = task.get("backward")
    forward = _function(module, task["forward"], "forward" if backward else "data")
    return check_candidate(spec, forward, _function(module, backward, "data") if backward else None,
                           options)


def _check_agreement(task: dict[str, Any], module: Any, worker: Worker, options: CheckOptions) -> Outcome:
    from gradcheck.agreement import check_agreement

    return check_agreement(module, task["forward"], task["backward"], options)


def _check_model(task: dict[str, Any], module: Any, worker: Worker, options: CheckOptions) -> Outcome:
    from gradcheck.models import check_model_config

    return check_model_config(module, task["forward"], task["config"], options)


def _check_torch(task: dict[str, Any], module: Any, worker: Worker, options: CheckOptions) -> Outcome:
    from gradcheck.torch_layers import check_torch_match

    def make_pair(float64_default: bool, device: str) -> tuple[Any, Any, Any]:
        _, (forward, backward, watch) = worker.request(
            "torch_pair", module=module, forward=task["forward"], backward=task.get("backward"),
            device=device, dtype=options.dtype, label=task["forward"].rpartition(".")[0] or None,
            float64_default=float64_default)
        for fn, role in ((forward, "forward" if backward is not None else "data"), (backward, "data")):
            if isinstance(fn, RemoteFunction):
                fn.role = role
        return forward, backward, _RemoteWatch(worker, watch)

    return check_torch_match(module, task["config"], task["spec"], task["forward"], task.get("backward"),
                             options, make_pair=make_pair)


def _check_torch_model(task: dict[str, Any], module: Any, worker: Worker, options: CheckOptions) -> Outcome:
    from gradcheck.torch_models import check_torch_model

    def make_model(float64_default: bool, device: str) -> tuple[Any, Any]:
        _, (make, watch) = worker.request(
            "torch_model", module=module, name=task["forward"], device=device, dtype=options.dtype,
            seed=options.seed, float64_default=float64_default)
        return make, _RemoteWatch(worker, watch)

    return check_torch_model(module, task["forward"], task["config"], options, make_model=make_model)


def _check_array_api(task: dict[str, Any], module: Any, worker: Worker, options: CheckOptions) -> Outcome:
    from gradcheck.array_layers import check_array_match

    def make_pair() -> tuple[Any, Any] | str:
        reply, pair = worker.request("array_pair", module=module, forward=task["forward"],
                                     backward=task.get("backward"), library=task["config"])
        if "unusable" in reply:
            return str(reply["unusable"])[:2000]
        forward, backward = pair
        for fn, role in ((forward, "forward" if backward is not None else "data"), (backward, "data")):
            if isinstance(fn, RemoteFunction):
                fn.role = role
        return forward, backward

    return check_array_match(module, task["spec"], task["forward"], task.get("backward"), task["config"],
                             options, make_pair=make_pair)


class _RemoteWatch:
    """The worker's record of the tensors a torch layer made (see :mod:`gradcheck.devices`)."""

    def __init__(self, worker: Worker, watch: Any) -> None:
        self.worker, self.watch = worker, watch

    def of_kind(self, kind: str) -> list[Any]:
        from gradcheck.devices import Hazard

        reply, _ = self.worker.request("hazards", watch=self.watch)
        rows = reply.get("hazards")
        if not isinstance(rows, list):
            return []
        return [Hazard(*[str(v) for v in row]) for row in rows
                if isinstance(row, list) and len(row) == 6 and row[0] == kind]


_CHECKS: dict[str | None, Callable[[dict[str, Any], Any, Worker, CheckOptions], Outcome]] = {
    "layer": _check_layer, "agreement": _check_agreement, "model": _check_model, "torch": _check_torch,
    "torch_model": _check_torch_model, "array_api": _check_array_api,
}


def _missing_dependency(outcome: Outcome) -> None:
    """A failure that only says something is not installed (an unbuilt compiled extension)
    is no verdict on the code: the layer could not be checked here."""
    if outcome.passed:
        return
    from gradcheck.packages import missing_dependency

    missing = missing_dependency("\n".join([outcome.forward_message, outcome.report_text]))
    if missing is not None:
        outcome.error = f"not checked: {missing}"
        outcome.forward, outcome.contract = "-", []
        outcome.gradients = {name: "-" for name in outcome.gradients}

