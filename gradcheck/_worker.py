"""Worker: runs one task on somebody's code, writes a JSON result.

Called in a forked process by :mod:`gradcheck.isolation`, or as
``python -m gradcheck._worker TASK.json RESULT.json``. Tasks: ``discover`` (import the
target and match its functions) and ``check`` (check one matched layer). Anything the
user's code does, short of killing the process, ends up in the result.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from typing import Any


def _run(task: dict[str, Any]) -> dict[str, Any]:
    from gradcheck import legacy
    from gradcheck.discover import TargetError, discover, load_target

    legacy.install_numpy_aliases()
    try:
        module = load_target(task["target"])
    except TargetError as exc:
        return {"import_error": str(exc)}
    if task["kind"] == "discover":
        return {"discovery": discover(module, task["target"]).to_dict()}
    outcome = _check(task, module)
    if not outcome.passed:
        # Code of a Python 2 course year: check it again as that course ran it.
        text = "\n".join([outcome.forward_message, outcome.report_text, outcome.error])
        if legacy.looks_python2(text, _source(module)):
            again = _check(task, load_target(task["target"], python2=True))
            python2 = legacy.python2_warning(text)
            if again.passed:
                again.add_warning(python2)
            else:  # the verdict on what the code does as its course ran it
                again.notes.append(f"checked under Python 2 semantics: {python2.message}")
            outcome = again
    _missing_dependency(outcome)
    old_numpy = legacy.numpy_warning()
    if old_numpy is not None:
        outcome.add_warning(old_numpy)
    return {"outcome": outcome.to_dict()}


def _check(task: dict[str, Any], module: Any) -> Any:
    from gradcheck.candidate import check_candidate
    from gradcheck.options import CheckOptions
    from gradcheck.specs import get_spec

    options = CheckOptions.from_dict(task["options"])
    if task.get("match_kind") == "agreement":
        from gradcheck.agreement import check_agreement

        return check_agreement(module, task["forward"], task["backward"], options)
    if task.get("match_kind") == "model":
        from gradcheck.models import check_model_config

        return check_model_config(module, task["forward"], task["config"], options)
    if task.get("match_kind") == "torch":
        from gradcheck.torch_layers import check_torch_match

        return check_torch_match(module, task["config"], task["spec"], task["forward"],
                                 task.get("backward"), options)
    spec = get_spec(task["spec"])
    forward = getattr(module, task["forward"])
    backward = getattr(module, task["backward"]) if task.get("backward") else None
    return check_candidate(spec, forward, backward, options)


def _missing_dependency(outcome: Any) -> None:
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


def _source(module: Any) -> str:
    try:
        with open(module.__file__, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except (OSError, TypeError):
        return ""


def main(argv: list[str]) -> int:
    task_path, result_path = argv
    with open(task_path, encoding="utf-8") as fh:
        task = json.load(fh)
    warnings.simplefilter("ignore")
    result = _run(task)
    partial = result_path + ".partial"
    with open(partial, "w", encoding="utf-8") as fh:
        json.dump(result, fh)
    os.replace(partial, result_path)  # a result appears whole or not at all
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
