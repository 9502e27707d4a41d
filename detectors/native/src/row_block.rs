//! A drift monitor's current block of events that have the same features in the same
//! order, kept column by column (see `detectors.drift_monitor.DriftMonitor.update`, and
//! `tests/detectors/test_row_block.py`).

use crate::buffers::{expect, write};
use crate::feature_matrix::fill_counting_outside;
use pyo3::buffer::PyBuffer;
use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyList, PyTuple};

/// One feature's values: plain numbers while every one is exactly a `float`.
enum Column {
    Floats(Vec<f64>),
    Objects(Vec<Py<PyAny>>),
}

/// The values of events whose features are `keys`, in that order, column by column.
#[pyclass(module = "detectors._native")]
pub struct RowBlock {
    keys: Vec<Py<PyAny>>,
    columns: Vec<Column>,
    rows: usize,
}

impl RowBlock {
    fn column(&self, j: usize) -> PyResult<&Column> {
        self.columns
            .get(j)
            .ok_or_else(|| PyIndexError::new_err(format!("no column {j}")))
    }

    fn extend_list(py: Python<'_>, column: &Column, list: &Bound<'_, PyList>) -> PyResult<()> {
        match column {
            Column::Floats(values) => {
                for &v in values {
                    list.append(PyFloat::new(py, v))?;
                }
            }
            Column::Objects(values) => {
                for v in values {
                    list.append(v.bind(py))?;
                }
            }
        }
        Ok(())
    }
}

#[pymethods]
impl RowBlock {
    /// An empty block for `keys`, or one holding `columns` (one list of values per key,
    /// all as long: what pickling gives).
    #[new]
    #[pyo3(signature = (keys, columns=None))]
    fn new(keys: &Bound<'_, PyTuple>, columns: Option<&Bound<'_, PyList>>) -> PyResult<Self> {
        let mut block = RowBlock {
            keys: keys.iter().map(|k| k.unbind()).collect(),
            columns: (0..keys.len())
                .map(|_| Column::Floats(Vec::new()))
                .collect(),
            rows: 0,
        };
        let Some(columns) = columns else {
            return Ok(block);
        };
        expect("columns", columns.len(), keys.len())?;
        let mut rows = None;
        for (j, values) in columns.iter().enumerate() {
            let values = values.cast::<PyList>()?;
            if *rows.get_or_insert(values.len()) != values.len() {
                return Err(PyValueError::new_err(
                    "columns must be as long as each other",
                ));
            }
            let floats: Option<Vec<f64>> = values
                .iter()
                .map(|v| v.cast_exact::<PyFloat>().ok().map(|f| f.value()))
                .collect();
            block.columns[j] = match floats {
                Some(floats) => Column::Floats(floats),
                None => Column::Objects(values.iter().map(|v| v.unbind()).collect()),
            };
        }
        block.rows = rows.unwrap_or(0);
        Ok(block)
    }

    /// Pickled as its keys and its columns' values.
    fn __reduce__<'py>(slf: &Bound<'py, Self>) -> PyResult<Bound<'py, PyTuple>> {
        let py = slf.py();
        let block = slf.borrow();
        let columns = PyList::empty(py);
        for column in &block.columns {
            let values = PyList::empty(py);
            Self::extend_list(py, column, &values)?;
            columns.append(values)?;
        }
        let args = (block.keys(py)?, columns).into_pyobject(py)?;
        (slf.get_type(), args).into_pyobject(py)
    }

    /// Keep the values of `features` if its keys are `keys` in the same order (each the
    /// same object or equal, as tuples compare); else change nothing and say so.
    fn push(&mut self, features: &Bound<'_, PyDict>) -> PyResult<bool> {
        let py = features.py();
        if features.len() != self.keys.len() {
            return Ok(false);
        }
        let mut values = Vec::with_capacity(self.keys.len());
        for ((key, value), want) in features.iter().zip(&self.keys) {
            if !key.is(want) && !key.eq(want.bind(py))? {
                return Ok(false);
            }
            values.push(value);
        }
        for (column, value) in self.columns.iter_mut().zip(values) {
            match column {
                Column::Floats(floats) => {
                    if let Ok(f) = value.cast_exact::<PyFloat>() {
                        floats.push(f.value());
                    } else {
                        let mut objects: Vec<Py<PyAny>> = floats
                            .iter()
                            .map(|&v| PyFloat::new(py, v).into_any().unbind())
                            .collect();
                        objects.push(value.unbind());
                        *column = Column::Objects(objects);
                    }
                }
                Column::Objects(objects) => objects.push(value.unbind()),
            }
        }
        self.rows += 1;
        Ok(true)
    }

    fn __len__(&self) -> usize {
        self.rows
    }

    /// The features, in order.
    #[getter]
    fn keys<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.keys.iter().map(|k| k.bind(py)))
    }

    /// Whether column `j` holds only exact floats (so far).
    fn floats(&self, j: usize) -> PyResult<bool> {
        Ok(matches!(self.column(j)?, Column::Floats(_)))
    }

    /// Column `j`, all exact floats, into `out` (float64, as long as the block), if
    /// every value is finite: then the number of them below `lo` or above `hi`; else -1
    /// (`out` then holds garbage), as `float_column` of the same values as a list.
    fn float_column(
        &self,
        py: Python<'_>,
        j: usize,
        lo: f64,
        hi: f64,
        out: PyBuffer<f64>,
    ) -> PyResult<i64> {
        let out = write(py, &out, "out")?;
        let Column::Floats(values) = self.column(j)? else {
            return Ok(-1);
        };
        expect("out", out.len(), values.len())?;
        Ok(fill_counting_outside(
            values.iter().map(|&v| Some(v)),
            lo,
            hi,
            out,
        ))
    }

    /// Append column `j`'s values to `buf` and forget them.
    fn spill_column(&mut self, py: Python<'_>, j: usize, buf: &Bound<'_, PyList>) -> PyResult<()> {
        Self::extend_list(py, self.column(j)?, buf)?;
        self.columns[j] = Column::Floats(Vec::new());
        Ok(())
    }

    /// Append every column's values to its list of `bufs` (one per key, in order) and
    /// forget them all.
    fn spill(&mut self, py: Python<'_>, bufs: &Bound<'_, PyList>) -> PyResult<()> {
        expect("bufs", bufs.len(), self.keys.len())?;
        for (column, buf) in self.columns.iter().zip(bufs.iter()) {
            Self::extend_list(py, column, buf.cast::<PyList>()?)?;
        }
        self.clear();
        Ok(())
    }

    /// Forget every value.
    fn clear(&mut self) {
        for column in self.columns.iter_mut() {
            *column = Column::Floats(Vec::new());
        }
        self.rows = 0;
    }
}
