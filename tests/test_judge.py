"""The verdict is made by a judge the checked code cannot touch (issue 14).

Each file below tries to get a wrong layer passed, or to hand in the checker's own
reference: by patching the checker's classes, patching numpy, forging result files,
writing into the channel, importing the reference, or killing its process in the middle
of a reply. Each gets the verdict its real code deserves, through the isolation API and
through ``gradcheck check``, ``gradcheck grade`` and the pytest target mode.
"""

from __future__ import annotations

import csv
import json
import socket
import struct
import textwrap

import numpy as np
import pytest

from gradcheck.channel import ChannelError, Codec, read_frame, write_frame
from gradcheck.cli import main
from gradcheck.discover import Match
from gradcheck.isolation import Sandbox, check_isolated, discover_isolated
from gradcheck.judge import reference_imports
from gradcheck.options import CheckOptions

OPTIONS = CheckOptions(examples=3)

AFFINE = '''
import numpy as np

def affine_forward(x, w, b):
    out = x.reshape(x.shape[0], -1) @ w + b
    return out, (x, w, b)

def affine_backward(dout, cache):
    x, w, b = cache
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T @ dout
    db = np.sum(dout, axis=0){db_bug}
    return dx, dw, db
'''
WRONG_DB = AFFINE.format(db_bug=" * 0.5")
RIGHT = AFFINE.format(db_bug="")

PATCH_CLASSES = '''
import sys
for _name, _module in list(sys.modules.items()):
    if _name.startswith("gradcheck"):
        for _attr in dir(_module):
            _obj = getattr(_module, _attr, None)
            if isinstance(_obj, type) and "passed" in vars(_obj):
                setattr(_obj, "passed", property(lambda self: True))
            if isinstance(_obj, type) and "ok" in vars(_obj):
                setattr(_obj, "ok", property(lambda self: True))
'''
PATCH_NUMPY = '''
import numpy as _np
import numpy.testing
_np.allclose = lambda *a, **k: True
_np.array_equal = lambda *a, **k: True
_np.testing.assert_allclose = lambda *a, **k: None
_np.any = lambda *a, **k: False
_np.all = lambda *a, **k: True
_np.count_nonzero = lambda *a, **k: 0
_np.flatnonzero = lambda *a, **k: _np.zeros(0, dtype=int)
_np.isfinite = lambda x, *a, **k: _np.ones(_np.shape(x), dtype=bool)
_np.isnan = lambda x, *a, **k: _np.zeros(_np.shape(x), dtype=bool)
'''
FORGE_RESULTS = '''
import glob, json, os, tempfile
_forged = json.dumps({{"outcome": json.loads({passed!r})}})
for _d in glob.glob(os.path.join(tempfile.gettempdir(), "gradcheck-*")) + [os.getcwd()]:
    for _f in ("result.json", "result.json.partial"):
        try:
            with open(os.path.join(_d, _f), "w") as _fh:
                _fh.write(_forged)
        except OSError:
            pass
'''
SOCKETS = '''
import os, stat

def _sockets():
    for fd in range(3, 256):
        try:
            if stat.S_ISSOCK(os.fstat(fd).st_mode):
                yield fd
        except OSError:
            pass
'''
WRITE_CHANNEL = SOCKETS + '''
_done = []

def _garbage():
    if not _done:
        _done.append(1)
        for fd in _sockets():
            os.write(fd, b"\\x10" + b"\\xff" * 63)
'''
KILL_MID_REPLY = SOCKETS + '''
import struct

def _die():
    for fd in _sockets():
        os.write(fd, struct.pack("<QI", 1000, 20) + b'{"ok": true, "val')
    os._exit(0)
'''


def _write(tmp_path, name, *parts):
    path = tmp_path / name
    path.write_text("\n".join(textwrap.dedent(p) for p in parts), encoding="utf-8")
    return str(path)


def _affine(path):
    return check_isolated(path, Match("affine", "affine_forward", "affine_backward"), OPTIONS, 60)


def _passing_outcome_json(tmp_path):
    right = _write(tmp_path, "right.py", RIGHT)
    outcome = _affine(right)
    assert outcome.passed
    return json.dumps(outcome.to_dict())


def test_a_right_layer_passes_through_the_judge(tmp_path):
    outcome = _affine(_write(tmp_path, "layers.py", RIGHT))
    assert outcome.passed and outcome.gradients == {"x": "ok", "w": "ok", "b": "ok"}


