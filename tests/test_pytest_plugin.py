"""The pytest plugin: --gradcheck-target items, options, header, the gradcheck fixture."""

from __future__ import annotations

import pathlib
import re
import sys

import pytest

EXAMPLES = pathlib.Path(__file__).resolve().parent.parent / "examples"

SMALL = '''
import numpy as np

def affine_forward(x, w, b):
    return x.reshape(len(x), -1) @ w + b, (x, w)

def affine_backward(dout, cache):
    x, w = cache
    return (dout @ w.T).reshape(x.shape), x.reshape(len(x), -1).T @ dout, dout.mean(axis=0)

def relu_forward(x):
    return np.maximum(x, 0), x

def relu_backward(dout, x):
    return dout * (x > 0)

def softmax_loss(x, y):
    import os
    os._exit(3)
'''


@pytest.fixture
def target(pytester):
    return pytester.makepyfile(layers=SMALL)


def test_one_item_per_layer_with_verdicts(pytester, target):
    result = pytester.runpytest_subprocess("--gradcheck-target", str(target), "--gradcheck-examples", "3",
                                           "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["gradcheck: seed 0 (reproduce with --gradcheck-seed=0); targets: *layers.py"])
    result.stdout.fnmatch_lines([
        "*affine (affine_forward): FAILED*",
        "*Most likely cause: db is 1/*",
        "*softmax_loss (softmax_loss): ERROR*",
        "*ended the Python process with exit status 3*",
    ])


def test_verbose_node_ids_and_options(pytester, target):
    result = pytester.runpytest_subprocess("--gradcheck-target", str(target), "--gradcheck-examples", "2",
                                           "--gradcheck-seed", "5", "-v", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["gradcheck: seed 5 (reproduce with --gradcheck-seed=5)*"])
    result.stdout.fnmatch_lines(["*layers.py::relu PASSED*"])
    result.stdout.fnmatch_lines(["*layers.py::affine FAILED*"])


def test_import_error_is_one_failing_item(pytester):
    bad = pytester.makepyfile(layers="raise ImportError('missing cs231n')\n")
    result = pytester.runpytest_subprocess("--gradcheck-target", str(bad), "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*ImportError: missing cs231n*"])


def test_missing_target_is_a_usage_error(pytester):
    result = pytester.runpytest_subprocess("--gradcheck-target", "nope.py")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--gradcheck-target nope.py: no such file*"])


def test_runs_under_xdist(pytester, target):
    pytest.importorskip("xdist")
    result = pytester.runpytest_subprocess("--gradcheck-target", str(target), "--gradcheck-examples", "2",
                                           "-n", "2", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2)


@pytest.mark.parametrize("layout", ["same path", "rsync"])
def test_a_class_spreads_over_tx_executors(pytester, layout):
    """The README's recipe for several hosts, with popen executors (what ssh executors run)
    in another directory: the class read at the same path on every host, or copied there by
    xdist (--rsyncdir; the paths must then be absolute)."""
    pytest.importorskip("xdist")
    folder = pytester.path / "class"
    for student in ("ada", "ben"):
        (folder / student).mkdir(parents=True)
        (folder / student / "layers.py").write_text(SMALL.split("def softmax_loss")[0])
    remote = pytester.path / "remote"
    remote.mkdir()
    # at the same path: --rootdir too, so that node ids name the student (relative to it);
    # in one word each, or xdist would take them for paths to copy
    where = (f"--gradcheck-target={folder} --rootdir={pytester.path}" if layout == "same path"
             else f"--gradcheck-target {folder}")
    copy = ["--rsyncdir", str(folder)] if layout == "rsync" else []
    result = pytester.runpytest_subprocess(
        *where.split(" "), *copy, "--gradcheck-examples", "2", "--dist", "load", "-v",
        "--tx", f"2*popen//chdir={remote}//python={sys.executable}", "-p", "no:cacheprovider",
        "-W", "ignore::DeprecationWarning")
    result.assert_outcomes(passed=2, failed=2)  # each student: relu passes, affine's db is wrong
    ran = set(re.findall(r"\[(gw\d)\] \[ *\d+%\] (?:PASSED|FAILED) (class/\w+/layers.py::\w+)",
                         result.stdout.str()))
    assert {item for _, item in ran} == {f"class/{s}/layers.py::{layer}" for s in ("ada", "ben")
                                         for layer in ("affine", "relu")}
    assert {worker for worker, _ in ran} == {"gw0", "gw1"}
    assert (remote / "class" / "ada" / "layers.py").exists() is (layout == "rsync")


