//! The per-event arithmetic of `detectors.reconstruction.ReconstructionDrift`: raw
//! values to normal scores through each feature's marginal table, and the centred rows'
//! squared prediction error and outlier score, apart (`normal_scores`, `project`) or as
//! one object holding a reference's constants (`RowScorer`) (documented and tested in
//! `detectors/reconstruction.py` and `tests/detectors/test_reconstruction_kernels.py`).

use crate::buffers::{expect, read, write};
use pyo3::buffer::{PyBuffer, ReadOnlyCell};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

/// A float read where it is: the caller's array (a buffer's cells) or our own.
trait Value {
    fn value(&self) -> f64;
}

impl Value for f64 {
    fn value(&self) -> f64 {
        *self
    }
}

impl Value for ReadOnlyCell<f64> {
    fn value(&self) -> f64 {
        self.get()
    }
}

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
fn interp<T: Value>(x: f64, xp: &[T], fp: &[T]) -> f64 {
    if x.is_nan() {
        return x;
    }
    let n = xp.len();
    let above = xp.partition_point(|p| p.value() <= x);
    if above == 0 {
        return fp[0].value();
    }
    if above == n {
        return fp[n - 1].value();
    }
    let j = above - 1;
    let (x0, x1, f0, f1) = (
        xp[j].value(),
        xp[j + 1].value(),
        fp[j].value(),
        fp[j + 1].value(),
    );
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
    let lengths = [shift.len(), low.len(), high.len(), xp.len(), fp.len()];
    expect("out", out.len(), x.len())?;
    if d == 0 || x.len() % d != 0 {
        return Err(PyValueError::new_err(format!(
            "x has {} elements: not rows of {d}",
            x.len()
        )));
    }
    let stretches = map_shape(d, lengths, starts.iter().map(|s| s.get()))?;
    let map = NormalMap {
        scale,
        shift,
        low,
        high,
        xp,
        fp,
        stretches: &stretches,
    };
    for (row_in, row_out) in x.chunks(d).zip(out.chunks(d)) {
        map.row(|j| row_in[j].get(), |j, z| row_out[j].set(z));
    }
    Ok(())
}

/// The map's constants' lengths checked for `d` features (`lengths`: those of `shift`,
/// `low`, `high`, `xp` and `fp`), and each feature's stretch `starts[j]..starts[j + 1]`
/// of the knots.
fn map_shape(
    d: usize,
    lengths: [usize; 5],
    starts: impl Iterator<Item = i64>,
) -> PyResult<Vec<(usize, usize)>> {
    let [shift, low, high, knots, fp] = lengths;
    for (name, got) in [("shift", shift), ("low", low), ("high", high)] {
        expect(name, got, d)?;
    }
    expect("fp", fp, knots)?;
    let starts: Vec<i64> = starts.collect();
    expect("starts", starts.len(), d + 1)?;
    let mut out = Vec::with_capacity(d);
    for j in 0..d {
        let (a, b) = (starts[j], starts[j + 1]);
        if a < 0 || b <= a || b as usize > knots {
            return Err(PyValueError::new_err(format!(
                "starts: no stretch {a}..{b} of {knots} knots"
            )));
        }
        out.push((a as usize, b as usize));
    }
    Ok(out)
}

/// The normal-score map's constants, wherever they are held.
struct NormalMap<'a, T: Value> {
    scale: &'a [T],
    shift: &'a [T],
    low: &'a [T],
    high: &'a [T],
    xp: &'a [T],
    fp: &'a [T],
    stretches: &'a [(usize, usize)],
}

impl<T: Value> NormalMap<'_, T> {
    /// One row: value `j` from `get(j)`, its score to `put(j, z)`.
    fn row(&self, get: impl Fn(usize) -> f64, mut put: impl FnMut(usize, f64)) {
        for (j, &(a, b)) in self.stretches.iter().enumerate() {
            let u = get(j) * self.scale[j].value() + self.shift[j].value();
            let u = clamp(u, self.low[j].value(), self.high[j].value());
            put(j, interp(u, &self.xp[a..b], &self.fp[a..b]));
        }
    }
}

/// One centred row's `(spe, score)`: `t = w c` summed in index order (`t_k` over `j`),
/// then `sum_k t_k**2 * s0[k]` and `sum_k t_k**2 * s1[k]`; `t` is scratch of `d`.
fn project_row<C: Value, T: Value>(
    row: &[C],
    wt: &[T],
    s0: &[T],
    s1: &[T],
    t: &mut [f64],
) -> (f64, f64) {
    let d = t.len();
    t.fill(0.0);
    for (x, wrow) in row.iter().zip(wt.chunks(d)) {
        let x = x.value();
        for (tk, w) in t.iter_mut().zip(wrow) {
            *tk += x * w.value();
        }
    }
    let (mut a, mut b) = (0.0f64, 0.0f64);
    for ((tk, u), v) in t.iter().zip(s0).zip(s1) {
        let t2 = tk * tk;
        a += t2 * u.value();
        b += t2 * v.value();
    }
    (a, b)
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
        let (a, b) = project_row(row, wt, s0, s1, &mut t);
        spe[i].set(a);
        score[i].set(b);
    }
    Ok(())
}

