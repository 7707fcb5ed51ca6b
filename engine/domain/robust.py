"""Robust statistics of a group pooled from its members' quantile sketches.

The database reduces each officer's visits at a step to a sketch: how many there were and
their quantiles at 0, 1/100, …, 1 (linear interpolation between order statistics, as
PostgreSQL's `percentile_cont` computes them). Comparing an officer with their peers needs
the median and the median absolute deviation (MAD) of the peers' visits pooled together;
those are read off the pooled distribution, whose CDF is the count-weighted mean of the
peers' CDFs, each the piecewise-linear curve through its quantiles.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass

GRID = 100  # a sketch holds the quantiles at i / GRID for i in 0..GRID
_STEPS = 200  # bisection steps: far below any meaningful difference in seconds


@dataclass(frozen=True)
class Sketch:
    """`count` values summarised by their quantiles at 0, 1/GRID, …, 1."""

    count: int
    quantiles: tuple[float, ...]

    def __post_init__(self) -> None:
        q = self.quantiles
        if len(q) != GRID + 1 or any(b < a for a, b in zip(q, q[1:], strict=False)):
            raise ValueError(f"a sketch holds {GRID + 1} non-decreasing quantiles")
        if self.count < 1:
            raise ValueError("a sketch summarises at least one value")

    @property
    def median(self) -> float:
        return self.quantiles[GRID // 2]

    def at_most(self, x: float) -> float:
        """The share of values <= x."""
        q = self.quantiles
        if x < q[0]:
            return 0.0
        if x >= q[-1]:
            return 1.0
        i = bisect_right(q, x) - 1  # q[i] <= x < q[i + 1]
        return (i + (x - q[i]) / (q[i + 1] - q[i])) / GRID

    def below(self, x: float) -> float:
        """The share of values < x."""
        q = self.quantiles
        if x <= q[0]:
            return 0.0
        if x > q[-1]:
            return 1.0
        i = bisect_left(q, x) - 1  # q[i] < x <= q[i + 1]
        return (i + (x - q[i]) / (q[i + 1] - q[i])) / GRID


def _pooled(
    sketches: Sequence[Sketch], share: Callable[[Sketch, float], float]
) -> Callable[[float], float]:
    total = sum(s.count for s in sketches)
    return lambda x: sum(s.count * share(s, x) for s in sketches) / total


def _smallest(reaches: Callable[[float], bool], lo: float, hi: float) -> float:
    """The smallest x in [lo, hi] with reaches(x), for a monotone predicate true at hi."""
    for _ in range(_STEPS):
        mid = (lo + hi) / 2
        if mid in (lo, hi):
            break
        if reaches(mid):
            hi = mid
        else:
            lo = mid
    return hi if not reaches(lo) else lo


def median_and_mad(sketches: Sequence[Sketch]) -> tuple[float, float]:
    """The median and the MAD of all the sketches' values pooled together."""
    if not sketches:
        raise ValueError("no values")
    lowest = min(s.quantiles[0] for s in sketches)
    highest = max(s.quantiles[-1] for s in sketches)
    at_most = _pooled(sketches, Sketch.at_most)
    below = _pooled(sketches, Sketch.below)
    median = _smallest(lambda x: at_most(x) >= 0.5, lowest, highest)

    def within(d: float) -> bool:  # at least half the values lie in [median - d, median + d]
        return at_most(median + d) - below(median - d) >= 0.5

    mad = _smallest(within, 0.0, max(highest - median, median - lowest))
    return median, mad
