# Types of the Rust extension detectors._native (detectors/native/src/lib.rs); documented
# and tested in detectors/numeric_block.py and detectors/feature_matrix.py.
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
def gather_floats(events: list[object], names: list[str], out: np.ndarray) -> bool: ...
def float_column(values: list[object], lo: float, hi: float, out: np.ndarray) -> int: ...