/// `normal_scores` then `project`, fused, for a reference's constants held here (copied
/// once, when the reference is taken): each row of a batch's matrix scored in one call,
/// the same floats as the two functions give (the same code), and no array made per call.
#[pyclass(module = "detectors._native", frozen)]
pub struct RowScorer {
    scale: Vec<f64>,
    shift: Vec<f64>,
    low: Vec<f64>,
    high: Vec<f64>,
    xp: Vec<f64>,
    fp: Vec<f64>,
    starts: Vec<i64>,
    stretches: Vec<(usize, usize)>,
    wt: Vec<f64>,
    sums: Vec<f64>,
    suspect: f64,
}

#[pymethods]
impl RowScorer {
    /// The map's constants (as `normal_scores` takes them), the projection's (`wt`, `d x
    /// d`, and `sums`, `2 x d`, flattened) and the score from which a row is not usable
    /// as it is (`score < suspect` is; NaN is not).
    #[new]
    #[allow(clippy::too_many_arguments)]
    fn new(
        scale: Vec<f64>,
        shift: Vec<f64>,
        low: Vec<f64>,
        high: Vec<f64>,
        xp: Vec<f64>,
        fp: Vec<f64>,
        starts: Vec<i64>,
        wt: Vec<f64>,
        sums: Vec<f64>,
        suspect: f64,
    ) -> PyResult<Self> {
        let d = scale.len();
        if d == 0 {
            return Err(PyValueError::new_err("no feature to score"));
        }
        let lengths = [shift.len(), low.len(), high.len(), xp.len(), fp.len()];
        let stretches = map_shape(d, lengths, starts.iter().copied())?;
        expect("wt", wt.len(), d * d)?;
        expect("sums", sums.len(), 2 * d)?;
        Ok(RowScorer {
            scale,
            shift,
            low,
            high,
            xp,
            fp,
            starts,
            stretches,
            wt,
            sums,
            suspect,
        })
    }

    /// Each row of `matrix` (`n x width`, float64) scored on its columns `columns` (all
    /// `width` of them, in order, when `None`): `(spe, score)`, or `None` where the score
    /// is not usable as it is (a missing, non-finite or absurd value: scored per event).
    #[pyo3(signature = (matrix, columns=None))]
    fn score<'py>(
        &self,
        py: Python<'py>,
        matrix: PyBuffer<f64>,
        columns: Option<Vec<usize>>,
    ) -> PyResult<Bound<'py, PyList>> {
        let x = read(py, &matrix, "matrix")?;
        let d = self.scale.len();
        let shape = matrix.shape();
        let width = match shape {
            [_, w] => *w,
            _ => return Err(PyValueError::new_err("matrix must have two dimensions")),
        };
        let columns: Vec<usize> = match columns {
            None => {
                expect("matrix's columns", width, d)?;
                (0..d).collect()
            }
            Some(cols) => {
                expect("columns", cols.len(), d)?;
                if let Some(bad) = cols.iter().find(|&&j| j >= width) {
                    return Err(PyValueError::new_err(format!(
                        "column {bad} is not in a matrix of {width}"
                    )));
                }
                cols
            }
        };
        let map = NormalMap {
            scale: &self.scale,
            shift: &self.shift,
            low: &self.low,
            high: &self.high,
            xp: &self.xp,
            fp: &self.fp,
            stretches: &self.stretches,
        };
        let (s0, s1) = self.sums.split_at(d);
        let mut c = vec![0.0f64; d];
        let mut t = vec![0.0f64; d];
        let out = PyList::empty(py);
        // width >= d >= 1 here: the columns were checked against it above.
        for row in x.chunks(width) {
            map.row(|j| row[columns[j]].get(), |j, z| c[j] = z);
            let (spe, score) = project_row(&c, &self.wt, s0, s1, &mut t);
            if score < self.suspect {
                out.append(PyTuple::new(py, [spe, score])?)?;
            } else {
                out.append(py.None())?;
            }
        }
        Ok(out)
    }

    /// Pickled as its constants.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let s = slf.get();
        let args = (
            s.scale.clone(),
            s.shift.clone(),
            s.low.clone(),
            s.high.clone(),
            s.xp.clone(),
            s.fp.clone(),
            s.starts.clone(),
            s.wt.clone(),
            s.sums.clone(),
            s.suspect,
        )
            .into_pyobject(py)?;
        (slf.get_type(), args).into_pyobject(py)
    }
}
