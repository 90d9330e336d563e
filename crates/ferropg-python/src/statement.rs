//! A statement prepared on the server: its parameter encoders and row decoders.

use ferropg_core::message::RowDescription;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::codecs::{Decoder, Encoder};
use crate::record::RecordDesc;

/// One result column.
#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    pub type_oid: u32,
    pub table_oid: u32,
    pub column_id: i16,
    pub type_modifier: i32,
}

/// What a Parse + Describe told us about a statement.
#[derive(Debug, Default)]
pub struct Described {
    pub param_types: Vec<u32>,
    pub columns: Option<Vec<Column>>,
}

impl Described {
    pub fn set_columns(&mut self, desc: &RowDescription<'_>) {
        self.columns = Some(
            desc.fields()
                .map(|f| Column {
                    name: f.name.to_owned(),
                    type_oid: f.type_oid,
                    table_oid: f.table_oid,
                    column_id: f.column_id,
                    type_modifier: f.type_modifier,
                })
                .collect(),
        );
    }
}

/// A prepared statement's state, shared by the cache and `PreparedStatement` objects.
#[pyclass(module = "ferropg._native", frozen, name = "StatementState")]
pub struct Statement {
    pub name: String,
    pub query: String,
    pub param_types: Vec<u32>,
    pub encoders: Vec<Encoder>,
    pub param_formats: Vec<i16>,
    pub columns: Vec<Column>,
    pub decoders: Vec<Option<Decoder>>,
    pub result_formats: Vec<i16>,
    pub returns_rows: bool,
    pub desc: Py<RecordDesc>,
}

impl Statement {
    pub fn new(
        py: Python<'_>,
        name: String,
        query: String,
        described: Described,
    ) -> PyResult<Statement> {
        let returns_rows = described.columns.is_some();
        let columns = described.columns.unwrap_or_default();
        let decoders: Vec<Option<Decoder>> = columns
            .iter()
            .map(|c| Decoder::binary_for(c.type_oid))
            .collect();
        let result_formats = decoders.iter().map(|d| i16::from(d.is_some())).collect();
        let encoders: Vec<Encoder> = described
            .param_types
            .iter()
            .map(|t| Encoder::for_type(*t))
            .collect();
        let param_formats = encoders.iter().map(|e| e.format()).collect();
        let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
        Ok(Statement {
            name,
            query,
            param_types: described.param_types,
            encoders,
            param_formats,
            columns,
            decoders,
            result_formats,
            returns_rows,
            desc: RecordDesc::from_names(py, &names)?,
        })
    }
}

#[pymethods]
impl Statement {
    /// The server-side name ("" for the unnamed statement).
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// The query text.
    #[getter]
    fn query(&self) -> &str {
        &self.query
    }

    /// The parameter type OIDs.
    #[getter]
    fn param_types<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, &self.param_types)
    }

    /// `(name, type_oid, table_oid, column_id, type_modifier)` per result column.
    #[getter]
    fn columns<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let items = self.columns.iter().map(|c| {
            (
                c.name.as_str(),
                c.type_oid,
                c.table_oid,
                c.column_id,
                c.type_modifier,
            )
        });
        PyTuple::new(py, items)
    }
}
