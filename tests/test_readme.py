"""The README's tutorial runs and prints what the README says it prints."""

from __future__ import annotations

import contextlib
import io
import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def test_tutorial_output_matches_the_readme():
    text = README.read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    shown = re.search(r"prints\n\n```\n(.*?)```", text, re.S).group(1).splitlines()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    printed = out.getvalue().splitlines()
    assert len(printed) == len(shown)
    for got, want in zip(printed, shown):
        if got.lstrip().startswith(("dx ", "dw ")):
            # round-off of passing gradients may differ in the last digit between BLAS builds
            assert got.split()[:6] == want.split()[:6]
        else:
            assert got == want


def _without_times(lines):
    return [re.sub(r"\b\d+\.\d+ ?s\b", "<t>", line).rstrip() for line in lines]


def _example_run(name, status):
    """(what the README shows after ``$ gradcheck check examples/NAME``, what that prints),
    as lines without times; the run must end with ``status``."""
    from gradcheck.cli import main

    text = README.read_text()
    shown = re.search(rf"\$ gradcheck check examples/{name}\n(.*?)```", text, re.S).group(1)
    out = io.StringIO()
    root = README.parent
    assert main(["check", str(root / "examples" / name)], stdout=out) == status
    printed = out.getvalue().replace(str(root / "examples") + "/", "examples/")
    return _without_times(shown.splitlines()), _without_times(printed.splitlines())


def test_skeleton_example_output_matches_the_readme():
    shown, printed = _example_run("layers_skeleton.py", 0)
    assert printed == shown


def _appears_in_order(printed, segments):
    """Each segment is a run of consecutive printed lines, after the previous segment's."""
    at = 0
    for segment in segments:
        starts = [i for i in range(at, len(printed) - len(segment) + 1)
                  if printed[i:i + len(segment)] == segment]
        assert starts, f"not printed (in this order): {segment[:3]}..."
        at = starts[0] + len(segment)


def _segments(shown):
    """The runs of lines between the README's ``...`` (what it leaves out)."""
    segments, current = [], []
    for line in shown:
        if line == "...":
            segments.append(current)
            current = []
        else:
            current.append(line)
    return [*segments, current]


def test_buggy_example_output_matches_the_readme():
    shown, printed = _example_run("layers_buggy.py", 1)
    segments = _segments(shown)
    assert len(segments) == 2 and len(segments[0]) > 30
    assert printed[:len(segments[0])] == segments[0]
    _appears_in_order(printed, segments)


def test_array_api_example_output_matches_the_readme():
    pytest.importorskip("array_api_strict")
    pytest.importorskip("array_api_compat")
    shown, printed = _example_run("array_api_layers_buggy.py", 1)
    segments = _segments(shown)
    assert len(segments) == 4 and printed[:len(segments[0])] == segments[0]
    _appears_in_order(printed, segments)


def test_own_names_example_output_matches_the_readme(capsys, monkeypatch):
    from gradcheck.cli import main

    text = README.read_text()
    shown = re.search(r"\$ gradcheck check examples/layers_own_names.py\n(.*?)```", text, re.S).group(1)
    monkeypatch.chdir(README.parent)
    assert main(["check", "examples/layers_own_names.py"]) == 2
    assert capsys.readouterr().err == shown
    suggested = shown.strip().splitlines()[-1].split()
    assert main(suggested[1:], stdout=io.StringIO()) == 0  # the command it suggests checks them
