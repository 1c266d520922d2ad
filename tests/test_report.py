"""The report is the product: its text is pinned, its dict round-trips through JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

import gradcheck
from reference_layers import affine_backward, affine_forward


def double_forward(x):
    return 2 * x, None


def triple_backward(dout, cache):
    return 3 * dout


def double_backward(dout, cache):
    return 2 * dout


X = np.arange(6.0).reshape(2, 3) - 2.5

FAILING = """\
gradcheck double_forward: FAILED
  method: complex step
  mode: full, seed 0, 73 forward evaluations

  gradient  shape   verdict  checked      mismatched  max abs err  max rel err
  dx        (2, 3)  FAILED   6/6 entries  6           2.70e+00     2.55e-01

dx: Mismatched elements: 6 / 6 (100%)
  tolerance: |analytic - numeric| <= atol + rtol * (|numeric| + scale) + error bar, with rtol=1e-07, atol=0, scale=5.187
  Max absolute difference: 2.6983
  Max relative difference: 0.254952
    index   analytic    numeric     difference
    (0, 2)  8.0948983   5.3965989   2.7
    (0, 0)  5.345582    3.5637213   1.78
    (1, 2)  4.853731    3.2358206   1.62
    (1, 1)  -4.8470678  -3.2313786  1.62
    (0, 1)  4.2957866   2.8638578   1.43
    (1, 0)  1.3479733   0.89864887  0.449
  Most likely cause: dx is 1.5 times the true gradient: a constant factor is off."""


def test_failing_report_text_is_pinned():
    assert str(gradcheck.check_layer(double_forward, triple_backward, X)) == FAILING


def test_passing_report_is_short():
    lines = str(gradcheck.check_layer(double_forward, double_backward, X)).splitlines()
    assert lines[:3] == [
        "gradcheck double_forward: passed",
        "  method: complex step",
        "  mode: full, seed 0, 31 forward evaluations",
    ]
    assert lines[4].split() == ["gradient", "shape", "verdict", "checked", "mismatched",
                                "max", "abs", "err", "max", "rel", "err"]
    assert lines[5].split()[:7] == ["dx", "(2,", "3)", "ok", "6/6", "entries,", "grouped"]
    assert len(lines) == 6


def test_contract_violations_are_listed_with_their_kind(rng):
    x, w, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2)), rng.standard_normal(2)
    report = gradcheck.check_layer(affine_forward, lambda d, c: affine_backward(d, c)[:2], x, w, b)
    text = str(report)
    assert text.endswith(
        "Contract violations:\n"
        "  - backward returned 2 gradients; expected 3, one for each differentiable input, "
        "in argument order: dx, dw, db [gradient_count]"
    )
    assert "  dw        (4, 2)  not compared  -        -" in text


def test_fallback_method_is_explained_in_the_header(rng):
    def forward(x):
        return np.abs(x) * 1.0, x

    def backward(dout, x):
        return dout * np.sign(x)

    report = gradcheck.check_layer(forward, backward, rng.uniform(0.5, 1, 4) * rng.choice([-1, 1], 4))
    assert report.passed
    assert str(report).splitlines()[1] == (
        "  method: central differences (complex step not usable: forward returns real "
        "outputs for complex inputs)"
    )


@pytest.mark.parametrize("backward", [double_backward, triple_backward])
def test_to_dict_round_trips_through_json(backward):
    report = gradcheck.check_layer(double_forward, backward, X)
    data = report.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["passed"] is report.passed
    assert data["gradients"]["dx"]["n_checked"] == 6
    assert (data["gradients"]["dx"]["name"], data["gradients"]["dx"]["argument"]) == ("dx", "x")
    assert data["method"] == "complex"


def test_to_dict_replaces_non_finite_numbers(rng):
    x, w, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2)), rng.standard_normal(2)
    report = gradcheck.check_layer(lambda x, w, b: (np.full((3, 2), np.nan), None),
                                   affine_backward, x, w, b)
    data = report.to_dict()
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert data["violations"][0]["kind"] == "forward_nonfinite"


def test_html_rendering_says_what_the_text_says():
    report = gradcheck.check_layer(double_forward, triple_backward, X)
    html = report._repr_html_()
    assert html.startswith("<div class='gradcheck-report'><b>gradcheck double_forward: ")
    assert "<td>dx</td><td>(2, 3)</td><td>FAILED</td><td>6/6 entries</td><td>6</td><td>2.70e+00</td>" in html
    assert "<b>dx: Mismatched elements: 6 / 6 (100%)</b>" in html
    assert ("tolerance: |analytic - numeric| &lt;= atol + rtol * (|numeric| + scale) + error bar, "
            "with rtol=1e-07, atol=0, scale=5.187") in html
    assert "Max absolute difference: 2.6983" in html
    assert "<th>index</th><th>analytic</th><th>numeric</th><th>difference</th>" in html
    assert "<tr><td>(0, 2)</td><td>8.0948983</td><td>5.3965989</td><td>2.7</td></tr>" in html
    assert "<b>Most likely cause:</b> dx is 1.5 times the true gradient" in html
    passing = gradcheck.check_layer(double_forward, double_backward, X)._repr_html_()
    assert "Mismatched" not in passing and "Most likely cause" not in passing and ">passed<" in passing


def test_html_shows_directions_violations_traceback_and_dashes_where_nothing_was_compared():
    html = gradcheck.check_layer(double_forward, triple_backward, X, mode="directional",
                                 localise=False)._repr_html_()
    assert "<b>dx: mismatch along random directions</b>" in html
    assert "<li>along a random direction: analytic " in html

    def shapeless_backward(dout, cache):
        return dout[:1]

    html = gradcheck.check_layer(double_forward, shapeless_backward, X)._repr_html_()
    assert "<td>dx</td><td>(2, 3)</td><td>not compared</td><td>-</td><td>-</td><td>-</td><td>-</td>" in html
    assert "<b>Contract violations:</b>" in html and "[gradient_shape]" in html

    def raising_backward(dout, cache):
        raise ValueError("<b>bad</b> & worse")

    html = gradcheck.check_layer(double_forward, raising_backward, X)._repr_html_()
    assert "<b>Traceback of your code</b>" in html and "<pre>" in html
    assert "raise ValueError(&quot;&lt;b&gt;bad&lt;/b&gt; &amp; worse&quot;)" in html
    assert "&lt;b&gt;bad&lt;/b&gt; &amp; worse" in html and "<b>bad</b>" not in html


def test_gradient_result_fields():
    report = gradcheck.check_layer(double_forward, triple_backward, X)
    g = report.gradients["x"]
    assert (g.passed, g.n_mismatched, g.n_checked, g.worst_index) == (False, 6, 6, (0, 2))
    assert g.max_abs_error == pytest.approx(2.6983, rel=1e-5)
    assert report.n_evaluations == 73 and report.method == "complex"
    assert not report and bool(gradcheck.check_layer(double_forward, double_backward, X))
