"""A built class of submissions for ``gradcheck grade``: every kind of student a course
sees, with the verdict each of their layers must get.

Students are written from this repository's own student-style files
(``examples/layers_correct.py`` and the assignment folder of ``tests/fixtures``), each
function taken whole or with one edit: correct, buggy, hanging, a syntax error, a memory
hog, an in-place writer, assignment 1's classifiers. :func:`build` writes them into a
folder; :data:`EXPECTED` says what ``gradcheck grade`` must answer per (student, layer).
"""

from __future__ import annotations

import ast
import shutil
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "layers_correct.py"
ASSIGNMENT = ROOT / "tests" / "fixtures" / "assignment"


@dataclass(frozen=True)
class Submission:
    """One student: the layers taken from the correct example, edits to them, and what
    the grade of each layer must be (``layer: verdict``; ``"*"`` for every layer)."""

    name: str
    layers: tuple[str, ...]  # function names taken from examples/layers_correct.py
    edits: tuple[tuple[str, str], ...] = ()
    expected: dict[str, str] = field(default_factory=dict)
    folder: bool = False  # written as NAME/cs231n/layers.py, else NAME.py
    diagnosis: dict[str, str] = field(default_factory=dict)  # layer: words its diagnosis holds


AFFINE = ("affine_forward", "affine_backward")
RELU = ("relu_forward", "relu_backward")
CONV = ("conv_forward_naive", "conv_backward_naive")
MEAN_DB = ("db = np.sum(dout, axis=0)", "db = np.mean(dout, axis=0)")
PAD_SLICE = ("dx_pad[:, :, pad:pad + H, pad:pad + W]", "dx_pad[:, :, pad:-pad, pad:-pad]")
INPLACE_RELU = ("    dx = dout.copy()\n    dx[x <= 0] = 0\n", "    dx = dout\n    dx[x <= 0] = 0\n")

CLASS = (
    Submission("ada", AFFINE + RELU, expected={"affine": "passed", "relu": "passed"}, folder=True),
    Submission("ben", AFFINE + RELU, edits=(MEAN_DB,),
               expected={"affine": "failed", "relu": "passed"}, diagnosis={"affine": "batch size"}),
    Submission("cleo", CONV, edits=(PAD_SLICE,),
               expected={"conv": "failed"}, diagnosis={"conv": "[p:-p]"}),
    Submission("dan", AFFINE + RELU, edits=(("    out = np.maximum(0, x)\n",
                                             "    out = np.maximum(0, x)\n    x = x.copy(\n"),),
               expected={"import": "error"}, diagnosis={"import": "SyntaxError"}),
    Submission("eve", RELU, edits=(("    out = np.maximum(0, x)\n",
                                    "    hog = np.ones((6 * 1024, 1024, 128))  # 6 GiB\n"
                                    "    out = np.maximum(0, x) + 0 * hog[0, 0, 0]\n"),),
               expected={"relu": "error"}, diagnosis={"relu": "memory limit"}),
    Submission("finn", AFFINE + RELU, edits=(INPLACE_RELU,),
               expected={"affine": "passed", "relu": "warning"}, diagnosis={"relu": "dout"}),
    Submission("gus", (), expected={"svm_loss_naive": "passed", "svm_loss_vectorized": "passed",
                                    "svm_loss_naive vs svm_loss_vectorized": "passed",
                                    "softmax_loss_naive": "passed", "softmax_loss_vectorized": "passed",
                                    "softmax_loss_naive vs softmax_loss_vectorized": "passed"}, folder=True),
)
ENDLESS = ("    x = cache\n", "    x = cache\n    while True:\n        pass\n")
HANGING = Submission("hal", RELU, edits=(ENDLESS,),
                     expected={"relu": "error"}, diagnosis={"relu": "timed out"})
# assignment 1's classifiers, copied from the student-style fixture folder
_CLASSIFIERS = ("linear_svm.py", "softmax.py")


def _functions(names: tuple[str, ...]) -> str:
    """The source of ``names`` as they stand in the correct example, with its imports."""
    text = EXAMPLE.read_text()
    tree = ast.parse(text)
    defs = {node.name: ast.get_source_segment(text, node) for node in tree.body
            if isinstance(node, ast.FunctionDef)}
    return "import numpy as np\n\n\n" + "\n\n\n".join(defs[name] or "" for name in names) + "\n"


def source(submission: Submission) -> str:
    """The student's layers file."""
    text = _functions(submission.layers)
    for old, new in submission.edits:
        if text.count(old) != 1:
            raise ValueError(f"{submission.name}: {old!r} occurs {text.count(old)} times")
        text = text.replace(old, new)
    return text


def write(submission: Submission, folder: Path, name: str | None = None) -> Path:
    """Write one student into ``folder`` (as ``name``); returns the entry written."""
    name = name or submission.name
    if not submission.folder:
        path = folder / f"{name}.py"
        path.write_text(source(submission))
        return path
    package = folder / name / "cs231n"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    if submission.layers:
        (package / "layers.py").write_text(source(submission))
    else:
        (package / "classifiers").mkdir()
        (package / "classifiers" / "__init__.py").write_text("")
        for file in _CLASSIFIERS:
            shutil.copy(ASSIGNMENT / "cs231n" / "classifiers" / file, package / "classifiers" / file)
    return folder / name


def build(folder: Path, students: tuple[Submission, ...] = CLASS) -> dict[tuple[str, str], str]:
    """Write ``students`` into ``folder``; returns the verdict each (student, layer) must get."""
    folder.mkdir(parents=True, exist_ok=True)
    expected = {}
    for submission in students:
        write(submission, folder)
        expected.update({(submission.name, layer): v for layer, v in submission.expected.items()})
    return expected


# A realistic class for throughput: every student a whole layers.py, as in assignment 2.
_VARIANTS = ((), (MEAN_DB,), (PAD_SLICE,), (INPLACE_RELU,))


def whole_file_class(folder: Path, size: int) -> None:
    """``size`` students, each a whole layers.py (15 layers): correct, or one of three
    bugs and hazards in turn (a mean for db, [p:-p] padding, an in-place relu)."""
    text = EXAMPLE.read_text()
    names = tuple(node.name for node in ast.parse(text).body if isinstance(node, ast.FunctionDef))
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(size):
        student = Submission(f"student{index:03d}", names, edits=_VARIANTS[index % len(_VARIANTS)])
        write(student, folder)


if __name__ == "__main__":  # python -m benchmarks.grading.classroom DIR [--hanging]
    import sys

    chosen = CLASS + ((HANGING,) if "--hanging" in sys.argv else ())
    for (student, layer), verdict in build(Path(sys.argv[1]), chosen).items():
        print(f"{student:6} {layer:46} {verdict}")
