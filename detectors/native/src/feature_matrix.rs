//! A batch's feature values into numpy arrays (see `detectors/feature_matrix.py`, which
//! documents and tests it).

use crate::buffers::{expect, write};
use pyo3::buffer::PyBuffer;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyList, PyString};
use std::cell::Cell;

/// Row `i` of `out` (`len(events) x len(names)`, float64) from `events[i][name]` for
/// every name, and whether each event is clean: every value inside its `[lo, hi]` (NaN
/// never is) and every `(name, known)` of `categories` a `str` in `known`. `None` as
/// soon as one event is not exactly a dict (a subclass may override its lookups) or one
/// value of `names` is missing or not exactly a `float` (`out` then holds garbage: the
/// caller takes its general path).
#[pyfunction]
pub fn gather_clean<'py>(
    py: Python<'py>,
    events: &Bound<'py, PyList>,
    names: &Bound<'py, PyList>,
    lo: Vec<f64>,
    hi: Vec<f64>,
    categories: &Bound<'py, PyList>,
    out: PyBuffer<f64>,
) -> PyResult<Option<Bound<'py, PyList>>> {
    let out = write(py, &out, "out")?;
    let k = names.len();
    expect("out", out.len(), events.len() * k)?;
    expect("lo", lo.len(), k)?;
    expect("hi", hi.len(), k)?;
    let names: Vec<Bound<'py, PyAny>> = names.iter().collect();
    let categories: Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)> = categories
        .iter()
        .map(|c| c.extract())
        .collect::<PyResult<_>>()?;
    let mut clean = Vec::with_capacity(events.len());
    for (i, event) in events.iter().enumerate() {
        let Ok(event) = event.cast_exact::<PyDict>() else {
            return Ok(None);
        };
        let row = &out[i * k..(i + 1) * k];
        let mut ok = true;
        for (j, (cell, name)) in row.iter().zip(&names).enumerate() {
            let Some(value) = event.get_item(name)? else {
                return Ok(None);
            };
            let Ok(value) = value.cast_exact::<PyFloat>() else {
                return Ok(None);
            };
            let v = value.value();
            cell.set(v);
            ok &= lo[j] <= v && v <= hi[j];
        }
        if ok {
            for (name, known) in &categories {
                let known_str = match event.get_item(name)? {
                    Some(v) => v.is_exact_instance_of::<PyString>() && known.contains(&v)?,
                    None => false,
                };
                if !known_str {
                    ok = false;
                    break;
                }
            }
        }
        clean.push(ok);
    }
    Ok(Some(PyList::new(py, clean)?))
}

/// `values` (a list) into `out` (float64, as long), if every value is exactly a finite
/// `float`: then the number of values below `lo` or above `hi`; else -1 (`out` then
/// holds garbage: the caller sorts the values out its own way).
#[pyfunction]
pub fn float_column(
    py: Python<'_>,
    values: &Bound<'_, PyList>,
    lo: f64,
    hi: f64,
    out: PyBuffer<f64>,
) -> PyResult<i64> {
    let out = write(py, &out, "out")?;
    expect("out", out.len(), values.len())?;
    let floats = values
        .iter()
        .map(|v| v.cast_exact::<PyFloat>().ok().map(|f| f.value()));
    Ok(fill_counting_outside(floats, lo, hi, out))
}

/// `values` into `out` (as long), if every one is a number (not `None`) and finite: then
/// how many are below `lo` or above `hi`; else -1 (`out` then holds garbage).
pub fn fill_counting_outside(
    values: impl Iterator<Item = Option<f64>>,
    lo: f64,
    hi: f64,
    out: &[Cell<f64>],
) -> i64 {
    let mut outside = 0i64;
    for (cell, value) in out.iter().zip(values) {
        let Some(v) = value.filter(|v| v.is_finite()) else {
            return -1;
        };
        if v < lo || v > hi {
            outside += 1;
        }
        cell.set(v);
    }
    outside
}
