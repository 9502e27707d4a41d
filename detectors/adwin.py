"""ADWIN (Bifet & Gavaldà 2007), the arithmetic of River's implementation, with plain state.

:class:`~detectors.numeric_drift.NumericDrift` used River's Rust ``AdaptiveWindowing``
from the private module ``river._river_rust``, which River may move or drop in any
release, and whose state is an opaque byte string. River's public
``river.drift.ADWIN`` wraps the same object but empties the window after every
detection, which changes when later cuts happen; NumericDrift keeps the window
shrunk by the cut, as the paper does. So this module is ADWIN2 written out: the same
operations in the same order as River 0.26's ``rust_src/adwin.rs`` (itself a port of
its Cython ``adwin_c.pyx``), so that every cut and every float of the window's
statistics is bit for bit what River computes (``tests/detectors/test_adwin.py``
pins them), and a state of lists and numbers.

The window is an exponential histogram: level ``i`` holds up to ``max_buckets``
summaries (total, variance) of ``2**i`` values each, oldest first; a level that
reaches ``max_buckets + 1`` merges its two oldest into one summary of the next
level. Every ``clock`` values (once the window is longer than ``grace_period``)
every split of the window into an older and a newer part, at bucket boundaries,
with both parts at least ``min_window_length`` long, is tested; when the means
differ by more than the Bernstein bound at ``delta``, the oldest bucket is dropped
and the test repeats.
"""

from __future__ import annotations

import base64
import math
import struct
from collections.abc import Iterable
from typing import Any

from detectors.errors import SnapshotError

__all__ = ["AdaptiveWindow"]

# River counts values in an i32 that wraps (Rust release builds) after 2**31 values;
# the count decides which values are checked, so it wraps here too.
_I32_MAX = 2**31 - 1
_I32_MIN = -(2**31)


