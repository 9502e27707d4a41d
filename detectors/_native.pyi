# Types of the Rust extension detectors._native (detectors/native/src/); documented and
# tested in detectors/numeric_block.py, detectors/feature_matrix.py,
# detectors/sensitivity.py (_adjustment_coefficient), detectors/reconstruction.py
# (normal_scores, project, RowScorer), detectors/performance.py (ConfidenceWindow) and
# detectors/drift_monitor.py (RowBlock).
from typing import Any

import numpy as np

def advance(
    values: np.ndarray,
    edges: np.ndarray,
    table: np.ndarray,
    cusum: np.ndarray,
    limit: np.ndarray,
    run: bool,
    crossings: np.ndarray,
    bins: np.ndarray,
) -> int: ...
def slide(
    bins: np.ndarray, ring: np.ndarray, pos: int, below: np.ndarray, expected: np.ndarray
) -> float: ...
def gather_clean(
    events: list[object],
    names: list[str],
    lo: list[float],
    hi: list[float],
    categories: list[tuple[str, frozenset[str]]],
    out: np.ndarray,
) -> list[bool] | None: ...
def float_column(values: list[object], lo: float, hi: float, out: np.ndarray) -> int: ...
def normal_scores(
    x: np.ndarray,
    scale: np.ndarray,
    shift: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    xp: np.ndarray,
    fp: np.ndarray,
    starts: np.ndarray,
    out: np.ndarray,
) -> None: ...
def project(
    centred: np.ndarray, wt: np.ndarray, sums: np.ndarray, spe: np.ndarray, score: np.ndarray
) -> None: ...

class RowScorer:
    def __init__(
        self,
        scale: list[float],
        shift: list[float],
        low: list[float],
        high: list[float],
        xp: list[float],
        fp: list[float],
        starts: list[int],
        wt: list[float],
        sums: list[float],
        suspect: float,
    ) -> None: ...
    def score(
        self, matrix: np.ndarray, columns: list[int] | None = None
    ) -> list[tuple[float, float] | None]: ...

def adjustment_coefficient(y: list[float], probs: list[float]) -> float | None: ...

class ConfidenceWindow:
    def __init__(
        self, edges: list[float], window: int, values: list[float] = ..., head: int = 0
    ) -> None: ...
    def push(self, c: float) -> None: ...
    def extend(self, values: list[float]) -> None: ...
    def __len__(self) -> int: ...
    @property
    def head(self) -> int: ...
    def values(self) -> list[float]: ...
    def counts(self) -> list[int]: ...
    def sums(self) -> list[int]: ...
    def total(self, offsets: list[float] | None = None) -> float: ...

class RowBlock:
    def __init__(self, keys: tuple[Any, ...], columns: list[list[Any]] | None = None) -> None: ...
    def push(self, features: dict[Any, Any]) -> bool: ...
    def __len__(self) -> int: ...
    @property
    def keys(self) -> tuple[Any, ...]: ...
    def floats(self, j: int) -> bool: ...
    def float_column(self, j: int, lo: float, hi: float, out: np.ndarray) -> int: ...
    def spill_column(self, j: int, buf: list[Any]) -> None: ...
    def spill(self, bufs: list[list[Any]]) -> None: ...
    def clear(self) -> None: ...
