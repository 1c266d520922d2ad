"""Verdict quality, kept in CI: every catalogued bug caught and named, every correct
variant passing, no false alarm in the soak, a 1e-6 single-entry error caught."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import settings

from benchmarks import sensitivity, soak
from benchmarks.mutants import catalogue, run

MUTANTS, VARIANTS, WARNED = catalogue()


def test_the_catalogue_is_broad():
    assert len(MUTANTS) >= 60
    families = {m.spec for m in MUTANTS}
    for family in ("affine", "relu", "softmax_loss", "svm_loss", "conv", "max_pool", "avg_pool",
                   "batchnorm", "layernorm", "spatial_groupnorm", "dropout", "rnn", "lstm_step",
                   "word_embedding", "attention"):
        assert family in families, family
    assert any("forward" in m.expect for m in MUTANTS)
    assert any(m.geometry for m in MUTANTS)
    assert len(VARIANTS) >= 15


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_mutant_is_caught_and_named(mutant):
    result = run(mutant)
    assert not result.outcome.passed, f"{mutant.name}: not caught"
    assert mutant.named_right(result.failing), (
        f"{mutant.name}: named {sorted(result.failing)}, expected {mutant.expectation()}\n{result.text}")
    if mutant.diagnosis:
        assert mutant.diagnosis in result.text, result.text
    if mutant.geometry:
        assert mutant.geometry in (result.outcome.failing_case or ""), result.outcome.failing_case


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.name for v in VARIANTS])
def test_correct_variant_passes(variant):
    result = run(variant)
    assert result.outcome.passed, f"{variant.name}: false alarm {sorted(result.failing)}\n{result.text}"
    assert not result.warned, f"{variant.name}: unexpected warnings {sorted(result.warned)}\n{result.text}"


@pytest.mark.parametrize("rewrite", WARNED, ids=[w.name for w in WARNED])
def test_correct_rewrite_with_a_hazard_passes_with_its_warning(rewrite):
    result = run(rewrite)
    assert result.outcome.passed, f"{rewrite.name}: false alarm {sorted(result.failing)}\n{result.text}"
    assert result.warned == rewrite.expect, f"{rewrite.name}: warnings {sorted(result.warned)}\n{result.text}"
    if rewrite.diagnosis:
        assert rewrite.diagnosis in result.text, result.text
    assert not result.outcome.passes(strict=True)


def _soak_cases() -> int:
    # The short form in CI; `pytest --hypothesis-profile=thorough` runs the long form.
    return 10_000 if settings().max_examples >= 500 else 400


def test_soak_without_false_alarms():
    summary = soak.run(_soak_cases())
    assert summary.cases >= _soak_cases()
    assert not summary.failures, "\n\n".join(f"{n} {d} {c}\n{r}" for n, d, c, r in summary.failures)
    assert summary.kink_entries > 0  # kinks occurred and were reported as kinks


@pytest.mark.parametrize("index", range(4))
def test_a_single_entry_off_by_1e_minus_6_is_caught(index):
    label, forward, backward, args, name = sensitivity.layers(np.random.default_rng(0))[index]
    position = sensitivity._differentiable(forward, args).index(name)
    import gradcheck

    assert gradcheck.check_layer(forward, backward, *args).passed
    report = gradcheck.check_layer(forward, sensitivity.corrupted(backward, position, 1e-6), *args)
    assert report.failed_gradients == [name], f"{label}\n{report}"