class AdaptiveWindow:
    """ADWIN's adaptive window over values in a bounded range.

    Examples
    --------
    >>> import random
    >>> rng = random.Random(12345)
    >>> adwin = AdaptiveWindow(delta=0.002)
    >>> stream = rng.choices([0, 1], k=1000) + rng.choices(range(4, 8), k=1000)
    >>> [i for i, x in enumerate(stream) if adwin.update(x)]  # as River's ADWIN example
    [1023]
    >>> adwin.width, round(adwin.total / adwin.width, 2)  # the 0/1 part was dropped
    (1008.0, 5.44)
    """

    __slots__ = (
        "_grace",
        "_min_len",
        "_tick",
        "_totals",
        "_variances",
        "clock",
        "delta",
        "grace_period",
        "max_buckets",
        "min_window_length",
        "total",
        "variance",
        "width",
    )

    def __init__(
        self,
        delta: float = 0.002,
        clock: int = 32,
        max_buckets: int = 5,
        min_window_length: int = 5,
        grace_period: int = 10,
    ) -> None:
        self.delta = delta
        self.clock = clock
        self.max_buckets = max_buckets
        self.min_window_length = min_window_length
        self.grace_period = grace_period
        # River compares these with float widths; the same floats here.
        self._min_len = float(min_window_length)
        self._grace = float(grace_period)
        self.width = 0.0
        self.total = 0.0
        self.variance = 0.0  # sum of squared deviations (not divided by the width)
        self._tick = 0
        # Level i: totals and variances of its buckets (2**i values each), oldest first.
        self._totals: list[list[float]] = [[]]
        self._variances: list[list[float]] = [[]]

    # -- updates ---------------------------------------------------------------
    def update(self, value: float) -> bool:
        """Add one value; return whether the window was cut (a change was found)."""
        self._insert(value)
        tick = self._tick = self._tick + 1 if self._tick != _I32_MAX else _I32_MIN
        # Python's % and Rust's differ in sign for negative ticks, never in being 0.
        return tick % self.clock == 0 and self.width > self._grace and self._cut()

    def update_many(self, values: Iterable[float]) -> bool:
        """Add values in order; return whether any of them cut the window.

        The same as :meth:`update` on each, with the window's sums kept in locals
        (this runs for every numeric value the monitor sees).
        """
        cut = False
        clock = self.clock
        grace = self._grace
        full = self.max_buckets + 1
        tick, width, total, variance = self._tick, self.width, self.total, self.variance
        totals0, variances0 = self._totals[0], self._variances[0]
        for value in values:
            width += 1.0
            if width > 1.0:
                d = value - total / (width - 1.0)
                variance += (width - 1.0) * d * d / width
            else:
                variance += 0.0
            total += value
            totals0.append(value)
            variances0.append(0.0)
            if len(totals0) == full:
                # _merge's first step inlined (every other value): level 0 holds single
                # values, so n = 1, mu = t and v0 + v1 = 0.0, and the result is the same.
                t0 = totals0[0]
                t1 = totals0[1]
                del totals0[:2], variances0[:2]
                if len(self._totals) == 1:
                    self._totals.append([])
                    self._variances.append([])
                self._totals[1].append(t0 + t1)
                self._variances[1].append(0.5 * (t0 - t1) * (t0 - t1))
                if len(self._totals[1]) == full:
                    self._merge(1)
            tick = tick + 1 if tick != _I32_MAX else _I32_MIN
            # Python's % and Rust's differ in sign for negative ticks, never in being 0.
            if tick % clock == 0 and width > grace:
                self.width, self.total, self.variance = width, total, variance
                if self._cut():
                    cut = True
                    width, total, variance = self.width, self.total, self.variance
                    totals0, variances0 = self._totals[0], self._variances[0]
        self._tick, self.width, self.total, self.variance = tick, width, total, variance
        return cut

    def _insert(self, value: float) -> None:
        # Streaming variance (Babcock et al. 2003), operations in River's order.
        width = self.width + 1.0
        self.width = width
        if width > 1.0:
            d = value - self.total / (width - 1.0)
            self.variance += (width - 1.0) * d * d / width
        else:
            self.variance += 0.0
        self.total += value
        self._totals[0].append(value)
        self._variances[0].append(0.0)
        if len(self._totals[0]) == self.max_buckets + 1:
            self._merge()

    def _merge(self, i: int = 0) -> None:
        """Merge the two oldest buckets of each full level, from ``i``, into the next."""
        totals = self._totals
        variances = self._variances
        full = self.max_buckets + 1
        while len(totals[i]) == full:
            t, v = totals[i], variances[i]
            n = float(1 << i)
            mu1 = t[0] / n
            mu2 = t[1] / n
            merged_total = t[0] + t[1]
            merged_var = v[0] + v[1] + n * 0.5 * (mu1 - mu2) * (mu1 - mu2)
            del t[:2], v[:2]
            if i + 1 == len(totals):
                totals.append([])
                variances.append([])
            totals[i + 1].append(merged_total)
            variances[i + 1].append(merged_var)
            i += 1

    def _cut(self) -> bool:
        """Test every split; drop the oldest bucket while one is significant."""
        cut = False
        min_len = self._min_len
        totals = self._totals
        while True:
            width = self.width
            # Bernstein bound pieces that do not depend on the split (River recomputes
            # them per split; the values are the same).
            log_term = math.log(2.0 * math.log(width) / self.delta)
            var_per_value = self.variance / width
            n0 = 0.0
            n1 = width
            u0 = 0.0
            u1 = self.total
            found = False
            for i in range(len(totals) - 1, -1, -1):
                size = float(1 << i)
                level = totals[i]
                last = len(level) - 1
                for k, t in enumerate(level):
                    n0 += size
                    n1 -= size
                    u0 += t
                    u1 -= t
                    if i == 0 and k == last:
                        break  # the newest bucket: no split after it
                    if n1 >= min_len and n0 >= min_len:
                        m = 1.0 / (n0 - min_len + 1.0) + 1.0 / (n1 - min_len + 1.0)
                        eps = (
                            math.sqrt(2.0 * m * var_per_value * log_term) + 2.0 / 3.0 * log_term * m
                        )
                        if abs(u0 / n0 - u1 / n1) > eps:
                            found = True
                            break
                if found:
                    break
            if not found:
                return cut
            cut = True
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        top = len(self._totals) - 1
        n = float(1 << top)
        u = self._totals[top].pop(0)
        v = self._variances[top].pop(0)
        mu = u / n
        self.width -= n
        self.total -= u
        mu_window = self.total / self.width
        self.variance -= v + n * self.width * (mu - mu_window) * (mu - mu_window) / (n + self.width)
        if not self._totals[top]:
            self._totals.pop()
            self._variances.pop()

    # -- state -----------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Plain, picklable state: :meth:`load` continues bit for bit."""
        return {
            "width": self.width,
            "total": self.total,
            "variance": self.variance,
            "tick": self._tick,
            "totals": [list(t) for t in self._totals],
            "variances": [list(v) for v in self._variances],
        }

    def load(self, state: dict[str, Any] | str) -> None:
        """Inverse of :meth:`state`; also reads the base64 state of River's Rust
        ``AdaptiveWindowing`` that snapshots held before this module existed."""
        if isinstance(state, str):
            try:
                state = _from_river_bytes(base64.b64decode(state))
            except (ValueError, struct.error) as exc:
                raise SnapshotError(f"not a River ADWIN state: {exc}") from exc
        self.width = float(state["width"])
        self.total = float(state["total"])
        self.variance = float(state["variance"])
        self._tick = int(state["tick"])
        self._totals = [[float(x) for x in t] for t in state["totals"]]
        self._variances = [[float(x) for x in v] for v in state["variances"]]


def _from_river_bytes(data: bytes) -> dict[str, Any]:
    """Decode River 0.26's serialized ``AdaptiveWindowing`` (bincode, little endian:
    the fields of ``rust_src/adwin.rs`` in order, vectors as a u64 length then items,
    then in 0.26.1 the constructor arguments)."""
    pos = 0

    def take(fmt: str) -> tuple[Any, ...]:
        nonlocal pos
        out = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return out

    def floats() -> list[float]:
        (n,) = take("Q")
        return [float(x) for x in take(f"{n}d")]

    # delta, clock, max_buckets, min_window_length, grace_period: settings, known here
    take("diQdd")
    total, variance, width, _total_width = take("dddd")
    _n_buckets, _max_n_buckets, tick, _n_detections = take("iiii")
    totals: list[list[float]] = []
    variances: list[list[float]] = []
    (levels,) = take("Q")
    for _ in range(levels):
        _max_size, current = take("QQ")
        # Slots past ``current`` are unused zeros.
        totals.append(floats()[:current])
        variances.append(floats()[:current])
    if len(data) - pos == struct.calcsize("<diQii"):
        take("diQii")  # River 0.26.1 ends with its constructor arguments again
    if pos != len(data):
        raise ValueError(f"ADWIN state has {len(data) - pos} bytes past its buckets")
    # River keeps a trailing level only while it has buckets; an empty list is level 0.
    return {
        "width": width,
        "total": total,
        "variance": variance,
        "tick": tick,
        "totals": totals or [[]],
        "variances": variances or [[]],
    }
