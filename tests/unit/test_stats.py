"""The figures' definitions (stats.py); the designed mix of real jobs is tests/stats_mix.py, run in
tests/e2e/test_stats_cli.py."""

from __future__ import annotations

import pytest

from longform.stats import Latency, Rate, percentile, step_kind


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [([1.0], 0.95, 1.0), ([1.0, 2.0], 0.5, 1.5), ([1.0, 2.0, 3.0, 4.0, 10.0], 0.95, 8.8), ([0.0, 10.0], 0.25, 2.5)],
)
def test_percentiles_interpolate_linearly_as_percentile_cont(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == pytest.approx(expected)


def test_a_latency_of_nothing_is_none_and_of_values_their_p50_p95_max() -> None:
    assert Latency.of([]) == Latency(0, None, None, None)
    assert Latency.of([3.0, 1.0, 2.0]) == Latency(3, 2.0, 2.9, 3.0)


@pytest.mark.parametrize(
    ("step", "kind"),
    [
        ("segment-2-poll-0", "segment-poll"),
        ("segment-12-poll-1-4", "segment-poll"),
        ("segment-0-check-2", "segment-check"),
        ("stitch-start", "stitch-start"),
        ("stitch", "stitch"),
        (None, "unknown"),
    ],
)
def test_failures_are_grouped_by_step_without_their_numbers(step: str | None, kind: str) -> None:
    assert step_kind(step) == kind


def test_a_rate_of_nothing_is_none() -> None:
    assert Rate(0, 0).rate is None and Rate(1, 3).rate == pytest.approx(0.333333)
