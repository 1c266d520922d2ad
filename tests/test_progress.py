"""Progress of a long check: shown on a terminal for long checks, never in a log, cleared
before the report prints."""

from __future__ import annotations

import io
import itertools
import sys

import numpy as np
import pytest

import gradcheck
from gradcheck import progress
from reference_layers import affine_backward, affine_forward


class Terminal(io.StringIO):
    def isatty(self):
        return True


def _affine(rng):
    return rng.normal(size=(3, 4)), rng.normal(size=(4, 5)), rng.normal(size=5)


@pytest.fixture
def clock(monkeypatch):
    """A clock that moves ``step`` seconds each time it is read (no real time involved)."""
    state = {"step": 0.0}
    ticks = itertools.count()

    def monotonic():
        return 1000.0 + next(ticks) * state["step"]

    monkeypatch.setattr(progress, "monotonic", monotonic)
    return state


def _terminal(monkeypatch):
    """stderr as a terminal; set in the test itself (pytest resets sys.stderr after setup)."""
    stream = Terminal()
    monkeypatch.setattr(sys, "stderr", stream)
    return stream


def test_a_slow_check_on_a_terminal_shows_progress_and_clears_it(rng, clock, monkeypatch):
    terminal = _terminal(monkeypatch)
    clock["step"] = 1.0  # every entry seems to take a second: a long check
    report = gradcheck.check_layer(affine_forward, affine_backward, *_affine(rng), grouped=False)
    assert report.passed
    shown = terminal.getvalue()
    lines = [line.rstrip() for line in shown.split("\r") if line.strip()]
    assert lines[0].startswith("gradcheck affine_forward: dx ")
    assert any(line.startswith("gradcheck affine_forward: dw ") and "/20 entries (" in line for line in lines)
    assert any("left" in line for line in lines)
    assert shown.endswith("\r") and not shown.split("\r")[-2].strip()  # cleared: blanks, then back


def test_a_quick_check_on_a_terminal_shows_nothing(rng, clock, monkeypatch):
    terminal = _terminal(monkeypatch)
    clock["step"] = 0.0
    assert gradcheck.check_layer(affine_forward, affine_backward, *_affine(rng), grouped=False).passed
    assert terminal.getvalue() == ""


def test_off_a_terminal_nothing_unless_asked(rng, clock, capsys):
    clock["step"] = 1.0
    gradcheck.check_layer(affine_forward, affine_backward, *_affine(rng), grouped=False)
    assert capsys.readouterr().err == ""
    gradcheck.check_layer(affine_forward, affine_backward, *_affine(rng), grouped=False, progress=True)
    assert "gradcheck affine_forward: dw " in capsys.readouterr().err


def test_progress_false_is_silent_even_on_a_terminal(rng, clock, monkeypatch):
    terminal = _terminal(monkeypatch)
    clock["step"] = 1.0
    gradcheck.check_layer(affine_forward, affine_backward, *_affine(rng), grouped=False, progress=False)
    assert terminal.getvalue() == ""


def test_every_public_check_takes_progress_and_validates_it(rng):
    x = rng.normal(size=(2, 3))
    with pytest.raises(TypeError, match=r"progress='yes' must be True, False or None"):
        gradcheck.check_layer(affine_forward, affine_backward, *_affine(rng), progress="yes")
    with pytest.raises(TypeError, match=r"progress=1 must be True, False or None"):
        gradcheck.check_loss(lambda x: (float(np.sum(x * x)), 2 * x), x, progress=1)
    assert gradcheck.check_loss(lambda x: (float(np.sum(x * x)), 2 * x), x, progress=False).passed

    class Scale:
        def __init__(self):
            self.params = {"W": np.ones(3)}
            self.grads = {"W": np.zeros(3)}

        def forward(self, x):
            self.x = x
            return x * self.params["W"]

        def backward(self, dout):
            self.grads["W"] = (dout * self.x).sum(axis=0)
            return dout * self.params["W"]

    assert gradcheck.check_object(Scale(), x, progress=False).passed
    with pytest.raises(TypeError, match="progress="):
        gradcheck.check_object(Scale(), x, progress="on")
