//! The unlabelled window of `detectors.performance.PerformanceEstimator`: the last
//! `window` confidences in a ring, with per-bin counts and exact fixed-point sums
//! (documented and tested in `detectors/performance.py` and
//! `tests/detectors/test_confidence_window.py`).

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

/// `2**80`: a confidence `c` counts as the integer `int(ldexp(c, 80))`, so that sums
/// over the window are exact whatever order values come and go in.
const SCALE: f64 = (1u128 << 80) as f64;

fn fixed(c: f64) -> i128 {
    // c * 2**80 is exact (a power of two), and `as` truncates towards zero as `int` does.
    (c * SCALE) as i128
}

fn check_confidence(c: f64) -> PyResult<f64> {
    if (0.0..=1.0).contains(&c) {
        Ok(c)
    } else {
        Err(PyValueError::new_err(format!(
            "a confidence must be in [0, 1]; got {c}"
        )))
    }
}

/// The last `window` confidences, binned by `edges` (a value on an edge belongs to the
/// lower bin, as `bisect_left`), with each bin's count and fixed-point sum.
#[pyclass(module = "detectors._native")]
pub struct ConfidenceWindow {
    edges: Vec<f64>,
    window: usize,
    values: Vec<f64>,
    bin_of: Vec<usize>,
    head: usize,
    counts: Vec<i64>,
    sums: Vec<i128>,
}

impl ConfidenceWindow {
    fn bin(&self, c: f64) -> usize {
        self.edges.partition_point(|&e| e < c)
    }
}

#[pymethods]
impl ConfidenceWindow {
    /// A window of at most `window` values; `values` and `head`: a ring as
    /// `values()` and `head` gave it (a snapshot's), whose counts and sums are
    /// recomputed (they are exact: the same as the running window's).
    #[new]
    #[pyo3(signature = (edges, window, values=Vec::new(), head=0))]
    fn new(edges: Vec<f64>, window: usize, values: Vec<f64>, head: usize) -> PyResult<Self> {
        if window == 0 {
            return Err(PyValueError::new_err("window must be at least 1"));
        }
        if !edges.iter().all(|e| e.is_finite()) || !edges.windows(2).all(|w| w[0] <= w[1]) {
            return Err(PyValueError::new_err("edges must be finite and sorted"));
        }
        if values.len() > window {
            return Err(PyValueError::new_err(format!(
                "{} values for a window of {window}",
                values.len()
            )));
        }
        if head >= window || (head != 0 && values.len() < window) {
            return Err(PyValueError::new_err(format!(
                "head {head} is not a position of a window of {window} holding {}",
                values.len()
            )));
        }
        let k = edges.len() + 1;
        let mut out = ConfidenceWindow {
            edges,
            window,
            values: Vec::with_capacity(window),
            bin_of: Vec::with_capacity(window),
            head,
            counts: vec![0; k],
            sums: vec![0; k],
        };
        for c in values {
            let c = check_confidence(c)?;
            let b = out.bin(c);
            out.values.push(c);
            out.bin_of.push(b);
            out.counts[b] += 1;
            out.sums[b] += fixed(c);
        }
        Ok(out)
    }

    /// Add one confidence (in `[0, 1]`, else `ValueError`), forgetting the oldest
    /// once the window is full.
    fn push(&mut self, c: f64) -> PyResult<()> {
        let c = check_confidence(c)?;
        let b = self.bin(c);
        if self.values.len() < self.window {
            self.values.push(c);
            self.bin_of.push(b);
        } else {
            let h = self.head;
            let old = self.bin_of[h];
            self.counts[old] -= 1;
            self.sums[old] -= fixed(self.values[h]);
            self.values[h] = c;
            self.bin_of[h] = b;
            self.head = (h + 1) % self.window;
        }
        self.counts[b] += 1;
        self.sums[b] += fixed(c);
        Ok(())
    }

    /// `push` of each value in turn, all checked first: a value outside `[0, 1]` is a
    /// `ValueError` before any is added.
    fn extend(&mut self, values: Vec<f64>) -> PyResult<()> {
        for &c in &values {
            check_confidence(c)?;
        }
        for c in values {
            self.push(c)?;
        }
        Ok(())
    }

    fn __len__(&self) -> usize {
        self.values.len()
    }

    /// Where the oldest value is once the window is full (0 until then).
    #[getter]
    fn head(&self) -> usize {
        self.head
    }

    /// The values as the ring holds them (from position 0, not oldest first).
    fn values(&self) -> Vec<f64> {
        self.values.clone()
    }

    /// Values per bin.
    fn counts(&self) -> Vec<i64> {
        self.counts.clone()
    }

    /// Each bin's sum of `int(ldexp(c, 80))`.
    fn sums(&self) -> Vec<i128> {
        self.sums.clone()
    }

    /// `sum(sums) / 2**80`, or with `offsets` (one per bin) the sum over bins of
    /// `sums[b] / 2**80 + counts[b] * offsets[b]`, added bin by bin from the first:
    /// the same floats as that sum written in Python 3.11 (an int over a power of two
    /// rounds once, as Python's true division does).
    #[pyo3(signature = (offsets=None))]
    fn total(&self, offsets: Option<Vec<f64>>) -> PyResult<f64> {
        let Some(offsets) = offsets else {
            return Ok(self.sums.iter().sum::<i128>() as f64 / SCALE);
        };
        if offsets.len() != self.counts.len() {
            return Err(PyValueError::new_err(format!(
                "{} offsets for {} bins",
                offsets.len(),
                self.counts.len()
            )));
        }
        let mut total = 0.0f64;
        for ((&s, &k), &off) in self.sums.iter().zip(&self.counts).zip(&offsets) {
            total += s as f64 / SCALE + k as f64 * off;
        }
        Ok(total)
    }

    /// Pickled as its constructor's arguments.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let w = slf.borrow();
        let args = (w.edges.clone(), w.window, w.values.clone(), w.head).into_pyobject(py)?;
        (slf.get_type(), args).into_pyobject(py)
    }
}
