"""Hypothesis profiles and shared fixtures.

Profiles: ``dev`` (default locally), ``ci`` (default when the CI environment variable is
set: derandomized, no deadline, no example database) and ``thorough`` (long soaks).
Select one explicitly with ``pytest --hypothesis-profile=thorough``.

Marker ``torch``: the test needs torch, and is skipped before hypothesis runs where torch
is not installed (a skip raised inside a test with ``@example`` reads as a failing example).
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

pytest_plugins = ["pytester"]

_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
settings.register_profile("dev", max_examples=15, **_COMMON)
settings.register_profile("ci", max_examples=15, derandomize=True, database=None,
                          print_blob=True, **_COMMON)
settings.register_profile("thorough", max_examples=500, **_COMMON)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture
def rng() -> np.random.Generator:
    """A fresh, seeded generator for each test."""
    return np.random.default_rng(12345)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "torch: needs torch (skipped before the test runs without it)")


def _has_torch() -> bool:
    try:
        return importlib.util.find_spec("torch") is not None
    except ImportError:
        return False


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("torch") is not None and not _has_torch():
        pytest.skip("could not import 'torch'")
