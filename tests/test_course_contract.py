"""A layer is judged by its own course's contract: three verdicts (passed, warning, FAILED),
test-mode caches, running statistics, course-year conventions, Python 2 and old NumPy."""

from __future__ import annotations

import io
import json
import textwrap
import warnings

import numpy as np
import pytest

import gradcheck
from gradcheck.candidate import check_candidate
from gradcheck.cli import main
from gradcheck.contract import Violation
from gradcheck.kinds import ViolationKind
from gradcheck.specs import get_spec
from gradcheck.testing import LayerMismatch, warn_or_raise
from reference_layers import (
    relu_forward,
    spatial_groupnorm_backward,
    spatial_groupnorm_forward,
)

SKELETON = "examples/layers_skeleton.py"


def run_cli(*argv):
    out = io.StringIO()
    status = main(list(argv), stdout=out)
    return status, out.getvalue()


def relu_backward_in_place(dout, cache):
    dout[cache <= 0] = 0
    return dout


# -- the report: warnings pass, and say why ------------------------------------------------


def test_a_write_into_dout_is_a_warning_that_explains_itself(rng):
    x = rng.standard_normal((4, 5))
    report = gradcheck.check_layer(relu_forward, relu_backward_in_place, x)
    assert report.passed and report.verdict == "warning"
    assert [v.kind for v in report.warnings] == [ViolationKind.DOUT_MUTATED] and not report.failures
    text = str(report)
    assert text.startswith("gradcheck relu_forward: passed with warnings")
    assert "Warnings (every result is right; --strict makes these failures):" in text
    assert "Why it matters: a later layer that reuses dout" in text
    data = report.to_dict()
    assert data["passed"] is True and data["verdict"] == "warning" and data["violations"] == []
    assert [w["kind"] for w in data["warnings"]] == ["dout_mutated"]
    assert "Warnings</b>" in report._repr_html_()


def test_assert_gradients_warns_and_strict_raises(rng):
    x = rng.standard_normal((3, 4))
    with pytest.warns(gradcheck.GradcheckWarning, match="wrote into the upstream gradient"):
        gradcheck.assert_gradients(relu_forward, relu_backward_in_place, x)
    with pytest.raises(gradcheck.GradientMismatch, match="passed with warnings"):
        gradcheck.assert_gradients(relu_forward, relu_backward_in_place, x, strict=True)


def test_a_failure_is_not_a_warning():
    assert not Violation(ViolationKind.GRADIENT_SHAPE, "x").is_warning
    mutated = Violation(ViolationKind.INPUT_MUTATED, "x")
    assert mutated.is_warning and mutated.why


def test_the_warning_kinds_are_the_hazards_that_leave_results_right():
    warnings = {kind.value for kind in ViolationKind if kind.is_warning}
    assert warnings == {"dout_mutated", "input_mutated", "test_mode_backward", "convention",
                        "legacy_numpy", "python2", "device", "loss_shape", "stray_import",
                        "broadcast_gradient", "param_dtype"}
    assert all(kind.why for kind in ViolationKind if kind.is_warning)
    assert not any(kind.why for kind in ViolationKind if not kind.is_warning)


def test_a_violation_kind_is_the_enum_given_as_its_word_and_shows_as_its_word():
    violation = Violation("dout_mutated", "backward wrote into dout")
    assert violation.kind is ViolationKind.DOUT_MUTATED
    assert f"[{violation.kind}]" == "[dout_mutated]"
    assert json.dumps({"kind": violation.kind}) == '{"kind": "dout_mutated"}'
    with pytest.raises(ValueError, match="dout_mutatd"):
        Violation("dout_mutatd", "a misspelt kind fails at once")


# -- the command line on a skeleton-style file ----------------------------------------------


def test_skeleton_style_file_passes_with_warnings_and_fails_under_strict(tmp_path):
    out = tmp_path / "out.json"
    status, text = run_cli("check", SKELETON, "--examples", "5", "--json", str(out))
    assert status == 0, text
    assert "passed*" in text and "warning:dout_mutated" in text
    assert "relu (relu_forward/relu_backward): passed with warnings" in text
    assert "why it matters although every result is right" in text
    assert "batchnorm_backward refuses a cache from this case" in text  # a note, no failure
    assert "held to the convention your docstring states: p is the probability of DROPPING" in text
    assert text.rstrip().splitlines()[-1].startswith("5 passed (2 with warnings), 0 failed")
    layers = {e["layer"]: e for e in json.loads(out.read_text())["layers"]}
    assert layers["relu"]["passed"] is True and layers["relu"]["verdict"] == "warning"
    assert [w["kind"] for w in layers["relu"]["warnings"]] == ["dout_mutated"]
    assert [w["kind"] for w in layers["softmax_loss"]["warnings"]] == ["input_mutated"]
    assert layers["batchnorm"]["verdict"] == "passed" and layers["batchnorm"]["warnings"] == []
    status, text = run_cli("check", SKELETON, "--examples", "5", "--strict")
    assert status == 1
    assert "FAILED (strict)" in text and text.rstrip().splitlines()[-1].startswith("3 passed, 2 failed")


