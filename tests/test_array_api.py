"""Code written for the array API standard, checked through its own library (array_api_strict
here: the standard's strict implementation, with fake devices): the Python API, both
directions, and the command line on a file that imports it."""

import contextlib
import io
import json
import os
import pathlib
import re
import subprocess
import sys
import types

import numpy as np
import pytest

import gradcheck
from gradcheck.cli import main
from gradcheck.discover import discover, load_target
from gradcheck.kinds import Verdict, ViolationKind

xp = pytest.importorskip("array_api_strict")
pytest.importorskip("array_api_compat")

from gradcheck.array_api import LibraryUnusable, NamespaceLibrary, open_library  # noqa: E402
from gradcheck.array_conversion import numpy_pair  # noqa: E402

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")
BUGGY = os.path.join(EXAMPLES, "array_api_layers_buggy.py")


@pytest.fixture(scope="module")
def correct():
    return load_target(os.path.join(EXAMPLES, "array_api_layers_correct.py"))


@pytest.fixture(scope="module")
def buggy():
    return load_target(BUGGY)


def _arrays(*shapes, dtype=np.float64, device=None):
    rng = np.random.default_rng(7)
    return [xp.asarray(rng.normal(size=s).astype(dtype), device=device) for s in shapes]


def _conv_args():
    x, w, b = _arrays((2, 2, 4, 4), (3, 2, 3, 3), (3,))
    return x, w, b, {"stride": 1, "pad": 1}


def test_correct_affine_passes_by_the_complex_step(correct):
    report = gradcheck.check_array_api(correct.affine_forward, correct.affine_backward,
                                       *_arrays((3, 2, 2), (4, 5), (5,)))
    assert report.passed and list(report.gradients) == ["x", "w", "b"]
    assert report.method == "complex" and "method: complex step" in str(report)


def test_correct_relu_falls_back_and_says_why(correct):
    report = gradcheck.check_array_api(correct.relu_forward, correct.relu_backward, *_arrays((4, 3)))
    assert report.passed and report.method == "central"
    assert "complex step not usable: forward raised TypeError on complex input" in str(report)
    assert "maximum" in str(report)


def test_correct_conv_and_loss_pass(correct):
    assert gradcheck.check_array_api(correct.conv_forward_naive, correct.conv_backward_naive,
                                     *_conv_args()).passed
    scores = _arrays((4, 3))[0]
    labels = xp.asarray(np.array([0, 2, 1, 2]))
    report = gradcheck.check_array_api(correct.softmax_loss, None, scores, labels)
    assert report.passed and list(report.gradients) == ["x"]


def test_bias_not_summed_over_the_batch_is_named(buggy):
    report = gradcheck.check_array_api(buggy.affine_forward, buggy.affine_backward,
                                       *_arrays((4, 3), (3, 2), (2,)))
    assert report.failed_gradients == ["b"]
    assert "db is 1/4 of the true gradient" in str(report)


def test_wrong_sign_is_named(buggy):
    report = gradcheck.check_array_api(buggy.softmax_loss, None, _arrays((4, 3))[0],
                                       xp.asarray(np.array([0, 2, 1, 2])))
    assert report.failed_gradients == ["x"]
    assert "dx has the wrong sign" in str(report)


def test_dx_of_the_padded_shape_is_a_shape_failure(buggy):
    report = gradcheck.check_array_api(buggy.conv_forward_naive, buggy.conv_backward_naive, *_conv_args())
    assert not report.passed
    shape = [v for v in report.failures if v.kind == ViolationKind.GRADIENT_SHAPE]
    assert [v.message for v in shape] == ["dx must have the shape of x, (2, 2, 4, 4); it has (2, 2, 6, 6)."]


def _relu_writing_into_dout(module):
    def relu_backward(dout, x):
        dout[x <= 0] = 0  # the same write in numpy and in xp
        return dout

    def relu_forward(x):
        return module.maximum(x, 0.0), x

    return relu_forward, relu_backward


@pytest.mark.parametrize("device", [None, "device1"])
def test_write_into_dout_is_the_numpy_warning(device):
    x = np.random.default_rng(3).normal(size=(4, 3))
    numpy_report = gradcheck.check_layer(*_relu_writing_into_dout(np), x)
    on = xp.Device(device) if device else None
    report = gradcheck.check_array_api(*_relu_writing_into_dout(xp), xp.asarray(x, device=on))
    assert report.verdict == Verdict.WARNING and numpy_report.verdict == Verdict.WARNING
    assert [(v.kind, v.message) for v in report.warnings] == \
           [(v.kind, v.message) for v in numpy_report.warnings]
    assert report.warnings[0].kind == ViolationKind.DOUT_MUTATED