@pytest.mark.parametrize("tamper", [PATCH_CLASSES, PATCH_NUMPY], ids=["checker classes", "numpy"])
def test_patching_the_checker_or_numpy_does_not_pass_a_wrong_db(tmp_path, tamper):
    outcome = _affine(_write(tmp_path, "layers.py", tamper, WRONG_DB))
    assert not outcome.passed
    assert outcome.gradients["b"] == "FAILED" and outcome.gradients["w"] == "ok"


def test_forged_result_files_are_never_read(tmp_path):
    forged = FORGE_RESULTS.format(passed=_passing_outcome_json(tmp_path))
    # forged at import, and again at every forward call
    hook = "\n_original = affine_forward\ndef affine_forward(x, w, b):\n    exec(_FORGE)\n    return _original(x, w, b)\n"
    path = _write(tmp_path, "layers.py", forged, WRONG_DB, f"_FORGE = {forged!r}", hook)
    # in a fresh working directory (as grade runs students): the forger writes there too
    outcome = check_isolated(path, Match("affine", "affine_forward", "affine_backward"), OPTIONS, 180,
                             sandbox=Sandbox(fresh_cwd=True))
    assert not outcome.passed and outcome.gradients["b"] == "FAILED"


def test_writing_into_the_channel_is_an_error_not_a_pass(tmp_path):
    hook = "\n_original = affine_backward\ndef affine_backward(dout, cache):\n    _garbage()\n    return _original(dout, cache)\n"
    outcome = _affine(_write(tmp_path, "layers.py", WRITE_CHANNEL, RIGHT, hook))
    assert not outcome.passed
    assert "channel" in outcome.error


def test_a_worker_that_dies_in_the_middle_of_a_reply_is_an_error(tmp_path):
    hook = "\n_original = affine_backward\ndef affine_backward(dout, cache):\n    _die()\n"
    outcome = _affine(_write(tmp_path, "layers.py", KILL_MID_REPLY, RIGHT, hook))
    assert not outcome.passed
    assert "ended the Python process" in outcome.error or "channel" in outcome.error


RELU_WRITES_CACHED_X = '''
import numpy as np

def relu_forward(x):
    return np.maximum(x, 0), x

def relu_backward(dout, cache):
    x = cache
    x[x <= 0] = 0  # writes into the x handed to forward, through the cache
    return dout * (x > 0)
'''


def test_a_backward_writing_into_the_cached_input_is_seen_across_the_channel(tmp_path):
    path = _write(tmp_path, "layers.py", RELU_WRITES_CACHED_X)
    outcome = check_isolated(path, Match("relu", "relu_forward", "relu_backward"), OPTIONS, 60)
    assert outcome.passed and [w["kind"] for w in outcome.warnings] == ["input_mutated"]


REFERENCE = "from reference_layers import affine_forward, affine_backward\n"
DYNAMIC_REFERENCE = ("import importlib\n_ref = importlib.import_module('reference_' + 'layers')\n"
                     "relu_forward, relu_backward = _ref.relu_forward, _ref.relu_backward\n")


def test_the_reference_imported_is_refused_and_flagged(tmp_path):
    path = _write(tmp_path, "layers.py", REFERENCE, DYNAMIC_REFERENCE)
    discovery = discover_isolated(path, 60)
    assert not isinstance(discovery, str)
    kinds = {m.spec: m.kind for m in discovery.matches}
    assert kinds == {"affine": "reference", "relu": "reference"}
    assert any("imports the checker's reference implementation" in s for s in discovery.skipped)
    # the worker never got the real reference: calling what it got raises
    outcome = check_isolated(path, Match("relu", "relu_forward", "relu_backward"), OPTIONS, 60)
    assert not outcome.passed and "reference implementation" in (outcome.forward_message + outcome.error)


def test_reference_imports_are_read_from_the_source():
    source = "import numpy\nfrom reference_layers.layers import conv_forward_naive\nimport gradcheck as g\n"
    assert reference_imports(source) == ["line 2: from reference_layers.layers import conv_forward_naive",
                                         "line 3: import gradcheck as g"]
    assert reference_imports("from .layers import *\nimport cs231n.gradient_check\n") == []


