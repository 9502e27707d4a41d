"""Numeric feature values into numpy arrays, read in Rust (``detectors._native``).

:meth:`DriftMonitor.prepare <detectors.drift_monitor.DriftMonitor.prepare>` reads the
numeric features of a whole batch into a matrix before its per-event work, and finds
the events it can call clean at once. In Python that was a tuple per event, a pass over
every value's type and one over the values into numpy, then a range check in numpy and
a pass per categorical feature (~8 % of a worker's time per event, ``make profile``);
here it is one pass, each value looked up and written in place.

:func:`gather_clean` fills row ``i`` of ``out`` (a C-contiguous ``float64`` array of
``len(events) x len(names)``) with ``events[i][name]`` for every name, and returns
whether each event is clean: its value of ``names[j]`` inside ``[lo[j], hi[j]]`` for
every ``j`` (NaN never is: a feature without a range passes the largest finite
floats, so that infinities are not clean either), and its value of every
``(name, known)`` of ``categories`` a ``str`` in ``known``. ``None`` as soon as an
event is not exactly a ``dict`` or a value of ``names`` is missing or not exactly a
``float`` (an ``int``, a ``bool``, ``None``, a string, a numpy scalar); ``out`` then
holds garbage and the caller takes its general path. ``events``, ``names``,
``categories`` are lists; ``out`` of the wrong size is a ``ValueError``.

>>> import numpy as np
>>> out = np.empty((3, 2))
>>> events = [{"a": 1.0, "b": 2.5, "c": "x"}, {"b": 0.5, "a": -3.0, "c": "x"},
...           {"a": 0.0, "b": 0.0, "c": "new"}]
>>> gather_clean(events, ["a", "b"], [-2.0, -9.0], [2.0, 9.0], [("c", frozenset("x"))], out)
[True, False, False]
>>> out.tolist()
[[1.0, 2.5], [-3.0, 0.5], [0.0, 0.0]]
>>> gather_clean([{"a": 1.0, "b": 2}], ["a", "b"], [0.0, 0.0], [9.0, 9.0], [], out[:1])
>>> gather_clean([{"a": 1.0}], ["a"], [0.0], [1.0], [], np.empty(3))
Traceback (most recent call last):
ValueError: out has 3 elements; expected 1

:func:`float_column` does the same for a monitor's block of one feature: the values
(a list) into ``out`` (``float64``, as long) if every one is exactly a finite ``float``,
and then the number of them below ``lo`` or above ``hi``; else ``-1`` (``out`` then
holds garbage, and the caller sorts the values out one by one). In Python that was a
pass over the types, a sum (finite), a ``min``, a ``max`` and one more pass into numpy.

>>> out = np.empty(3)
>>> float_column([0.5, 2.0, -1.0], 0.0, 1.0, out), out.tolist()
(2, [0.5, 2.0, -1.0])
>>> float_column([0.5, None, 1.0], 0.0, 1.0, out), float_column([0.5, 1, 1.0], 0.0, 1.0, out)
(-1, -1)
>>> float_column([0.5, float("nan"), 1.0], -np.inf, np.inf, out)
-1
"""

from __future__ import annotations

from detectors._native import float_column, gather_clean

__all__ = ["float_column", "gather_clean"]
