"""A student's assignment folder or ``cs231n/`` package: the files gradcheck knows in it,
and what to say when they need something that is not installed.

Files are found by the course's names (``layers.py``, ``rnn_layers.py``,
``layer_utils.py``, ``fast_layers.py``, the files of ``classifiers/``); each is imported
as the package member it is, so relative imports and ``from cs231n.layers import *``
work. A third-party package the student's code imports and that is missing here
(``past.builtins`` from ``future``, ``matplotlib``) gets one line naming it and how to
install it; a compiled extension of the course that was never built (``im2col_cython``)
is named for the layers that need it.
"""

from __future__ import annotations

import os
import re

__all__ = ["KNOWN_FILES", "find_files", "missing_dependency"]

KNOWN_FILES = ("layers.py", "rnn_layers.py", "layer_utils.py", "fast_layers.py",
               "transformer_layers.py", "linear_svm.py", "softmax.py", "neural_net.py",
               "fc_net.py", "cnn.py", "rnn.py")
_SKIP_DIRS = {"__pycache__", "build", "dist", "datasets", "site-packages", "node_modules",
              ".ipynb_checkpoints", "venv", ".venv", "env"}
# Import names whose pip package is named otherwise.
_PIP_NAMES = {"past": "future", "builtins": "future", "future": "future", "cv2": "opencv-python",
              "PIL": "Pillow", "sklearn": "scikit-learn", "skimage": "scikit-image",
              "yaml": "PyYAML", "imageio": "imageio"}
# Packages whose install takes more than pip install NAME, with how.
_INSTALL = {"cupy": "pip install cupy-cuda12x (or cupy-cuda11x, for the CUDA installed: CuPy needs an NVIDIA "
                    "GPU with CUDA; see https://docs.cupy.dev/en/stable/install.html)",
            "array_api_strict": "pip install 'gradcheck[arrays]'",
            "array_api_compat": "pip install 'gradcheck[arrays]'"}
_EXTENSIONS = ("im2col_cython",)
_BUILD = ("build it: cd cs231n && python setup.py build_ext --inplace; it needs Cython, and Cython 3 "
          "needs '# cython: language_level=2' as the first line of im2col_cython.pyx, as the "
          "course's Cython read it")


def _known(path: str) -> bool:
    name = os.path.basename(path)
    parent = os.path.basename(os.path.dirname(path))
    return name in KNOWN_FILES or (parent == "classifiers" and name != "__init__.py")


def find_files(directory: str) -> list[str]:
    """The known files under ``directory`` (an assignment folder, a ``cs231n/`` package,
    or a folder of several assignments), sorted."""
    found = []
    for root, dirs, files in os.walk(directory):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS and not d.startswith("."))
        found += [os.path.join(root, f) for f in files if f.endswith(".py")
                  and _known(os.path.join(root, f))]
    return sorted(found)


def missing_dependency(text: str) -> str | None:
    """One line for an error that only says something is not installed, else ``None``.

    ``text`` is an error message or traceback from the student's code.
    """
    for extension in _EXTENSIONS:
        # fast_layers.py imports col2im_cython, col2im_6d_cython, ... from it inside a try
        if re.search(rf"No module named '[\w.]*{extension}'|name '\w*_cython' is not defined", text):
            return (f"needs the course's compiled extension {extension}, which is not built "
                    f"({_BUILD})")
    found = re.search(r"No module named '([\w.]+)'", text)
    if found is None:
        return None
    module = found.group(1)
    top = module.split(".")[0]
    if top in ("cs231n",) or re.search(rf"from \.+{re.escape(top)}|import \.+{re.escape(top)}", text):
        return None  # the student's own package: a missing file, not a missing install
    return (f"your code imports {module}, which is not installed here: "
            f"{_INSTALL.get(top) or 'pip install ' + _PIP_NAMES.get(top, top)}")