# -- batch normalisation: test mode and running statistics ----------------------------------


def _bn_forward(running_update):
    def batchnorm_forward(x, gamma, beta, bn_param):
        eps, momentum = bn_param.get("eps", 1e-5), bn_param.get("momentum", 0.9)
        rm = bn_param.get("running_mean", np.zeros(x.shape[1]))
        rv = bn_param.get("running_var", np.zeros(x.shape[1]))
        if bn_param["mode"] == "train":
            mu, var = x.mean(axis=0), x.var(axis=0)
            xhat = (x - mu) / np.sqrt(var + eps)
            bn_param["running_mean"], bn_param["running_var"] = running_update(rm, rv, mu, var, momentum, eps)
            return gamma * xhat + beta, (xhat, gamma, np.sqrt(var + eps))
        return gamma * (x - rm) / np.sqrt(rv + eps) + beta, None
    return batchnorm_forward


def _bn_backward(dout, cache):
    xhat, gamma, std = cache
    dxhat = dout * gamma
    dx = (dxhat - dxhat.mean(axis=0) - xhat * (dxhat * xhat).mean(axis=0)) / std
    return dx, (dout * xhat).sum(axis=0), dout.sum(axis=0)


def _right_update(rm, rv, mu, var, m, eps):
    return m * rm + (1 - m) * mu, m * rv + (1 - m) * var


def test_running_statistics_are_compared_with_the_reference():
    right = _right_update

    def eps_in_the_variance(rm, rv, mu, var, m, eps):  # off the course's formula by (1 - m) * eps
        return m * rm + (1 - m) * mu, m * rv + (1 - m) * (var + eps)

    def kept_as_column(rm, rv, mu, var, m, eps):  # statistics of shape (1, D): the layer's own format
        return m * np.reshape(rm, (1, -1)) + (1 - m) * mu, m * np.reshape(rv, (1, -1)) + (1 - m) * var

    def swapped(rm, rv, mu, var, m, eps):
        return (1 - m) * rm + m * mu, (1 - m) * rv + m * var

    spec = get_spec("batchnorm")
    assert check_candidate(spec, _bn_forward(right), _bn_backward).passed
    assert check_candidate(spec, _bn_forward(kept_as_column), _bn_backward).passed
    for wrong in (swapped, eps_in_the_variance):
        outcome = check_candidate(spec, _bn_forward(wrong), _bn_backward)
        assert outcome.forward == "FAILED" and "running" in outcome.forward_message, wrong.__name__
        assert "mode=train" in outcome.failing_case


def test_a_wrong_backward_on_a_test_mode_cache_is_a_warning():
    def forward(x, gamma, beta, bn_param):
        out, cache = _bn_forward(_right_update)(x, gamma, beta, bn_param)
        if cache is None:  # a train-style cache from the running statistics: wrong to differentiate
            rv, eps = bn_param["running_var"], bn_param.get("eps", 1e-5)
            xhat = (x - bn_param["running_mean"]) / np.sqrt(rv + eps)
            cache = (xhat, gamma, np.sqrt(rv + eps))
        return out, cache

    outcome = check_candidate(get_spec("batchnorm"), forward, _bn_backward)
    assert outcome.passed and outcome.verdict == "warning"
    assert [w["kind"] for w in outcome.warnings] == ["test_mode_backward"]
    assert "mode=test" in outcome.warnings[0]["case"]
    with pytest.raises(LayerMismatch):
        warn_or_raise(outcome, strict=True)
    with pytest.warns(gradcheck.GradcheckWarning):
        warn_or_raise(outcome)


def test_a_wrong_backward_still_fails_in_train_mode_with_an_informative_case():
    def forgets_the_mean_term(dout, cache):
        xhat, gamma, std = cache
        dxhat = dout * gamma
        return (dxhat - xhat * (dxhat * xhat).mean(axis=0)) / std, (dout * xhat).sum(axis=0), dout.sum(axis=0)

    outcome = check_candidate(get_spec("batchnorm"), _bn_forward(_right_update), forgets_the_mean_term)
    assert not outcome.passed and outcome.gradients["x"] == "FAILED"
    n = int(outcome.failing_case.split("x=(")[1].split(",")[0])
    assert n >= 3, outcome.failing_case  # never the degenerate two-sample case


# -- conventions of other course years -------------------------------------------------------


def _groupnorm_vector(docstring):
    def spatial_groupnorm_forward_vec(x, gamma, beta, G, gn_param):
        c = x.shape[1]
        return spatial_groupnorm_forward(x, gamma.reshape(1, c, 1, 1), beta.reshape(1, c, 1, 1), G, gn_param)

    def spatial_groupnorm_backward_vec(dout, cache):
        dx, dgamma, dbeta = spatial_groupnorm_backward(dout, cache)
        return dx, dgamma.reshape(-1), dbeta.reshape(-1)

    spatial_groupnorm_forward_vec.__doc__ = docstring
    return spatial_groupnorm_forward_vec, spatial_groupnorm_backward_vec


