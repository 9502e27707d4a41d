//! The per-block arithmetic of `detectors.numeric_drift.NumericDrift` (see
//! `detectors/numeric_block.py`, which documents and tests it).
//!
//! Arrays come in through the buffer protocol (numpy arrays, C-contiguous, of the
//! element type each function names); every length is checked before anything is
//! read or written, and a mismatch is a `ValueError`, never undefined behaviour.

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyList, PyString};
use std::cell::Cell;

fn read<'a, T: pyo3::buffer::Element>(
    py: Python<'a>,
    buf: &'a PyBuffer<T>,
    name: &str,
) -> PyResult<&'a [pyo3::buffer::ReadOnlyCell<T>]> {
    buf.as_slice(py)
        .ok_or_else(|| PyValueError::new_err(format!("{name} must be a C-contiguous array")))
}

fn write<'a, T: pyo3::buffer::Element>(
    py: Python<'a>,
    buf: &'a PyBuffer<T>,
    name: &str,
) -> PyResult<&'a [Cell<T>]> {
    buf.as_mut_slice(py).ok_or_else(|| {
        PyValueError::new_err(format!("{name} must be a writable C-contiguous array"))
    })
}

fn expect(name: &str, got: usize, want: usize) -> PyResult<()> {
    if got == want {
        Ok(())
    } else {
        Err(PyValueError::new_err(format!(
            "{name} has {got} elements; expected {want}"
        )))
    }
}

/// Bin `values` and run the four CUSUMs over them; return the number of crossings.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn advance(
    py: Python<'_>,
    values: PyBuffer<f64>,
    edges: PyBuffer<f64>,
    table: PyBuffer<i64>,
    cusum: PyBuffer<i64>,
    limit: PyBuffer<i64>,
    run: bool,
    crossings: PyBuffer<i64>,
    bins: PyBuffer<i64>,
) -> PyResult<usize> {
    let values = read(py, &values, "values")?;
    let edges = read(py, &edges, "edges")?;
    let table = read(py, &table, "table")?;
    let cusum = write(py, &cusum, "cusum")?;
    let limit = read(py, &limit, "limit")?;
    let crossings = write(py, &crossings, "crossings")?;
    let bins = write(py, &bins, "bins")?;
    let k = edges.len() + 1;
    expect("bins", bins.len(), k)?;
    expect("table", table.len(), 4 * k)?;
    expect("cusum", cusum.len(), 4)?;
    expect("limit", limit.len(), 4)?;
    if run && crossings.len() < 3 * values.len() {
        return Err(PyValueError::new_err(
            "crossings needs a row of 3 per value",
        ));
    }
    let edges: Vec<f64> = edges.iter().map(|e| e.get()).collect();
    let mut s = [
        cusum[0].get(),
        cusum[1].get(),
        cusum[2].get(),
        cusum[3].get(),
    ];
    let h = [
        limit[0].get(),
        limit[1].get(),
        limit[2].get(),
        limit[3].get(),
    ];
    for b in bins.iter() {
        b.set(0);
    }
    let mut found = 0usize;
    for (j, v) in values.iter().enumerate() {
        let v = v.get();
        // searchsorted(edges, v, side="right"): the edges at or below v.
        let b = edges.partition_point(|&e| e <= v);
        bins[b].set(bins[b].get() + 1);
        if !run {
            continue;
        }
        let mut hit = usize::MAX;
        for w in 0..4 {
            let t = (s[w] + table[w * k + b].get()).max(0);
            s[w] = t;
            if hit == usize::MAX && t > h[w] {
                hit = w;
            }
        }
        if hit != usize::MAX {
            crossings[3 * found].set(j as i64);
            crossings[3 * found + 1].set(hit as i64);
            crossings[3 * found + 2].set(s[hit]);
            found += 1;
            s = [0; 4];
        }
    }
    for w in 0..4 {
        cusum[w].set(s[w]);
    }
    Ok(found)
}

/// Slide the KS window by one block; return `max |below - expected|`.
#[pyfunction]
fn slide(
    py: Python<'_>,
    bins: PyBuffer<i64>,
    ring: PyBuffer<i64>,
    pos: usize,
    below: PyBuffer<i64>,
    expected: PyBuffer<f64>,
) -> PyResult<f64> {
    let bins = read(py, &bins, "bins")?;
    let ring = write(py, &ring, "ring")?;
    let below = write(py, &below, "below")?;
    let expected = read(py, &expected, "expected")?;
    let m = below.len();
    expect("bins", bins.len(), m + 1)?;
    expect("expected", expected.len(), m)?;
    if ring.len() < (pos + 1) * m || (m > 0 && ring.len() % m != 0) {
        return Err(PyValueError::new_err(format!(
            "ring has {} elements: no row {pos} of {m}",
            ring.len()
        )));
    }
    let row = &ring[pos * m..(pos + 1) * m];
    let mut c = 0i64;
    let mut gap = 0.0f64;
    for j in 0..m {
        c += bins[j].get();
        let now = below[j].get() + c - row[j].get();
        below[j].set(now);
        row[j].set(c);
        let g = (now as f64 - expected[j].get()).abs();
        if g > gap {
            gap = g;
        }
    }
    Ok(gap)
}

/// Row `i` of `out` (`len(events) x len(names)`, float64) from `events[i][name]` for
/// every name, and whether each event is clean: every value inside its `[lo, hi]` (NaN
/// never is) and every `(name, known)` of `categories` a `str` in `known`. `None` as
/// soon as one event is not exactly a dict (a subclass may override its lookups) or one
/// value of `names` is missing or not exactly a `float` (`out` then holds garbage: the
/// caller takes its general path).
#[pyfunction]
fn gather_clean<'py>(
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
fn float_column(
    py: Python<'_>,
    values: &Bound<'_, PyList>,
    lo: f64,
    hi: f64,
    out: PyBuffer<f64>,
) -> PyResult<i64> {
    let out = write(py, &out, "out")?;
    expect("out", out.len(), values.len())?;
    let mut outside = 0i64;
    for (cell, value) in out.iter().zip(values.iter()) {
        let Ok(value) = value.cast_exact::<PyFloat>() else {
            return Ok(-1);
        };
        let v = value.value();
        if !v.is_finite() {
            return Ok(-1);
        }
        if v < lo || v > hi {
            outside += 1;
        }
        cell.set(v);
    }
    Ok(outside)
}

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
fn adjustment_coefficient(y: Vec<f64>, probs: Vec<f64>) -> PyResult<Option<f64>> {
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

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(advance, m)?)?;
    m.add_function(wrap_pyfunction!(slide, m)?)?;
    m.add_function(wrap_pyfunction!(gather_clean, m)?)?;
    m.add_function(wrap_pyfunction!(float_column, m)?)?;
    m.add_function(wrap_pyfunction!(adjustment_coefficient, m)?)?;
    Ok(())
}
