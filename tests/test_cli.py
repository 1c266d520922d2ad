"""The gradcheck command: table, exit codes, JSON."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from gradcheck.cli import main
from gradcheck.specs import all_specs


def run(*argv):
    out = io.StringIO()
    status = main(list(argv), stdout=out)
    return status, out.getvalue()


def test_check_without_arguments_checks_every_reference_layer():
    status, text = run("check", "--examples", "3")
    assert status == 0
    lines = text.splitlines()
    assert lines[0].startswith("gradcheck: ") and "3 generated cases each" in lines[0]
    header = next(line for line in lines if line.startswith("layer"))
    assert header.split() == ["layer", "functions", "cases", "forward", "gradients", "time", "verdict"]
    for name in ("affine", "relu", "softmax_loss", "svm_loss", "sigmoid", "tanh", "gelu"):
        row = next(line for line in lines if line.startswith(name + " "))
        assert row.rstrip().endswith("passed")
    assert "dx:ok  dw:ok  db:ok" in text
    assert lines[-1].startswith(f"{len(all_specs())} passed, 0 failed in ")


def test_one_layer_quiet_and_json(tmp_path):
    target = tmp_path / "out.json"
    status, text = run("check", "--layer", "affine", "--examples", "2", "--quiet", "--json", str(target))
    assert status == 0
    assert text.strip().startswith("1 passed, 0 failed")
    data = json.loads(target.read_text())
    assert data["passed"] is True
    layer = data["layers"][0]
    assert (layer["layer"], layer["forward_function"], layer["backward_function"]) == (
        "affine", "affine_forward", "affine_backward")
    assert layer["cases"] == 2 and layer["passed"] is True and layer["forward"] == "ok"
    assert layer["gradients"] == {"dx": "ok", "dw": "ok", "db": "ok"}


def test_usage_errors_exit_2(capsys):
    assert run("check", "--layer", "nope")[0] == 2
    assert "no spec named 'nope'" in capsys.readouterr().err
    assert run("check", "--examples", "0")[0] == 2
    assert run("frobnicate")[0] == 2
    assert run()[0] == 2
    assert run("check", "--method", "magic")[0] == 2


def test_list_shows_signatures():
    status, text = run("list")
    assert status == 0
    assert "affine_forward(x, w, b) -> (out, cache)" in text
    assert "softmax_loss(x, y) -> (loss, dx)" in text


def test_python_dash_m_works():
    proc = subprocess.run([sys.executable, "-m", "gradcheck", "check", "--layer", "relu",
                           "--examples", "2", "--quiet"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "1 passed, 0 failed" in proc.stdout


def test_version_and_help_texts(capsys):
    from gradcheck import __version__

    assert run("--version")[0] == 0
    assert capsys.readouterr().out.strip() == f"gradcheck {__version__}"
    help_text = subprocess.run([sys.executable, "-m", "gradcheck", "check", "--help"],
                               capture_output=True, text=True, check=True).stdout
    assert "seed of the generated cases" in help_text and "numerical derivatives" in help_text


def test_one_layer_is_singular_and_json_dash_goes_to_stdout(capsys):
    status, text = run("check", "--layer", "relu", "--examples", "2", "--json", "-")
    assert status == 0
    data = json.loads(text)  # standard output holds the JSON alone
    assert [layer["layer"] for layer in data["layers"]] == ["relu"]
    err = capsys.readouterr().err
    assert "gradcheck: 1 reference layer, 2 generated cases each" in err
    assert "1 passed, 0 failed" in err


def test_a_closed_pipe_ends_quietly_and_no_hypothesis_folder_is_left(tmp_path):
    env = dict(__import__("os").environ, XDG_CACHE_HOME=str(tmp_path / "cache"))
    script = ("import sys; from gradcheck.cli import console_main; "
              "sys.argv = ['gradcheck', 'check', '--layer', 'relu', '--examples', '2']; "
              "sys.exit(console_main())")
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=tmp_path, env=env)
    proc.stdout.close()  # the reader is gone before anything is written, like `| head -0`
    stderr = proc.stderr.read().decode()
    proc.wait(timeout=60)
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr, stderr
    assert proc.returncode == 141
    work = tmp_path / "work"
    work.mkdir()
    script = ("import sys; from gradcheck.cli import console_main; "
              "sys.argv = ['gradcheck', 'check', '--layer', 'affine', '--examples', '2', '--quiet']; "
              "sys.exit(console_main())")
    subprocess.run([sys.executable, "-c", script], cwd=work, env=env, check=True, capture_output=True)
    assert not (work / ".hypothesis").exists()


def test_progress_off_a_terminal_is_one_line_per_finished_layer(capsys):
    status, _ = run("check", "--layer", "relu", "--layer", "affine", "--examples", "2", "--quiet")
    assert status == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("gradcheck: relu: passed (1/2 done, ")
    assert err[1].startswith("gradcheck: affine: passed (2/2 done, ")


def test_progress_on_a_terminal_never_shows_an_empty_layer_name():
    from gradcheck.cli_output import Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    progress = Progress(1, stream)
    progress.start("conv")
    progress.done("conv")
    assert "checking conv (0/1 done)" in stream.getvalue()
    assert "checking  (" not in stream.getvalue() and stream.getvalue().endswith("(1/1 done)")


def test_clear_usage_errors_for_a_missing_module_a_directory_and_a_syntax_error(tmp_path, capsys):
    assert run("check", "nosuchmodule_gc")[0] == 2
    assert "no such file or module: nosuchmodule_gc" in capsys.readouterr().err
    assert run("check", str(tmp_path))[0] == 2
    assert f"{tmp_path} is a directory with no file gradcheck knows in it" in capsys.readouterr().err
    bad = tmp_path / "bad.py"
    bad.write_text("def f(:\n    pass\n")
    assert run("check", str(bad))[0] == 2
    err = capsys.readouterr().err
    assert "SyntaxError" in err and "bad.py" in err
    assert "frozen importlib" not in err and "importlib/__init__" not in err


PRINTING = '''
import numpy as np

CALLS = [0]

def affine_forward(x, w, b):
    CALLS[0] += 1
    print(f"affine call {CALLS[0]}: x.shape={x.shape}")
    return x.reshape(len(x), -1) @ w + b, (x, w)

def affine_backward(dout, cache):
    x, w = cache
    return (dout @ w.T).reshape(x.shape), x.reshape(len(x), -1).T @ dout, dout.mean(axis=0)

def relu_forward(x):
    print("relu says hello")
    return np.maximum(x, 0), x

def relu_backward(dout, x):
    return dout * (x > 0)

def softmax_loss(x, y):
    import os
    print("about to leave")  # never flushed: os._exit skips that
    os._exit(3)
'''


def _printing_file(tmp_path):
    target = tmp_path / "printing.py"
    target.write_text(PRINTING)
    return str(target)


def test_failing_and_erroring_layers_show_what_they_printed_passing_ones_do_not(tmp_path):
    status, text = run("check", _printing_file(tmp_path), "--examples", "3")
    assert status == 1
    affine = text.split("affine (affine_forward/affine_backward): FAILED")[1].split("=" * 78)[0]
    header = [line for line in affine.splitlines() if line.startswith("--- output printed by")]
    assert len(header) == 1
    assert header[0].startswith("--- output printed by affine_forward/affine_backward over all its "
                                "cases (last 20 of ")
    assert "lines; -s shows all) ---" in header[0]
    printed = affine.split(header[0])[1].strip().splitlines()
    assert len(printed) == 20 and all(line.startswith("affine call ") for line in printed)
    assert "affine call 1:" not in affine  # the first calls are cut, the last ones shown
    loss = text.split("softmax_loss (softmax_loss): ERROR")[1]
    assert "ended the Python process with exit status 3" in loss
    assert "--- output printed by softmax_loss over all its cases ---" in loss
    assert loss.count("about to leave") == 1  # as output, not repeated in the error
    assert "relu says hello" not in text


def test_show_output_shows_all_of_it_for_every_layer(tmp_path):
    status, text = run("check", _printing_file(tmp_path), "--examples", "3", "-s")
    assert status == 1
    assert "affine call 1: x.shape=" in text and "-s shows all" not in text
    relu = text.split("relu (relu_forward/relu_backward): passed")[1]
    assert "--- output printed by relu_forward/relu_backward over all its cases ---" in relu
    assert "relu says hello" in relu


OWN_NAMES = '''
import numpy as np

def fc_fwd(x, w, b):
    return x.reshape(len(x), -1) @ w + b, (x, w)

def fc_bwd(dout, cache):
    x, w = cache
    return (dout @ w.T).reshape(x.shape), x.reshape(len(x), -1).T @ dout, dout.sum(axis=0)

def softmax_loss_vectorized(x, y):
    shifted = x - x.max(axis=1, keepdims=True)
    p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    loss = -np.log(p[np.arange(len(y)), y]).mean()
    p[np.arange(len(y)), y] -= 1
    return loss, p / len(y)

def relu_forward(x):
    return np.maximum(x, 0), x

def relu_backward(dout, x):
    return dout * (x > 0)
'''


def test_no_layers_found_lists_layer_like_functions_and_how_to_map_them(tmp_path, capsys):
    target = tmp_path / "mine.py"
    target.write_text(OWN_NAMES.split("def relu_forward")[0])
    assert run("check", str(target))[0] == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"gradcheck: error: no layers found in {target}; gradcheck recognises")
    assert err[1:] == [
        f"functions in {target} that look like layers:",
        "  - fc_fwd/fc_bwd: not a CS231n name; nearest known layer: affine (add --layer "
        "affine=fc_fwd,fc_bwd to check it as one)",
        "  - softmax_loss_vectorized: not a CS231n name; nearest known layer: softmax_loss (add "
        "--layer softmax_loss=softmax_loss_vectorized to check it as one)",
        "check them under their own names with --layer LAYER=FORWARD,BACKWARD:",
        f"  gradcheck check {target} --layer affine=fc_fwd,fc_bwd --layer softmax_loss=softmax_loss_vectorized",
    ]


def test_layer_option_maps_own_names_besides_the_layers_found(tmp_path, capsys):
    target = tmp_path / "mine.py"
    target.write_text(OWN_NAMES)
    status, text = run("check", str(target), "--examples", "2", "--layer", "affine=fc_fwd,fc_bwd")
    assert status == 0, text
    rows = {line.split()[0]: line.split()[1] for line in text.splitlines()[2:5]}
    assert rows == {"affine": "fc_fwd/fc_bwd", "relu": "relu_forward/relu_backward",
                    "layer": "functions"}
    assert ("softmax_loss_vectorized: not a CS231n name; nearest known layer: softmax_loss" in text)
    assert "fc_fwd/fc_bwd: not a CS231n name" not in text  # checked, so not listed as unchecked
    # with a name too, --layer restricts the layers found, and still checks the mapped ones
    status, text = run("check", str(target), "--examples", "2", "--layer", "softmax_loss=softmax_loss_vectorized",
                       "--layer", "affine")
    assert status == 0 and "1 passed" in text and "softmax_loss  softmax_loss_vectorized" in text


@pytest.mark.parametrize(("args", "message"), [
    (["--layer", "affine=fc_fwd,fc_bwdd"], "--layer affine=fc_fwd,fc_bwdd: {t} defines fc_fwd but no function "
                                            "fc_bwdd (did you mean fc_bwd?)"),
    (["--layer", "affine=fcfwd,fc_bwd"], "--layer affine=fcfwd,fc_bwd: no function fcfwd in {t} (did you mean fc_fwd?)"),
    (["--layer", "afine=fc_fwd,fc_bwd"], "--layer afine=fc_fwd,fc_bwd: no layer named 'afine' (did you mean affine?"),
])
def test_layer_mapping_errors_name_the_option(tmp_path, capsys, args, message):
    target = tmp_path / "mine.py"
    target.write_text(OWN_NAMES)
    assert run("check", str(target), *args)[0] == 2
    assert message.format(t=target) in capsys.readouterr().err


def test_layer_mapping_needs_a_path(capsys):
    assert run("check", "--layer", "affine=fc_fwd,fc_bwd")[0] == 2
    assert "--layer affine=fc_fwd,fc_bwd: name a PATH whose functions these are" in capsys.readouterr().err


def test_a_file_that_hands_in_the_checkers_reference_fails_with_that_reason(tmp_path):
    """Importing the reference used to be "no layers found" (exit 2); a file that hands in
    the checker's own answer fails, named, while its own layers are checked as usual."""
    only_reference = tmp_path / "copied.py"
    only_reference.write_text("from reference_layers import affine_forward, affine_backward\n")
    out = tmp_path / "copied.json"
    status, text = run("check", str(only_reference), "--examples", "2", "--json", str(out))
    assert status == 1, text
    assert "hands in the checker's own reference implementation" in text
    layer = json.loads(out.read_text())["layers"][0]
    assert (layer["layer"], layer["passed"], layer["forward"]) == ("affine", False, "FAILED")
    assert "reference_imported" in layer["contract_violations"]

    mixed = tmp_path / "mixed.py"
    mixed.write_text(
        "import numpy as np\n"
        "from reference_layers import relu_forward, relu_backward\n\n"
        "def affine_forward(x, w, b):\n"
        "    return x.reshape(x.shape[0], -1) @ w + b, (x, w, b)\n\n"
        "def affine_backward(dout, cache):\n"
        "    x, w, b = cache\n"
        "    return (dout @ w.T).reshape(x.shape), x.reshape(x.shape[0], -1).T @ dout, dout.sum(axis=0)\n"
    )
    out = tmp_path / "mixed.json"
    status, text = run("check", str(mixed), "--examples", "2", "--json", str(out))
    verdicts = {entry["layer"]: entry["passed"] for entry in json.loads(out.read_text())["layers"]}
    assert status == 1 and verdicts == {"affine": True, "relu": False}, text
