"""The one way gradcheck runs a hypothesis search over generated cases.

``search_cases`` draws cases from a strategy, seeded and without hypothesis' database,
deadlines or health checks (a student's slow layer is no health problem), and hands each to
a body. A body that has found what it looks for raises :class:`CaseFound`; hypothesis then
shrinks towards the smallest case that still raises it (the body records each one it sees).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

__all__ = ["CaseFound", "search_cases"]


class CaseFound(Exception):
    """Raised by a search body: this case is the one (to be shrunk)."""


def search_cases(
    strategy: st.SearchStrategy[Any],
    body: Callable[[Any], None],
    *,
    examples: int,
    seed: int,
    shrink: bool = True,
    explicit: bool = True,
    settled: Callable[[], bool] = lambda: False,
) -> None:
    """Run ``body`` on up to ``examples`` cases of ``strategy``.

    Returns once the cases are exhausted or a found case has been shrunk. An exception other
    than a found case (hypothesis' ``Flaky`` when nondeterministic code fails once and not on
    replay, ``Unsatisfiable``, an error of the body) propagates unless ``settled()`` says the
    caller already has what it needs.
    """
    phases = ([Phase.explicit] if explicit else []) + [Phase.generate] + ([Phase.shrink] if shrink else [])

    @hypothesis_seed(seed)
    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              phases=phases, suppress_health_check=list(HealthCheck), print_blob=False,
              report_multiple_bugs=False)
    @given(strategy)
    def run(case: Any) -> None:
        body(case)

    try:
        run()
    except CaseFound:
        pass
    except Exception:
        if not settled():
            raise