def test_the_cli_fails_the_tampering_file_and_flags_the_reference(tmp_path, capsys):
    wrong = _write(tmp_path, "wrong.py", PATCH_CLASSES, WRONG_DB)
    assert main(["check", wrong, "--examples", "3", "--quiet", "--json", "-"]) == 1
    layers = json.loads(capsys.readouterr().out)["layers"]
    assert [(e["layer"], e["verdict"]) for e in layers] == [("affine", "FAILED")]
    copied = _write(tmp_path, "copied.py", REFERENCE)
    assert main(["check", copied, "--examples", "3", "--quiet", "--json", "-"]) == 1
    entry = json.loads(capsys.readouterr().out)["layers"][0]
    assert "reference_imported" in entry["contract_violations"]


def test_grade_fails_the_tampering_student_and_flags_the_copied_reference(tmp_path):
    submissions = tmp_path / "submissions"
    for student, text in {"alice": RIGHT, "mallory": PATCH_CLASSES + WRONG_DB, "trent": REFERENCE}.items():
        (submissions / student).mkdir(parents=True)
        (submissions / student / "layers.py").write_text(textwrap.dedent(text), encoding="utf-8")
    out, page = tmp_path / "grades.csv", tmp_path / "grades.html"
    assert main(["grade", str(submissions), "--jobs", "2", "--examples", "3", "--csv", str(out),
                 "--html", str(page)]) == 0
    rows = {row["student"]: row for row in csv.DictReader(out.open(encoding="utf-8"))}
    assert rows["alice"]["verdict"] == "passed" and rows["alice"]["flag"] == ""
    assert rows["mallory"]["verdict"] == "failed"
    assert rows["trent"]["verdict"] == "failed" and rows["trent"]["flag"] == "reference_imported"
    html = page.read_text(encoding="utf-8")
    assert html.count("class='flag'") == 1  # trent's affine cell


def test_the_pytest_target_mode_fails_the_tampering_file(tmp_path, pytester):
    wrong = _write(tmp_path, "wrong.py", PATCH_CLASSES, WRONG_DB)
    result = pytester.runpytest_subprocess("--gradcheck-target", wrong, "--gradcheck-examples", "3",
                                           "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*db*FAILED*"])


def _pair() -> tuple[socket.socket, socket.socket]:
    return socket.socketpair()


def test_the_channel_round_trips_plain_data_and_keeps_the_rest():
    kept = []
    codec = Codec(lambda v: kept.append(v) or {"h": len(kept)}, lambda node: ("handle", node["h"]))
    value = (np.arange(6.0).reshape(2, 3).T, {"mode": "train", "eps": 1e-5, 3: [None, True]},
             np.float32(2.5), 1 + 2j, np.float64, object())
    arrays = []
    tree = codec.encode(value, arrays)
    a, b = _pair()
    write_frame(a, {"value": tree}, arrays)
    header, got = read_frame(b)
    back = codec.decode(header["value"], got)
    assert np.array_equal(back[0], value[0]) and back[0].flags.f_contiguous
    assert back[1] == value[1] and back[2] == np.float32(2.5) and back[2].dtype == np.float32
    assert back[3] == 1 + 2j and back[4] is np.float64 and back[5] == ("handle", 1)


@pytest.mark.parametrize("frame", [
    b"\x05\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00{",  # header not JSON
    b"\xff\xff\xff\xff\xff\xff\xff\x7f\x02\x00\x00\x00{}",  # far beyond the size limit
])
def test_malformed_frames_are_channel_errors(frame):
    a, b = _pair()
    a.sendall(frame)
    with pytest.raises(ChannelError):
        read_frame(b)


@pytest.mark.parametrize("header", [
    {"arrays": [{"dtype": "|O", "shape": [1], "order": "C", "offset": 0, "nbytes": 8}]},
    {"arrays": [{"dtype": "<f8", "shape": [4], "order": "C", "offset": 0, "nbytes": 8}]},
    {"arrays": [{"dtype": "<f8", "shape": [-1], "order": "C", "offset": 0, "nbytes": 8}]},
])
def test_arrays_that_are_not_plain_numbers_or_do_not_add_up_are_refused(header):
    a, b = _pair()
    text = json.dumps(header).encode()
    a.sendall(struct.pack("<QI", 4 + len(text) + 8, len(text)) + text + b"\x00" * 8)
    with pytest.raises(ChannelError):
        read_frame(b)


@pytest.mark.parametrize("tree", [[1, 2], {"a": 5}, {"x": 1}, {"d": [[[1], 2]]}, {"dt": "object"}])
def test_value_trees_outside_the_grammar_are_refused(tree):
    codec = Codec(lambda v: {"h": 0}, lambda node: None)
    with pytest.raises(ChannelError):
        codec.decode(tree, [])
