"""The flaky-test hunt (benchmarks/reliability.py): reading JUnit reports and comparing runs."""

from __future__ import annotations

from benchmarks.reliability import Run, compare, parse_junit, table

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest">
  <testcase classname="tests.test_check" name="test_ok" time="0.1"/>
  <testcase classname="tests.layers.test_dropout_layers" name="test_mask[0.3]" time="0.1">
    <failure message="AssertionError: named ['x']&#10;second line">traceback</failure>
  </testcase>
  <testcase classname="tests.test_objects" name="test_torch" time="0.0">
    <skipped type="pytest.skip" message="could not import 'torch'"/>
  </testcase>
  <testcase classname="tests.test_cli.TestGroup" name="test_in_a_class" time="0.1"/>
  <testcase classname="tests.test_cli.TestGroup" name="test_in_a_class" time="0.1">
    <error message="failed on teardown">boom</error>
  </testcase>
</testsuite></testsuites>
"""


def test_junit_outcomes_by_test_id(tmp_path):
    path = tmp_path / "report.xml"
    path.write_text(JUNIT)
    outcomes, messages = parse_junit(path)
    assert outcomes == {
        "tests/test_check.py::test_ok": "passed",
        "tests/layers/test_dropout_layers.py::test_mask[0.3]": "failed",
        "tests/test_objects.py::test_torch": "skipped",
        # a teardown error is reported as a second entry: the worse outcome stands
        "tests/test_cli.py::TestGroup::test_in_a_class": "error",
    }
    assert messages["tests/layers/test_dropout_layers.py::test_mask[0.3]"] == "AssertionError: named ['x']"


def _run(seed, **outcomes):
    return Run(seed, 1.0, 0, outcomes={k.replace("_", "::", 1): v for k, v in outcomes.items()},
               messages={k.replace("_", "::", 1): "AssertionError" for k, v in outcomes.items() if v == "failed"})


def test_compare_finds_varying_and_always_failing_tests():
    runs = [
        _run(1, a_steady="passed", b_flaky="passed", c_broken="failed", d_skipped="skipped", e_new="passed"),
        _run(2, a_steady="passed", b_flaky="failed", c_broken="failed", d_skipped="skipped"),
        _run(3, a_steady="passed", b_flaky="passed", c_broken="failed", d_skipped="skipped", e_new="passed"),
    ]
    result = compare(runs)
    assert result.tests == ["a::steady", "b::flaky", "c::broken", "d::skipped", "e::new"]
    assert result.varying == ["b::flaky", "e::new"]  # absent from one run counts as varying
    assert result.always_bad == ["c::broken"]
    text = table(runs, result.varying).splitlines()
    assert text[0].split() == ["1", "2", "3", "test"]
    assert text[1].split() == [".", "F", ".", "b::flaky"]
    assert text[2].split() == ["seed", "2:", "AssertionError"]
    assert text[3].split() == [".", "-", ".", "e::new"]


def test_identical_runs_vary_in_nothing():
    runs = [_run(seed, a_one="passed", b_two="skipped") for seed in (1, 2)]
    result = compare(runs)
    assert result.varying == [] and result.always_bad == []
