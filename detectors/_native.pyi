# Types of the Rust extension detectors._native (detectors/native/src/lib.rs); documented
# and tested in detectors/numeric_block.py, detectors/feature_matrix.py and
# detectors/sensitivity.py (_adjustment_coefficient).
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
def adjustment_coefficient(y: list[float], probs: list[float]) -> float | None: ...
