//! The per-block arithmetic of `detectors.numeric_drift.NumericDrift` (see
//! `detectors/numeric_block.py`, which documents and tests it).

use crate::buffers::{expect, read, write};
use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// Bin `values` and run the four CUSUMs over them; return the number of crossings.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn advance(
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
pub fn slide(
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