def test_float32_inputs_are_judged_at_float32_tolerances(correct):
    args = _arrays((3, 4), (4, 2), (2,), dtype=np.float32)
    report = gradcheck.check_array_api(correct.affine_forward, correct.affine_backward, *args)
    float64 = gradcheck.check_array_api(correct.affine_forward, correct.affine_backward,
                                        *_arrays((3, 4), (4, 2), (2,)))
    assert report.passed and float64.passed
    assert 1e-5 < report.gradients["w"].rtol < 1e-3 and float64.gradients["w"].rtol < 1e-6


def test_other_device_runs_there_and_a_default_device_array_is_a_verdict(correct):
    on = xp.Device("device1")
    args = _arrays((3, 4), (4, 2), (2,), device=on)
    assert gradcheck.check_array_api(correct.affine_forward, correct.affine_backward, *args).passed

    def forward(x, w, b):
        out = xp.zeros((x.shape[0], w.shape[1]))  # on the default device, not the inputs'
        return out + x @ w + b, (x, w, b)

    report = gradcheck.check_array_api(forward, correct.affine_backward, *args)
    assert not report.passed
    text = str(report)
    assert "forward raised ValueError: Arrays from two different devices" in text
    assert "in forward" in text and "gradcheck" + os.sep not in text  # the user's traceback, not ours


def test_numpy_inputs_with_xp_by_name(correct):
    rng = np.random.default_rng(0)
    report = gradcheck.check_array_api(correct.affine_forward, correct.affine_backward,
                                       rng.normal(size=(3, 4)), rng.normal(size=(4, 2)),
                                       rng.normal(size=2), xp="array_api_strict", mode="directional")
    assert report.passed and report.mode == "directional"


@pytest.mark.parametrize(("kwargs", "error", "text"), [
    ({}, TypeError, "xp= is needed: every input is a NumPy array"),
    ({"xp": "no_such_array_library"}, ImportError, "xp='no_such_array_library' cannot be used"),
    ({"xp": object()}, TypeError, "is not an array library: it has no asarray"),
    ({"xp": "array_api_strict", "device": "gpu"}, ValueError, "device='gpu' is not a device of array_api_strict"),
])
def test_bad_arguments_are_named(kwargs, error, text):
    with pytest.raises(error, match=text):
        gradcheck.check_array_api(lambda x: (x, None), lambda d, c: d, np.ones(3), **kwargs)


def test_device_without_float64_is_refused():
    with pytest.raises(ValueError, match=r"device=.*no_float64.*has no float64 there"):
        NamespaceLibrary(xp, xp.Device("no_float64"))


def test_namespace_without_complex128_is_checked_by_differences_and_says_why(correct):
    class Info:  # array_api_strict's, without complex128
        def default_device(self):
            return xp.__array_namespace_info__().default_device()

        def dtypes(self, device=None):
            return {k: v for k, v in xp.__array_namespace_info__().dtypes(device=device).items()
                    if k != "complex128"}

    namespace = types.SimpleNamespace(asarray=xp.asarray, from_dlpack=xp.from_dlpack,
                                      __array_namespace_info__=Info)
    library = NamespaceLibrary(namespace, None, "nocomplex")
    forward, backward = numpy_pair(correct.affine_forward, correct.affine_backward, library)
    rng = np.random.default_rng(1)
    report = gradcheck.check_layer(forward, backward, rng.normal(size=(3, 4)), rng.normal(size=(4, 2)),
                                   rng.normal(size=2))
    assert report.passed and report.method == "central"
    assert ("complex step not usable: forward raised TypeError on complex input: nocomplex has no "
            "complex128 on array_api_strict.Device('CPU_DEVICE'): checked by finite differences (the "
            "complex step needs complex128)") in str(report)


def test_inputs_on_two_devices_are_refused():
    a, b = xp.ones(2), xp.ones(2, device=xp.Device("device1"))
    with pytest.raises(ValueError, match=r"argument 1 is on .*device1.*pass every input on one device"):
        gradcheck.check_array_api(lambda x, y: (x * y, None), lambda d, c: (d, d), a, b)


