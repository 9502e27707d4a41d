//! The per-block arithmetic of `detectors.numeric_drift.NumericDrift` (see
//! `detectors/numeric_block.py`, which documents and tests it).
//!
//! Arrays come in through the buffer protocol (numpy arrays, C-contiguous, of the
//! element type each function names); every length is checked before anything is
//! read or written, and a mismatch is a `ValueError`, never undefined behaviour.

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyList};
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
/// every name; `false` as soon as one event is not exactly a dict (a subclass may
/// override its lookups) or one value is missing or not exactly a `float` (`out` then
/// holds garbage: the caller takes its general path).
#[pyfunction]
fn gather_floats(
    py: Python<'_>,
    events: &Bound<'_, PyList>,
    names: &Bound<'_, PyList>,
    out: PyBuffer<f64>,
) -> PyResult<bool> {
    let out = write(py, &out, "out")?;
    let k = names.len();
    expect("out", out.len(), events.len() * k)?;
    let names: Vec<Bound<'_, PyAny>> = names.iter().collect();
    for (i, event) in events.iter().enumerate() {
        let Ok(event) = event.cast_exact::<PyDict>() else {
            return Ok(false);
        };
        let row = &out[i * k..(i + 1) * k];
        for (cell, name) in row.iter().zip(&names) {
            let Some(value) = event.get_item(name)? else {
                return Ok(false);
            };
            let Ok(value) = value.cast_exact::<PyFloat>() else {
                return Ok(false);
            };
            cell.set(value.value());
        }
    }
    Ok(true)
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

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(advance, m)?)?;
    m.add_function(wrap_pyfunction!(slide, m)?)?;
    m.add_function(wrap_pyfunction!(gather_floats, m)?)?;
    m.add_function(wrap_pyfunction!(float_column, m)?)?;
    Ok(())
}
