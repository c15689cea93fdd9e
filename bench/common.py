"""What every benchmark returns, and how the harness times things.

Benchmarks run beside a reference in the same process run and report a ratio, because these
machines are shared and noisy: an absolute time means little, a ratio measured side by side does.
Where both sides are slow to measure (whole-file transfers), `interleaved` measures them in rounds,
each side once per round with the order rotated, and a row's ratio is the median of the rounds'
ratios, shown with their range: a noisy stretch lands on both sides of a round, not on one side.
Where a row compares two sides that are each quick (a 1 GiB GET takes ~0.4 s) and noisy,
`back_to_back` measures them as pairs, one straight after the other, which goes first alternating.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    """One measured comparison: ours against a reference, as a ratio (higher is better for us)."""

    name: str
    ours: float
    reference: float | None
    unit: str
    reference_name: str = ""
    goal: float | None = None
    note: str = ""
    # Per-round ratios of an interleaved pair (see `paired`): the ratio is their median.
    ratios: tuple[float, ...] = ()

    @property
    def ratio(self) -> float | None:
        if self.ratios:
            return statistics.median(self.ratios)
        if self.reference is None or self.reference == 0:
            return None
        return self.ours / self.reference

    def line(self) -> str:
        ratio = self.ratio
        parts = [f"{self.name:<44} ours {self.ours:>12,.1f} {self.unit}"]
        if self.reference is not None:
            parts.append(f"{self.reference_name or 'ref'} {self.reference:>12,.1f}")
            parts.append(f"ratio {ratio:.2f}x" if ratio is not None else "ratio n/a")
        if self.ratios:
            parts.append(f"(rounds {len(self.ratios)}: {min(self.ratios):.2f}-{max(self.ratios):.2f})")
        if self.goal is not None:
            verdict = "ok" if (ratio if ratio is not None else self.ours) >= self.goal else "BELOW GOAL"
            parts.append(f"goal >= {self.goal:g} {verdict}")
        if self.note:
            parts.append(self.note)
        return "  ".join(parts)


def rate(fn: Callable[[], object], *, seconds: float = 0.5, repeats: int = 5) -> float:
    """Calls per second of ``fn``: the median over ``repeats`` windows of about ``seconds`` each."""
    # Calibrate a batch so one window is not dominated by timer calls.
    batch = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(batch):
            fn()
        dt = time.perf_counter() - t0
        if dt >= seconds / 10 or batch >= 1 << 24:
            break
        batch *= 2
    per_window = max(1, int(batch * (seconds / max(dt, 1e-9))))
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(per_window):
            fn()
        rates.append(per_window / (time.perf_counter() - t0))
    return statistics.median(rates)


def interleaved(sides: Sequence[Callable[[], float]], rounds: int) -> list[list[float]]:
    """Measures every side once per round, round ``r`` starting at side ``r % len(sides)``;
    returns each side's results in round order (``out[i][r]``)."""
    out: list[list[float]] = [[] for _ in sides]
    for r in range(rounds):
        for j in range(len(sides)):
            i = (r + j) % len(sides)
            out[i].append(sides[i]())
    return out


def back_to_back(
    pairs: Sequence[tuple[Callable[[], float], Callable[[], float]]], rounds: int
) -> list[tuple[list[float], list[float]]]:
    """Measures each pair's two sides one straight after the other, once per round: the first side
    first in even rounds, the second first in odd ones; the pairs' order rotates by round. Returns
    each pair's two sides' results in round order (``out[p][side][r]``)."""
    out: list[tuple[list[float], list[float]]] = [([], []) for _ in pairs]
    for r in range(rounds):
        for j in range(len(pairs)):
            p = (r + j) % len(pairs)
            order = (0, 1) if r % 2 == 0 else (1, 0)
            for side in order:
                out[p][side].append(pairs[p][side]())
    return out


def paired(
    name: str,
    ours: Sequence[float],
    reference: Sequence[float],
    unit: str,
    reference_name: str,
    *,
    scale: float = 1.0,
    goal: float | None = None,
    note: str = "",
) -> Row:
    """A row of two interleaved sides: medians shown (divided by ``scale``), the ratio the median
    of the per-round ratios."""
    return Row(
        name,
        statistics.median(ours) / scale,
        statistics.median(reference) / scale,
        unit,
        reference_name,
        goal=goal,
        note=note,
        ratios=tuple(a / b for a, b in zip(ours, reference, strict=True)),
    )