def test_fixture_checks_pairs_losses_and_specs(pytester):
    pytester.makepyfile(test_user='''
        import numpy as np
        import pytest
        from reference_layers import affine_forward, affine_backward, softmax_loss

        def bad_backward(dout, cache):
            dx, dw, db = affine_backward(dout, cache)
            return dx, dw.copy() * 2, db

        def test_layer(gradcheck):
            rng = np.random.default_rng(0)
            report = gradcheck.layer(affine_forward, affine_backward, rng.normal(size=(2, 3)),
                                     rng.normal(size=(3, 2)), rng.normal(size=2))
            assert report.passed

        def test_loss(gradcheck):
            rng = np.random.default_rng(0)
            gradcheck.loss(softmax_loss, rng.normal(size=(3, 4)), np.array([0, 3, 1]))

        def test_like(gradcheck):
            outcome = gradcheck.like("affine", affine_forward, affine_backward, examples=3)
            assert outcome.n_cases >= 3

        def test_like_catches(gradcheck):
            gradcheck.like("affine", affine_forward, bad_backward, examples=3)
    ''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines([
        "*LayerMismatch: affine (affine_forward): FAILED*",
        "*dw is 2 times the true gradient*",
    ])


def test_warnings_show_as_pytest_warnings_and_strict_fails_them(pytester):
    skeleton = str(EXAMPLES / "layers_skeleton.py")
    common = ("--gradcheck-target", skeleton, "--gradcheck-examples", "3", "-p", "no:cacheprovider")
    result = pytester.runpytest_subprocess(*common)
    result.assert_outcomes(passed=5, warnings=2)
    result.stdout.fnmatch_lines([
        "*layers_skeleton.py:1: GradcheckWarning: relu (relu_forward): passed with warnings*",
        "*warning ?dout_mutated?: backward wrote into the upstream gradient dout*",
    ])
    result = pytester.runpytest_subprocess(*common, "--gradcheck-strict")
    result.assert_outcomes(passed=3, failed=2)
    result.stdout.fnmatch_lines(["*_ gradcheck relu _*", "relu (relu_forward): passed with warnings"])


def test_fixture_warns_on_a_write_into_dout(pytester):
    pytester.makepyfile('''
        import numpy as np

        def relu_forward(x):
            return np.maximum(x, 0), x

        def relu_backward(dout, x):
            dout[x <= 0] = 0
            return dout

        def test_layer(gradcheck):
            gradcheck.layer(relu_forward, relu_backward, np.random.default_rng(0).normal(size=(3, 4)))
    ''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, warnings=1)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--gradcheck-strict")
    result.assert_outcomes(failed=1)


def test_timeout_message_names_the_pytest_option_and_the_fixture_has_a_name_that_does_not_collide(pytester):
    target = pytester.makepyfile(slow_layers='''
        import time

        def relu_forward(x):
            while True:
                time.sleep(0.1)

        def relu_backward(dout, cache):
            return dout
    ''')
    result = pytester.runpytest_subprocess("--gradcheck-target", str(target), "--gradcheck-timeout", "3",
                                           "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*timed out after 3 s*raise the limit with --gradcheck-timeout*"])
    pytester.makepyfile(test_uses_module='''
        import numpy as np
        import gradcheck

        def test_layer(gradchecker):
            from reference_layers import relu_backward, relu_forward
            gradchecker.layer(relu_forward, relu_backward, np.random.default_rng(0).normal(size=(2, 3)))
            assert gradcheck.check_layer(relu_forward, relu_backward, np.ones((2, 2))).passed
    ''')
    result = pytester.runpytest_subprocess("test_uses_module.py", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_what_a_layer_printed_is_shown_as_captured_output(pytester):
    layers = pytester.makepyfile(layers=SMALL.replace(
        "def relu_forward(x):\n", "def relu_forward(x):\n    print('relu prints this')\n").replace(
        "def affine_forward(x, w, b):\n", "def affine_forward(x, w, b):\n    print('affine prints this')\n"))
    result = pytester.runpytest_subprocess("--gradcheck-target", str(layers), "--gradcheck-examples", "2",
                                           "-p", "no:cacheprovider", "-rP")
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(["*Captured output call*", "affine prints this"])
    result.stdout.fnmatch_lines(["*PASSES*", "*Captured output call*", "relu prints this"])
    result = pytester.runpytest_subprocess("--gradcheck-target", str(layers), "--gradcheck-examples", "2",
                                           "-p", "no:cacheprovider")
    assert "relu prints this" not in result.stdout.str()  # a passing item's output only with -rP


def test_target_items_are_collected_items(pytester, target):
    result = pytester.runpytest_subprocess("--gradcheck-target", str(target), "--collect-only", "-q",
                                           "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["layers.py::affine", "layers.py::relu", "layers.py::softmax_loss",
                                 "3 tests collected*"])
    result = pytester.runpytest_subprocess("--gradcheck-target", str(target), "--gradcheck-examples", "2",
                                           "-k", "relu", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["collected 3 items / 2 deselected / 1 selected"])
    result.assert_outcomes(passed=1, deselected=2)


def test_a_target_among_the_tests_is_collected_once_and_never_imported_as_a_test_module(pytester):
    # as a test module, its test_inside would be collected (and the file imported into pytest)
    pytester.makepyfile(test_student=SMALL + "\ndef test_inside():\n    pass\n")
    pytester.makepyfile(test_other="def test_other():\n    pass\n")
    result = pytester.runpytest_subprocess("--gradcheck-target", "test_student.py", "--collect-only", "-q",
                                           "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["test_other.py::test_other", "test_student.py::affine", "test_student.py::relu",
                                 "test_student.py::softmax_loss", "4 tests collected*"])
    result = pytester.runpytest_subprocess("--gradcheck-target", "test_student.py", "--collect-only",
                                           "-p", "no:cacheprovider")
    assert "<Module test_student.py>" not in result.stdout.str() and "test_inside" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*<GradcheckTarget test_student.py>*"])
