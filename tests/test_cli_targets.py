"""gradcheck check PATH: student files, misbehaving code, usage errors, JSON."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"


def gradcheck(*args, timeout=600, env=None):
    proc = subprocess.run([sys.executable, "-m", "gradcheck", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env)
    return proc.returncode, proc.stdout, proc.stderr


def layers_of(path):
    return {layer["layer"]: layer for layer in json.loads(path.read_text())["layers"]}


MISBEHAVING = '''
import numpy as np

def affine_forward(x, w, b):
    return x.reshape(len(x), -1) @ w + b, (x, w)

def affine_backward(dout, cache):
    x, w = cache
    return dout @ w.T, x.reshape(len(x), -1).T @ dout          # only two gradients

def relu_forward(x):
    return np.maximum(x, 0), x

def relu_backward(dout, cache):
    dx = dout * (cache > 0)                                   # forgot to return

def tanh_forward(x):
    raise ValueError("not implemented yet")

def tanh_backward(dout, cache):
    return dout

def sigmoid_forward(x):
    out = 1 / (1 + np.exp(-x))
    return out, out

def sigmoid_backward(dout, cache):
    return dout * np.nan

def softmax_loss(x, y):
    while True:
        pass

def svm_loss(x, y):
    import sys
    sys.exit(3)

def gelu_forward(x):
    import os
    os._exit(7)

def gelu_backward(dout, cache):
    return dout

def leaky_relu_forward(x, alpha=0.01):
    import ctypes
    ctypes.string_at(0)

def leaky_relu_backward(dout, cache):
    return dout

def helper_forward(x):
    return x
'''


def test_every_misbehaviour_gets_a_verdict_and_the_run_goes_on(tmp_path):
    target = tmp_path / "layers.py"
    target.write_text(MISBEHAVING)
    out = tmp_path / "out.json"
    status, stdout, stderr = gradcheck("check", target, "--examples", "3", "--timeout", "8",
                                       "--json", out)
    assert status == 1, stderr
    layers = layers_of(out)
    assert set(layers) == {"affine", "relu", "tanh", "sigmoid", "softmax_loss", "svm_loss",
                           "gelu", "leaky_relu"}
    assert not any(layer["passed"] for layer in layers.values())
    reasons = {name: layer["error"] + json.dumps(layer["report"]) + layer["forward_message"]
               for name, layer in layers.items()}
    assert "backward returned 2 gradients; expected 3" in reasons["affine"]
    assert "backward returned NoneType" in reasons["relu"]
    assert "forward raised ValueError: not implemented yet" in reasons["tanh"]
    assert "dx contains NaN" in reasons["sigmoid"]
    assert "timed out after 8 s" in reasons["softmax_loss"]
    assert "the loss raised SystemExit: 3" in reasons["svm_loss"]
    assert "exit status 7" in reasons["gelu"]
    assert "crashed the Python interpreter (SIGSEGV)" in reasons["leaky_relu"]
    assert "helper_forward: not a layer gradcheck knows" in stdout
    assert "tanh_backward" not in stdout.split("Not checked")[-1]
    assert "Traceback" not in stderr


def test_buggy_example_names_every_wrong_gradient(tmp_path):
    out = tmp_path / "out.json"
    status, stdout, _ = gradcheck("check", EXAMPLES / "layers_buggy.py", "--examples", "5",
                                  "--json", out)
    assert status == 1
    layers = layers_of(out)
    failed = {name: [g for g, v in layer["gradients"].items() if v != "ok"]
              for name, layer in layers.items() if not layer["passed"]}
    assert failed["affine"] == ["db"]
    assert failed["relu"] == ["dx"]
    assert failed["conv"] == ["dx"]
    assert failed["max_pool"] == ["dx"]
    assert failed["softmax_loss"] == ["dx"]
    assert failed["batchnorm"] == ["dx"]
    assert "dx" in failed["rnn"] and "dh0" in failed["rnn"]
    assert failed["word_embedding"] == ["dW"]
    assert failed["temporal_softmax_loss"] == ["dx"]
    assert layers["dropout"]["forward"] == "FAILED"
    assert set(failed) == {"affine", "relu", "conv", "max_pool", "softmax_loss", "batchnorm",
                           "rnn", "word_embedding", "temporal_softmax_loss", "dropout"}
    assert "Most likely cause: db is 1/" in stdout
    # the field benchmark joins these names with its torch labels, which say dx/dw/db too
    from benchmarks.field.agreement import failing_parts, named_right
    assert failing_parts(layers["affine"]) == {"db"}
    assert named_right({"culprits": ["db"]}, layers["affine"])
    assert not named_right({"culprits": ["dw"]}, layers["affine"])


def test_correct_example_passes(tmp_path):
    status, stdout, stderr = gradcheck("check", EXAMPLES / "layers_correct.py", "--examples", "4")
    assert status == 0, stdout + stderr
    assert "0 failed" in stdout


def test_import_error_is_a_usage_error_with_the_users_traceback(tmp_path):
    target = tmp_path / "layers.py"
    target.write_text("import numpy as np\n\ndef f():\n    pass\n\nraise RuntimeError('half-written file')\n")
    status, _, stderr = gradcheck("check", target)
    assert status == 2
    assert "RuntimeError: half-written file" in stderr
    assert str(target) in stderr
    assert "gradcheck/" not in stderr.replace(str(target), "")


@pytest.mark.parametrize("args,message", [
    (["check", "no/such/file.py"], "no such file"),
    (["check", "--examples", "0"], "--examples=0 must be at least 1"),
])
def test_usage_errors(args, message):
    status, _, stderr = gradcheck(*args)
    assert status == 2 and message in stderr


def test_file_without_layers(tmp_path):
    target = tmp_path / "empty.py"
    target.write_text("x = 1\n")
    status, _, stderr = gradcheck("check", target)
    assert status == 2 and "no layers found" in stderr


def test_module_name_target_and_layer_filter(tmp_path):
    package = tmp_path / "mypkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "layers.py").write_text((EXAMPLES / "layers_correct.py").read_text())
    env = {**__import__("os").environ, "PYTHONPATH": str(tmp_path)}
    status, stdout, _ = gradcheck("check", "mypkg.layers", "--layer", "affine", "--layer",
                                  "relu_forward", "--examples", "2", env=env)
    assert status == 0, stdout
    assert "2 passed, 0 failed" in stdout


def test_an_unguarded_calling_script_is_not_rerun_in_workers(tmp_path):
    # multiprocessing would re-run the caller's __main__ in every worker; ours must not.
    marker = tmp_path / "runs.txt"
    script = tmp_path / "script.py"
    script.write_text(
        "import sys\n"
        f"open({str(marker)!r}, 'a').write('run\\n')\n"
        "from gradcheck.cli import main\n"
        f"sys.exit(main(['check', {str(EXAMPLES / 'layers_correct.py')!r}, '--layer', 'relu', '--examples', '2']))\n"
    )
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert marker.read_text() == "run\n"
