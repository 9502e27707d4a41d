//! vigil's compiled inner loops (Python module `detectors._native`): each file one
//! piece, documented and tested where Python calls it.

use pyo3::prelude::*;

mod buffers;
mod confidence_window;
mod cusum;
mod feature_matrix;
mod numeric_block;
mod reconstruction;
mod row_block;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(numeric_block::advance, m)?)?;
    m.add_function(wrap_pyfunction!(numeric_block::slide, m)?)?;
    m.add_function(wrap_pyfunction!(feature_matrix::gather_clean, m)?)?;
    m.add_function(wrap_pyfunction!(feature_matrix::float_column, m)?)?;
    m.add_function(wrap_pyfunction!(cusum::adjustment_coefficient, m)?)?;
    m.add_function(wrap_pyfunction!(reconstruction::normal_scores, m)?)?;
    m.add_function(wrap_pyfunction!(reconstruction::project, m)?)?;
    m.add_class::<confidence_window::ConfidenceWindow>()?;
    m.add_class::<row_block::RowBlock>()?;
    m.add_class::<reconstruction::RowScorer>()?;
    Ok(())
}
