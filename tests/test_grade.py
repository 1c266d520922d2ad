"""``gradcheck grade``: a built class of submissions gets the right verdict in every CSV
row, the HTML shows them, and what the students' code does stays inside its worker."""

from __future__ import annotations

import csv
import io
import json
import os
import re

import pytest

from benchmarks.grading.classroom import CLASS, HANGING, Submission, build, write
from gradcheck.cli import main
from gradcheck.discover import Match
from gradcheck.grade import GradeSettings, grade, is_assignment, students, target_files
from gradcheck.grade_cli import GradeProgress
from gradcheck.grade_report import CSV_COLUMNS, cause, common_causes
from gradcheck.isolation import Sandbox, check_isolated
from gradcheck.options import CheckOptions


def run_grade(folder, tmp_path, *extra):
    outputs = {kind: tmp_path / f"grades.{kind}" for kind in ("csv", "html", "json")}
    argv = ["grade", str(folder), "--examples", "5", "--jobs", "2"]
    for kind, path in outputs.items():
        argv += [f"--{kind}", str(path)]
    out = io.StringIO()
    status = main(argv + list(extra), stdout=out)
    return status, out.getvalue(), outputs


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The built class (all but the hanging student) graded once for the tests below."""
    tmp_path = tmp_path_factory.mktemp("grade")
    expected = build(tmp_path / "class")
    status, printed, outputs = run_grade(tmp_path / "class", tmp_path, "--timeout", "60")
    with open(outputs["csv"], newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    return expected, status, printed, outputs, rows


def test_every_csv_row_has_the_right_verdict(graded):
    expected, status, _, _, rows = graded
    assert status == 0  # the grading ran, whatever the verdicts (two fail, two are errors)
    assert {(r["student"], r["layer"]): r["verdict"] for r in rows} == expected
    assert len(rows) == len(expected)  # one row per student and layer found
    assert {"passed", "warning", "failed", "error"} == {r["verdict"] for r in rows}


def test_csv_columns_and_diagnoses(graded):
    _, _, _, outputs, rows = graded
    assert tuple(outputs["csv"].read_text().splitlines()[0].split(",")) == CSV_COLUMNS
    by_key = {(r["student"], r["layer"]): r for r in rows}
    for submission in CLASS:
        for layer, words in submission.diagnosis.items():
            assert words in by_key[(submission.name, layer)]["diagnosis"], (submission.name, layer)
    assert by_key[("ben", "affine")]["gradients"] == "dx:ok dw:ok db:FAILED"
    assert by_key[("ben", "affine")]["case"].startswith("x=(")
    assert by_key[("ada", "affine")]["diagnosis"] == "" and by_key[("ada", "affine")]["case"] == ""
    assert by_key[("ada", "relu")]["file"] == os.path.join("cs231n", "layers.py")
    assert by_key[("gus", "svm_loss_naive")]["file"] == os.path.join("cs231n", "classifiers", "linear_svm.py")
    assert by_key[("dan", "import")]["diagnosis"] == (
        "cannot be imported: SyntaxError: '(' was never closed (dan.py, line 22)")
    assert by_key[("eve", "relu")]["diagnosis"].startswith(
        "exceeded the memory limit of 2048 MB per worker (--memory)")
    assert all(float(r["seconds"]) >= 0 for r in rows)


def test_html_shows_every_verdict_and_opens_the_reports(graded):
    expected, _, _, outputs, rows = graded
    page = outputs["html"].read_text()
    for student, layer in expected:
        assert f"<th>{student}</th>" in page
        assert f"<th class='layer'>{layer}</th>" in page
    cells = re.findall(r"<td class='(\w+)'>(.*?)</td>", page)
    assert sorted(v for v, _ in cells) == sorted(expected.values())
    for index in range(len(rows)):  # every cell links to a report that exists
        assert f"href='#r{index}'" in page and f"<details id='r{index}'>" in page
    assert page.count("<td class='missing'") == 7 * 10 - len(expected)  # 7 students x 10 layers
    assert "<b>conv</b>: 1 of 1 slice the padding off with [p:-p]" in page
    assert "<b>affine</b>: 1 of 3 divide by the batch size once too often" in page


def test_json_and_summary(graded):
    expected, _, printed, outputs, _ = graded
    payload = json.loads(outputs["json"].read_text())
    assert payload["students"] == 7 and payload["memory_mb"] == 2048
    assert payload["verdicts"] == {"passed": 10, "warning": 1, "failed": 2, "error": 2}
    assert {(r["student"], r["layer"]) for r in payload["rows"]} == set(expected)
    hog = next(r for r in payload["rows"] if r["student"] == "eve")
    assert hog["result"]["verdict"] == "ERROR" and "Unable to allocate 6.00 GiB" in hog["report"]
    assert "7 students, 15 rows: 10 passed, 1 warning, 2 failed, 2 error in" in printed
    assert "  conv: 1 of 1 slice the padding off with [p:-p]\n" in printed


def test_a_hanging_student_times_out_and_the_grading_goes_on(tmp_path):
    build(tmp_path / "class", (HANGING, CLASS[0]))
    settings = GradeSettings(options=CheckOptions.within(5, examples=3, mode="directional"),
                             timeout=5, jobs=1)
    rows = grade(str(tmp_path / "class"), settings)
    assert [(r.student, r.layer, r.verdict) for r in rows] == [
        ("ada", "affine", "passed"), ("ada", "relu", "passed"), ("hal", "relu", "error")]
    assert rows[2].diagnosis.startswith("timed out after 5 s")


STRAY = Submission("stray", ("relu_forward", "relu_backward"), edits=((
    "    out = np.maximum(0, x)\n",
    "    open('stray.txt', 'w').write('x')\n"
    "    try:\n        input()\n    except EOFError:\n        pass\n"
    "    out = np.maximum(0, x)\n"),))


@pytest.mark.parametrize("fresh_cwd", [True, False])
def test_students_run_in_a_fresh_directory_with_stdin_closed(tmp_path, monkeypatch, fresh_cwd):
    monkeypatch.chdir(tmp_path)
    path = write(STRAY, tmp_path)
    outcome = check_isolated(str(path), Match("relu", "relu_forward", "relu_backward"),
                             CheckOptions(examples=2, mode="directional"), 60,
                             sandbox=Sandbox(memory_mb=2048, fresh_cwd=fresh_cwd))
    assert outcome.passed  # input() met end of file at once: no hang
    assert (tmp_path / "stray.txt").exists() is not fresh_cwd  # the fresh directory is gone


@pytest.mark.parametrize(("sandbox", "text", "named"), [
    (Sandbox(memory_mb=512), "forward raised MemoryError: Unable to allocate 6.00 GiB", True),
    (Sandbox(memory_mb=512), "forward raised ValueError: shapes differ", False),
    (Sandbox(), "forward raised MemoryError: Unable to allocate 6.00 GiB", False),
])
def test_memory_errors_name_the_limit_only_under_one(sandbox, text, named):
    message = sandbox.explain(text)
    assert (message is not None) is named
    if named:
        assert message == ("exceeded the memory limit of 512 MB per worker (--memory): the code allocates "
                           "more than that (forward raised MemoryError: Unable to allocate 6.00 GiB)")


def test_sandbox_rejects_a_bad_limit():
    with pytest.raises(ValueError, match=r"memory_mb=0 must be a positive number of MiB"):
        Sandbox(memory_mb=0)


def test_each_entry_is_one_student(tmp_path):
    build(tmp_path, (CLASS[0], CLASS[1]))
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.zip").write_text("")
    (tmp_path / ".hidden").mkdir()
    found = {s.name: s for s in students(str(tmp_path))}
    assert sorted(found) == ["ada", "ben", "empty", "notes.zip"]
    assert found["ada"].files == (str(tmp_path / "ada" / "cs231n" / "layers.py"),) and not found["ada"].problem
    assert found["ben"].files == (str(tmp_path / "ben.py"),)
    assert "no file gradcheck knows" in found["empty"].problem
    assert "not a .py file or a folder" in found["notes.zip"].problem
    assert not is_assignment(str(tmp_path)) and is_assignment(str(tmp_path / "ada"))
    assert target_files(str(tmp_path)) == [str(tmp_path / "ada" / "cs231n" / "layers.py"), str(tmp_path / "ben.py")]
    assert target_files(str(tmp_path / "ada")) == [str(tmp_path / "ada" / "cs231n" / "layers.py")]


@pytest.mark.parametrize(("argv", "message"), [
    (["grade", "missing-folder"], "SUBMISSIONS must be a folder with one entry per student; "
                                  "missing-folder does not exist"),
    (["grade", "{tmp}", "--memory", "10"], "--memory=10 must be at least 256"),
    (["grade", "{tmp}", "--jobs", "0"], "--jobs=0 must be at least 1"),
    (["grade", "{tmp}", "--csv", "{tmp}/no/such/out.csv"], "--csv {tmp}/no/such/out.csv: its folder does not exist"),
    (["grade", "{tmp}"], "{tmp} is empty: it needs one entry per student"),
])
def test_usage_errors_exit_2_naming_the_argument(tmp_path, capsys, argv, message):
    argv = [a.format(tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    assert capsys.readouterr().err == f"gradcheck grade: error: {message.format(tmp=tmp_path)}\n"


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("terminal", [True, False])
def test_progress_on_a_terminal_and_in_a_log(terminal):
    from gradcheck.grade import Row, Student

    stream = _Terminal() if terminal else io.StringIO()
    progress = GradeProgress(2, stream)
    rows = [Row("ada", "ada.py", "relu", "passed"), Row("ada", "ada.py", "affine", "failed")]
    progress.student_done(Student("ada", "ada.py", ("ada.py",)), rows, 3, 6)
    text = stream.getvalue()
    if terminal:
        assert text.startswith("\r\033[Kgraded 1/2 students, about ") and text.endswith(" left")
    else:
        assert re.fullmatch(r"gradcheck grade: ada: 1 passed, 1 failed \(1/2 students, \d+ s\)\n", text)


@pytest.mark.parametrize(("diagnosis", "words"), [
    ("dx has shape (1, 1, 0, 0): ... Slicing the padding off with [p:-p] gives nothing", "slice the padding off with [p:-p]"),
    ("db is 1/4 of the true gradient (N = 4 is the batch size): the backward", "divide by the batch size once too often"),
    ("dx is 5 times the true gradient (N = 5 is the batch size): the forward", "never divide by the batch size"),
    ("timed out after 5 s: an endless loop", "time out"),
    ("forward: train-mode dropout output must be 0", "compute a wrong forward"),
    ("warning [dout_mutated]: backward wrote into dout", "pass with a warning (dout_mutated)"),
    ("dgamma wrong (no single cause fits)", "get dgamma wrong"),
])
def test_diagnoses_sorted_into_common_causes(diagnosis, words):
    assert cause(diagnosis) == words


def test_common_causes_count_students_per_layer():
    from gradcheck.grade import Row

    rows = [Row(s, "f.py", "conv", v, diagnosis=d) for s, v, d in [
        ("a", "failed", "dx has shape ... [p:-p] gives nothing"), ("b", "failed", "dx ... [p:-p]"),
        ("c", "passed", ""), ("d", "failed", "timed out after 5 s")]]
    assert common_causes(rows) == {"conv": [("slice the padding off with [p:-p]", 2, 4), ("time out", 1, 4)]}


def test_a_submissions_folder_is_a_pytest_target_one_item_per_student_and_layer(pytester):
    build(pytester.path / "class", (CLASS[0], CLASS[1], CLASS[3]))  # ada, ben, dan
    result = pytester.runpytest_subprocess("--gradcheck-target", "class", "--gradcheck-examples", "3",
                                           "-p", "no:cacheprovider", "-rA")
    result.assert_outcomes(passed=3, failed=2)
    result.stdout.fnmatch_lines_random([
        "PASSED class/ada/cs231n/layers.py::affine*", "PASSED class/ada/cs231n/layers.py::relu*",
        "FAILED class/ben.py::affine*", "PASSED class/ben.py::relu*", "FAILED class/dan.py::import*"])
