//! The CUSUM threshold's adjustment coefficient (see
//! `detectors.sensitivity._adjustment_coefficient`, which documents it, and
//! `tests/detectors/test_adjustment_coefficient.py`).

use crate::buffers::expect;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// `log sum p exp(t y)` and its slope in `t`, over the terms `(p, y)`, shifted by
/// `t * top` so that no `exp` overflows; each sum in order from the first term (as
/// Python 3.11's `sum` of floats adds them).
fn log_mgf(terms: &[(f64, f64)], top: f64, t: f64) -> (f64, f64) {
    let shift = t * top;
    let mut total = 0.0f64;
    let mut moment = 0.0f64;
    for &(p, v) in terms {
        let w = p * (t * v - shift).exp();
        total += w;
        moment += w * v;
    }
    (total.ln() + shift, moment / total)
}

/// The root `theta > 0` of `log sum p exp(theta y) = 0` (`E y < 0`) by Newton's method
/// from the right (see `detectors.sensitivity._adjustment_coefficient`); `None` when no
/// `y` with `p > 0` is above 0 (no root).
#[pyfunction]
pub fn adjustment_coefficient(y: Vec<f64>, probs: Vec<f64>) -> PyResult<Option<f64>> {
    expect("probs", probs.len(), y.len())?;
    if !y.iter().chain(&probs).all(|v| v.is_finite()) {
        return Err(PyValueError::new_err("y and probs must be finite"));
    }
    let terms: Vec<(f64, f64)> = probs
        .iter()
        .zip(&y)
        .filter(|(&p, _)| p > 0.0)
        .map(|(&p, &v)| (p, v))
        .collect();
    // The inputs are finite: the largest y is never NaN (-inf with no term).
    let top = terms
        .iter()
        .map(|&(_, v)| v)
        .fold(f64::NEG_INFINITY, f64::max);
    if top <= 0.0 {
        return Ok(None);
    }
    let mut t = 1.0f64;
    let (mut value, mut slope) = log_mgf(&terms, top, t);
    while value <= 0.0 {
        // left of the root: double until right of it
        t *= 2.0;
        (value, slope) = log_mgf(&terms, top, t);
    }
    for _ in 0..100 {
        let step = value / slope;
        let next = t - step;
        if !(0.0 < next && next < t) {
            break; // no progress left in floats
        }
        t = next;
        if step <= 1e-13 * t {
            break; // the next step would be ~1e-26 t
        }
        (value, slope) = log_mgf(&terms, top, t);
    }
    Ok(Some(t))
}
