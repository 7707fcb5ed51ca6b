"""The pooled median and MAD read off officers' quantile sketches."""

from __future__ import annotations

import random
import statistics

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.domain.robust import GRID, Sketch, median_and_mad


def sketch(values: list[float]) -> Sketch:
    """What percentile_cont at 0, 1/GRID, …, 1 gives for these values."""
    v = sorted(values)
    k = len(v)
    out = []
    for i in range(GRID + 1):
        lo, rest = divmod(i * (k - 1), GRID)
        hi = min(lo + 1, k - 1)
        out.append(v[lo] + rest / GRID * (v[hi] - v[lo]))
    return Sketch(k, tuple(out))


def mad(values: list[float]) -> float:
    m = statistics.median(values)
    return statistics.median(abs(x - m) for x in values)


def test_one_sketch_gives_its_own_median_and_mad() -> None:
    values = [float(x) for x in range(1, 102)]  # 101 values: the grid hits each one
    assert median_and_mad([sketch(values)]) == pytest.approx((51.0, 25.0), abs=1e-6)


def test_pooled_sketches_agree_with_the_pooled_values() -> None:
    rng = random.Random(7)
    groups = [[rng.lognormvariate(8, 0.6) for _ in range(n)] for n in (400, 250, 900, 60)]
    pooled = [x for g in groups for x in g]
    m, d = median_and_mad([sketch(g) for g in groups])
    assert m == pytest.approx(statistics.median(pooled), rel=0.01)
    assert d == pytest.approx(mad(pooled), rel=0.02)


def test_a_slow_group_moves_the_pool_but_not_the_others() -> None:
    rng = random.Random(3)
    usual = [[rng.gauss(3600, 600) for _ in range(200)] for _ in range(3)]
    slow = [rng.gauss(5 * 3600, 600) for _ in range(200)]
    peers_median, peers_mad = median_and_mad([sketch(g) for g in usual])
    all_median, all_mad = median_and_mad([sketch(g) for g in [*usual, slow]])
    assert peers_median == pytest.approx(3600, rel=0.05)
    assert peers_mad == pytest.approx(0.6745 * 600, rel=0.15)
    # with the slow officer in the pool, the yardstick moves toward them and stretches:
    # why an officer is never their own peer
    assert all_median > peers_median * 1.05
    assert all_mad > peers_mad * 1.3


def test_atoms_are_handled_many_values_equal() -> None:
    zeros = sketch([0.0] * 30)
    some = sketch([0.0] * 10 + [60.0] * 10)
    m, d = median_and_mad([zeros, some])
    assert (m, d) == (0.0, 0.0)


@given(
    st.lists(
        st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=40),
        min_size=1,
        max_size=5,
    )
)
def test_the_pooled_median_lies_between_the_groups_medians(groups: list[list[float]]) -> None:
    sketches = [sketch(g) for g in groups]
    m, d = median_and_mad(sketches)
    lo = min(s.median for s in sketches)
    hi = max(s.median for s in sketches)
    assert lo - 1e-6 * max(1.0, hi) <= m <= hi + 1e-6 * max(1.0, hi)
    assert (
        0
        <= d
        <= max(s.quantiles[-1] for s in sketches)
        - min(s.quantiles[0] for s in sketches)
        + 1e-6 * max(1.0, hi)
    )


def test_a_sketch_must_be_whole_and_ordered() -> None:
    with pytest.raises(ValueError):
        Sketch(3, (1.0, 2.0))
    with pytest.raises(ValueError):
        Sketch(3, tuple([2.0] + [1.0] * GRID))
