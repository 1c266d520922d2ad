"""pytest plugin: ``--gradcheck-*`` options, the ``gradcheck`` fixture, target collection.

``pytest --gradcheck-target layers.py`` collects the file as a :class:`GradcheckTarget`
(never imported into the pytest process) with one item per layer found in it; each item
runs the same isolated check as ``gradcheck check layers.py``. A target may be an
assignment folder, or a folder of submissions (one student per entry, as ``gradcheck
grade`` reads it): every student's every layer is then an item, which pytest-xdist spreads
over cores (``-n``) and hosts (``--tx``). The work lives in
plain modules (:mod:`gradcheck.candidate`, :mod:`gradcheck.isolation`); this module only
declares options, the fixture and the items.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

from gradcheck.options import GEOMETRIES, METHODS, MODES, CheckOptions
from gradcheck.testing import Checker

_TIMEOUT = 120.0


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gradcheck", "gradient checking of hand-written layers")
    group.addoption("--gradcheck-target", action="append", default=[], metavar="PATH",
                    help="check the CS231n-named layers in PATH: a file, an assignment folder, or a "
                    "folder of submissions (one student per entry; repeatable)")
    group.addoption("--gradcheck-examples", type=int, default=10, metavar="N",
                    help="generated cases per layer (default 10)")
    group.addoption("--gradcheck-method", choices=METHODS, default="auto")
    group.addoption("--gradcheck-mode", choices=MODES, default="directional")
    group.addoption("--gradcheck-geometry", choices=GEOMETRIES, default="auto")
    group.addoption("--gradcheck-seed", type=int, default=0, metavar="S",
                    help="seed for generated cases and upstream gradients (default 0)")
    group.addoption("--gradcheck-timeout", type=float, default=_TIMEOUT, metavar="SECONDS",
                    help=f"time limit per layer (default {_TIMEOUT:g})")
    group.addoption("--gradcheck-memory", type=int, default=2048, metavar="MB",
                    help="address-space limit of each target's worker process in MiB (default 2048)")
    group.addoption("--gradcheck-strict", action="store_true", default=False,
                    help="fail on warnings too (writes into dout or inputs, a wrong test-mode "
                    "backward, another course year's convention); by default they are warnings")


def _options(config: pytest.Config) -> CheckOptions:
    return CheckOptions.within(
        float(config.getoption("gradcheck_timeout")),
        examples=config.getoption("gradcheck_examples"),
        seed=config.getoption("gradcheck_seed"),
        method=config.getoption("gradcheck_method"),
        mode=config.getoption("gradcheck_mode"),
        geometry=config.getoption("gradcheck_geometry"),
    )


def pytest_report_header(config: pytest.Config) -> list[str]:
    seed = config.getoption("gradcheck_seed")
    targets = config.getoption("gradcheck_target")
    line = f"gradcheck: seed {seed} (reproduce with --gradcheck-seed={seed})"
    if targets:
        line += f"; targets: {', '.join(targets)}"
    return [line]


def _checker(config: pytest.Config) -> Checker:
    return Checker(_options(config), strict=bool(config.getoption("gradcheck_strict")))


@pytest.fixture
def gradchecker(request: pytest.FixtureRequest) -> Checker:
    """Check layers from your own tests: ``.layer``, ``.loss``, ``.like(name, fwd, bwd)``.

    Named so that it does not hide the ``gradcheck`` module in a test that imports it.
    """
    return _checker(request.config)


@pytest.fixture
def gradcheck(request: pytest.FixtureRequest) -> Checker:
    """The same as :func:`gradchecker` (the first name of the fixture, kept as an alias)."""
    return _checker(request.config)


def _sandbox(config: pytest.Config) -> Any:
    from gradcheck.isolation import Sandbox

    return Sandbox(memory_mb=int(config.getoption("gradcheck_memory")), fresh_cwd=True)


class _LayerFailed(Exception):
    pass


class GradcheckItem(pytest.Item):
    """One layer of a target file, checked in a subprocess with a time limit."""

    def __init__(self, *, target: str, match: Any, error: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target = target
        self.match = match
        self.error = error

    def runtest(self) -> None:
        from gradcheck.isolation import check_isolated
        from gradcheck.testing import LayerMismatch, warn_or_raise

        if self.error:
            raise _LayerFailed(self.error)
        options = _options(self.config)
        outcome = check_isolated(self.target, self.match, options,
                                 float(self.config.getoption("gradcheck_timeout")),
                                 timeout_option="--gradcheck-timeout", sandbox=_sandbox(self.config))
        if outcome.output.strip():  # shown as pytest shows a test's captured output
            self.add_report_section("call", "output", outcome.output)
        try:
            warn_or_raise(outcome, strict=bool(self.config.getoption("gradcheck_strict")),
                          path=self.target)
        except LayerMismatch as exc:
            raise _LayerFailed(str(exc)) from None

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, _LayerFailed):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"gradcheck {self.name}"


class GradcheckTarget(pytest.File):
    """A target file: one item per layer matched to a spec."""

    def collect(self) -> list[pytest.Item]:
        from gradcheck.isolation import discover_isolated

        target = str(self.path)
        discovery = discover_isolated(target, float(self.config.getoption("gradcheck_timeout")),
                                      _sandbox(self.config))
        if isinstance(discovery, str):
            return [GradcheckItem.from_parent(self, name="import", target=target, match=None,
                                              error=discovery)]
        return [
            GradcheckItem.from_parent(self, name=match.spec, target=target, match=match)
            for match in discovery.matches
        ]


_TARGETS = pytest.StashKey[list[Path]]()


def _targets(config: pytest.Config) -> list[Path]:
    """Every target file: a folder stands for its files, or for every student's (found once)."""
    from gradcheck.grade import target_files

    if _TARGETS not in config.stash:
        config.stash[_TARGETS] = [Path(file).resolve() for target in config.getoption("gradcheck_target")
                                  for file in target_files(str(Path(target).resolve()))]
    return config.stash[_TARGETS]


@pytest.hookimpl(tryfirst=True)
def pytest_collection(session: pytest.Session) -> None:
    for target in session.config.getoption("gradcheck_target"):
        if not Path(target).exists():
            raise pytest.UsageError(f"--gradcheck-target {target}: no such file or folder")


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, Any]:
    """The session collects each target beside the test paths, so that its items are
    collected as any test is (counted, selected with -k, listed by --collect-only)."""
    report = yield
    if isinstance(collector, pytest.Session) and report.passed:
        report.result.extend(GradcheckTarget.from_parent(collector, path=path)
                             for path in dict.fromkeys(_targets(collector.config)))
    return report


@pytest.hookimpl(wrapper=True)
def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> Generator[None, Any, Any]:
    """A target among the test files (``test_layers.py``) is no test module: its code runs in
    workers only, and the session collects it as a target."""
    collectors = yield
    if file_path.resolve() not in _targets(parent.config):
        return collectors
    return [c for c in collectors or [] if not isinstance(c, pytest.Module)]
