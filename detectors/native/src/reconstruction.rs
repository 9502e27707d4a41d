//! The per-event arithmetic of `detectors.reconstruction.ReconstructionDrift`: raw
//! values to normal scores through each feature's marginal table, and the centred rows'
//! squared prediction error and outlier score (documented and tested in
//! `detectors/reconstruction.py` and `tests/detectors/test_reconstruction_kernels.py`).

use crate::buffers::{expect, read, write};
use pyo3::buffer::{PyBuffer, ReadOnlyCell};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// `np.maximum` / `np.minimum` of one pair: NaN when `a` is NaN (the bounds never are).
fn clamp(a: f64, lo: f64, hi: f64) -> f64 {
    if a.is_nan() {
        return a;
    }
    let a = if a < lo { lo } else { a };
    if a > hi {
        hi
    } else {
        a
    }
}

/// `np.interp(x, xp, fp)` for one `x` inside `[xp[0], xp[-1]]` (or NaN), with numpy's
/// arithmetic: the point itself on a knot, else `slope * (x - xp[j]) + fp[j]`, and the
/// other side's formula when that is NaN. The knots are read where they are (the
/// caller's arrays): a copy of all features' knots per call cost more than a batch of a
/// few rows' work.
fn interp(x: f64, xp: &[ReadOnlyCell<f64>], fp: &[ReadOnlyCell<f64>]) -> f64 {
    if x.is_nan() {
        return x;
    }
    let n = xp.len();
    let above = xp.partition_point(|p| p.get() <= x);
    if above == 0 {
        return fp[0].get();
    }
    if above == n {
        return fp[n - 1].get();
    }
    let j = above - 1;
    let (x0, x1, f0, f1) = (xp[j].get(), xp[j + 1].get(), fp[j].get(), fp[j + 1].get());
    if x0 == x {
        return f0;
    }
    let slope = (f1 - f0) / (x1 - x0);
    let y = slope * (x - x0) + f0;
    if !y.is_nan() {
        return y;
    }
    let y = slope * (x - x1) + f1;
    if y.is_nan() && f0 == f1 {
        f0
    } else {
        y
    }
}

/// `out[i, j]` (float64, `n x d` as `x`): `x[i, j] * scale[j] + shift[j]`, held inside
/// `[low[j], high[j]]`, then interpolated in feature `j`'s stretch of the knots
/// `xp[starts[j]:starts[j + 1]]` to `fp` (NaN stays NaN).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
pub fn normal_scores(
    py: Python<'_>,
    x: PyBuffer<f64>,
    scale: PyBuffer<f64>,
    shift: PyBuffer<f64>,
    low: PyBuffer<f64>,
    high: PyBuffer<f64>,
    xp: PyBuffer<f64>,
    fp: PyBuffer<f64>,
    starts: PyBuffer<i64>,
    out: PyBuffer<f64>,
) -> PyResult<()> {
    let x = read(py, &x, "x")?;
    let scale = read(py, &scale, "scale")?;
    let shift = read(py, &shift, "shift")?;
    let low = read(py, &low, "low")?;
    let high = read(py, &high, "high")?;
    let xp = read(py, &xp, "xp")?;
    let fp = read(py, &fp, "fp")?;
    let starts = read(py, &starts, "starts")?;
    let out = write(py, &out, "out")?;
    let d = scale.len();
    for (name, got) in [
        ("shift", shift.len()),
        ("low", low.len()),
        ("high", high.len()),
    ] {
        expect(name, got, d)?;
    }
    expect("starts", starts.len(), d + 1)?;
    expect("fp", fp.len(), xp.len())?;
    expect("out", out.len(), x.len())?;
    if d == 0 || x.len() % d != 0 {
        return Err(PyValueError::new_err(format!(
            "x has {} elements: not rows of {d}",
            x.len()
        )));
    }
    let mut stretches = Vec::with_capacity(d);
    for j in 0..d {
        let (a, b) = (starts[j].get(), starts[j + 1].get());
        if a < 0 || b <= a || b as usize > xp.len() {
            return Err(PyValueError::new_err(format!(
                "starts: no stretch {a}..{b} of {} knots",
                xp.len()
            )));
        }
        stretches.push((a as usize, b as usize));
    }
    for (row_in, row_out) in x.chunks(d).zip(out.chunks(d)) {
        for j in 0..d {
            let u = row_in[j].get() * scale[j].get() + shift[j].get();
            let u = clamp(u, low[j].get(), high[j].get());
            let (a, b) = stretches[j];
            row_out[j].set(interp(u, &xp[a..b], &fp[a..b]));
        }
    }
    Ok(())
}

/// For each row `c` of `centred` (`n x d`): `t = w c` for `w` given as its transpose
/// `wt` (`d x d`), and `spe[i] = sum_k t_k**2 * sums[0, k]`, `score[i] = sum_k t_k**2 *
/// sums[1, k]`. Every sum runs in index order (`t_k` over `j`, then over `k`): the same
/// floats for a row whatever the number of rows; the `t_k` of a row are summed side by
/// side (independent chains, not one after the other).
#[pyfunction]
pub fn project(
    py: Python<'_>,
    centred: PyBuffer<f64>,
    wt: PyBuffer<f64>,
    sums: PyBuffer<f64>,
    spe: PyBuffer<f64>,
    score: PyBuffer<f64>,
) -> PyResult<()> {
    let c = read(py, &centred, "centred")?;
    let wt = read(py, &wt, "wt")?;
    let sums = read(py, &sums, "sums")?;
    let spe = write(py, &spe, "spe")?;
    let score = write(py, &score, "score")?;
    let d = sums.len() / 2;
    expect("sums", sums.len(), 2 * d)?;
    expect("wt", wt.len(), d * d)?;
    if d == 0 || c.len() % d != 0 {
        return Err(PyValueError::new_err(format!(
            "centred has {} elements: not rows of {d}",
            c.len()
        )));
    }
    let n = c.len() / d;
    expect("spe", spe.len(), n)?;
    expect("score", score.len(), n)?;
    // Read where they are: a copy per call cost more than a batch of a few rows' work.
    let (s0, s1) = sums.split_at(d);
    let mut t = vec![0.0f64; d];
    for (i, row) in c.chunks(d).enumerate() {
        t.fill(0.0);
        for (x, wrow) in row.iter().zip(wt.chunks(d)) {
            let x = x.get();
            for (tk, w) in t.iter_mut().zip(wrow) {
                *tk += x * w.get();
            }
        }
        let (mut a, mut b) = (0.0f64, 0.0f64);
        for ((tk, u), v) in t.iter().zip(s0).zip(s1) {
            let t2 = tk * tk;
            a += t2 * u.get();
            b += t2 * v.get();
        }
        spe[i].set(a);
        score[i].set(b);
    }
    Ok(())
}