def test_a_library_without_a_device_is_unusable(tmp_path, monkeypatch):
    _fake_cupy(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "cupy", raising=False)
    with pytest.raises(LibraryUnusable, match=r"^cupy cannot make an array here \(CUDARuntimeError: "
                                              r"cudaErrorNoDevice: no CUDA-capable device is detected\); "
                                              "CuPy needs an NVIDIA GPU"):
        open_library("cupy")


def test_torch_tensors_go_through_torch():
    torch = pytest.importorskip("torch")
    assert type(open_library(torch)).__name__ == "TorchLibrary"
    x = torch.tensor([[1.0, -2.0], [0.5, 3.0]], dtype=torch.float64)
    report = gradcheck.check_torch(torch.tanh, x)
    assert report.passed and report.method == "central"  # torch refuses complex, as before


def test_discovery_marks_the_library_and_leaves_numpy_files_alone(correct):
    found = discover(correct)
    assert {(m.spec, m.kind, m.config) for m in found.matches} == {
        ("affine", "array_api", "array_api_strict"), ("relu", "array_api", "array_api_strict"),
        ("softmax_loss", "array_api", "array_api_strict"), ("conv", "array_api", "array_api_strict")}
    numpy_file = discover(load_target(os.path.join(EXAMPLES, "layers_correct.py")))
    assert "array_api" not in {m.kind for m in numpy_file.matches}


def test_cli_gives_per_layer_verdicts(tmp_path, capsys):
    out = tmp_path / "out.json"
    assert main(["check", BUGGY, "--json", str(out), "--examples", "5", "--jobs", "1"]) == 1
    layers = {entry["layer"]: entry for entry in json.loads(out.read_text())["layers"]}
    assert {k: (v["verdict"], v["gradients"]) for k, v in layers.items()} == {
        "affine": ("FAILED", {"dx": "ok", "dw": "ok", "db": "FAILED"}),
        "relu": ("warning", {"dx": "ok"}),
        "softmax_loss": ("FAILED", {"dx": "FAILED"}),
        "conv": ("FAILED", {"dx": "shape", "dw": "ok", "db": "ok"}),
    }
    assert layers["relu"]["warnings"][0]["kind"] == "dout_mutated"
    assert "written for array_api_strict: checked through it" in capsys.readouterr().out


def _fake_cupy(folder):
    """A cupy that imports and has no GPU, as CuPy on a machine without CUDA."""
    (folder / "cupy.py").write_text(
        "class CUDARuntimeError(RuntimeError):\n    pass\n\n\n"
        "def asarray(*args, **kwargs):\n"
        "    raise CUDARuntimeError('cudaErrorNoDevice: no CUDA-capable device is detected')\n")


def test_cupy_without_a_gpu_is_a_one_line_verdict(tmp_path, capsys):
    _fake_cupy(tmp_path)
    student = tmp_path / "layers.py"
    student.write_text("import cupy as cp\n\n\n"
                       "def relu_forward(x):\n    return cp.maximum(x, 0), x\n\n\n"
                       "def relu_backward(dout, x):\n    return dout * (x > 0)\n")
    assert main(["check", str(student), "--examples", "3"]) == 1
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("relu "))
    assert row.split()[-1] == "ERROR"
    assert ("not checked: cupy cannot make an array here (CUDARuntimeError: cudaErrorNoDevice: no "
            "CUDA-capable device is detected); CuPy needs an NVIDIA GPU with CUDA") in out
    assert "Traceback" not in out


def test_readme_example_prints_what_the_readme_shows():
    text = pathlib.Path(EXAMPLES).parent.joinpath("README.md").read_text()
    section = text[text.index("## Array API code"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    shown = re.search(r"prints .*?\n\n```\n(.*?)```", section, re.S).group(1).splitlines()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    # round-off of passing gradients may differ in the last digits between BLAS builds
    assert [line.split()[:6] for line in out.getvalue().splitlines()] == [line.split()[:6] for line in shown]


def test_import_gradcheck_imports_no_array_library():
    code = ("import sys, gradcheck, gradcheck.cli, gradcheck.discover as d; "
            f"d.discover(d.load_target({os.path.join(EXAMPLES, 'layers_correct.py')!r})); "
            "print(sorted(m for m in ('array_api_compat', 'array_api_strict', 'torch', 'cupy') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