def test_group_norm_gamma_of_shape_c_as_the_docstring_states():
    forward, backward = _groupnorm_vector("- gamma: Scale parameter, of shape (C,)\n- beta: ...")
    outcome = check_candidate(get_spec("spatial_groupnorm"), forward, backward, examples=5)
    assert outcome.passed and not outcome.warnings
    assert any("held to the convention your docstring states: gamma and beta of shape (C,)" in n
               for n in outcome.notes)


def test_group_norm_gamma_of_shape_c_unstated_passes_with_a_convention_warning():
    forward, backward = _groupnorm_vector("no statement")
    outcome = check_candidate(get_spec("spatial_groupnorm"), forward, backward, examples=5)
    assert outcome.passed and [w["kind"] for w in outcome.warnings] == ["convention"]
    assert "gamma and beta of shape (1, C, 1, 1)" in outcome.warnings[0]["message"]


def test_the_docstring_says_c_but_the_code_takes_the_notebooks_shape():
    forward, backward = spatial_groupnorm_forward, spatial_groupnorm_backward

    def documented(x, gamma, beta, G, gn_param):
        return forward(x, gamma, beta, G, gn_param)

    documented.__doc__ = "- gamma: Scale parameter, of shape (C,)"
    outcome = check_candidate(get_spec("spatial_groupnorm"), documented, backward, examples=5)
    assert outcome.passed and not outcome.warnings  # the current convention: a note, no warning
    assert any("That is the current course's convention" in n for n in outcome.notes)


# -- code of other Python and NumPy releases -------------------------------------------------

PY2_POOL = '''
import numpy as np


def max_pool_forward_naive(x, pool_param):
    ph, pw, s = pool_param['pool_height'], pool_param['pool_width'], pool_param['stride']
    N, C, H, W = x.shape
    Ho, Wo = 1 + (H - ph) / s, 1 + (W - pw) / s
    out = np.zeros((N, C, Ho, Wo))
    for i in xrange(Ho):
        for j in xrange(Wo):
            out[:, :, i, j] = x[:, :, i*s:i*s+ph, j*s:j*s+pw].max(axis=(2, 3))
    return out, (x, pool_param)


def max_pool_backward_naive(dout, cache):
    x, pool_param = cache
    ph, pw, s = pool_param['pool_height'], pool_param['pool_width'], pool_param['stride']
    N, C, H, W = x.shape
    dx = np.zeros_like(x)
    for n in xrange(N):
        for c in xrange(C):
            for i in xrange(1 + (H - ph) / s):
                for j in xrange(1 + (W - pw) / s):
                    window = x[n, c, i*s:i*s+ph, j*s:j*s+pw]
                    mask = window == window.max()
                    dx[n, c, i*s:i*s+ph, j*s:j*s+pw] {op} mask * dout[n, c, i, j]
    return dx
'''


@pytest.mark.parametrize(("op", "passes"), [("+=", True), ("=", False)])
def test_python2_code_is_checked_as_its_course_ran_it(tmp_path, op, passes):
    target = tmp_path / "py2_layers.py"
    target.write_text(PY2_POOL.replace("{op}", op))
    out = tmp_path / "out.json"
    status, text = run_cli("check", str(target), "--examples", "8", "--json", str(out))
    layer = json.loads(out.read_text())["layers"][0]
    if passes:
        assert status == 0 and layer["verdict"] == "warning", text
        assert [w["kind"] for w in layer["warnings"]] == ["python2"]
        assert "cannot be interpreted as an integer" in layer["warnings"][0]["message"]
    else:  # the real bug (= where overlapping windows need +=), not the Python 3 TypeError
        assert status == 1 and layer["gradients"] == {"dx": "FAILED"}, text
        assert any("checked under Python 2 semantics" in n for n in layer["notes"])


def test_removed_numpy_names_run_with_their_old_meaning_and_a_warning(tmp_path):
    target = tmp_path / "old_numpy.py"
    target.write_text(textwrap.dedent('''
        import numpy as np


        def relu_forward(x):
            one = np.sum(1.0 for _ in range(1))  # np.sum of a generator: Python's sum, before 2.4
            return one * np.maximum(x, 0).astype(np.float), x


        def relu_backward(dout, x):
            return dout * (x > 0).astype(np.int)
    '''))
    out = tmp_path / "out.json"
    status, text = run_cli("check", str(target), "--examples", "4", "--json", str(out))
    assert status == 0, text
    warning = json.loads(out.read_text())["layers"][0]["warnings"][0]
    assert warning["kind"] == "legacy_numpy"
    assert "np.float (removed in NumPy 1.24)" in warning["message"] and "np.int" in warning["message"]
    assert "np.sum(generator) (removed in NumPy 2.4)" in warning["message"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert not hasattr(np, "float")  # the judge's own numpy is untouched
