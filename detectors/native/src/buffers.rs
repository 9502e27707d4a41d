//! Numpy arrays through the buffer protocol: C-contiguous, of the element type each
//! function names, every length checked before anything is read or written (a mismatch
//! is a `ValueError`, never undefined behaviour).

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use std::cell::Cell;

pub fn read<'a, T: pyo3::buffer::Element>(
    py: Python<'a>,
    buf: &'a PyBuffer<T>,
    name: &str,
) -> PyResult<&'a [pyo3::buffer::ReadOnlyCell<T>]> {
    buf.as_slice(py)
        .ok_or_else(|| PyValueError::new_err(format!("{name} must be a C-contiguous array")))
}

pub fn write<'a, T: pyo3::buffer::Element>(
    py: Python<'a>,
    buf: &'a PyBuffer<T>,
    name: &str,
) -> PyResult<&'a [Cell<T>]> {
    buf.as_mut_slice(py).ok_or_else(|| {
        PyValueError::new_err(format!("{name} must be a writable C-contiguous array"))
    })
}

pub fn expect(name: &str, got: usize, want: usize) -> PyResult<()> {
    if got == want {
        Ok(())
    } else {
        Err(PyValueError::new_err(format!(
            "{name} has {got} elements; expected {want}"
        )))
    }
}
