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
    from gradcheck.discover import TargetError, discover, load_target

    try:
        module = load_target(task["target"])
    except TargetError as exc:
        return {"import_error": str(exc)}
    if task["kind"] == "discover":
        return {"discovery": discover(module, task["target"]).to_dict()}
    from gradcheck.candidate import check_candidate
    from gradcheck.specs import get_spec

    spec = get_spec(task["spec"])
    forward = getattr(module, task["forward"])
    backward = getattr(module, task["backward"]) if task.get("backward") else None
    outcome = check_candidate(spec, forward, backward, **task["options"])
    return {"outcome": outcome.to_dict()}


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
