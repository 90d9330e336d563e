//! A statement prepared on the server: its parameter encoders and row decoders.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use ferropg_core::message::RowDescription;
use pyo3::prelude::*;
use pyo3::types::{PyTuple, PyType};

use crate::codecs::{Decoder, Encoder, Registry};
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
    /// The class of the Records this statement's rows become.
    pub record_class: Py<PyType>,
    /// Closed on the server, or about to be: it can no longer run.
    pub closed: AtomicBool,
    /// How many `PreparedStatement` objects hold this statement.
    pub refs: AtomicUsize,
    /// Whether the connection's statement cache holds it.
    pub cached: AtomicBool,
    /// Built without the user's codecs (`ignore_custom_codec`).
    pub ignore_custom_codec: bool,
    /// Parameter or column types nothing was known of: introspect them, then rebuild.
    pub missing: Vec<u32>,
}

impl Statement {
    /// A statement as Parse + Describe described it, with codecs from `registry`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        py: Python<'_>,
        name: String,
        query: String,
        described: Described,
        record_class: Py<PyType>,
        registry: &Registry,
        ignore_custom_codec: bool,
    ) -> PyResult<Statement> {
        let returns_rows = described.columns.is_some();
        let columns = described.columns.unwrap_or_default();
        let column_types: Vec<u32> = columns.iter().map(|c| c.type_oid).collect();
        let resolved = registry.resolve(
            py,
            &described.param_types,
            &column_types,
            ignore_custom_codec,
        )?;
        let result_formats = resolved
            .decoders
            .iter()
            .map(|d| d.as_ref().map_or(0, Decoder::format))
            .collect();
        let param_formats = resolved.encoders.iter().map(Encoder::format).collect();
        let names: Vec<String> = columns.iter().map(|c| c.name.clone()).collect();
        Ok(Statement {
            name,
            query,
            param_types: described.param_types,
            encoders: resolved.encoders,
            param_formats,
            columns,
            decoders: resolved.decoders,
            result_formats,
            returns_rows,
            desc: RecordDesc::from_names(py, &names)?,
            record_class,
            closed: AtomicBool::new(false),
            refs: AtomicUsize::new(0),
            cached: AtomicBool::new(false),
            ignore_custom_codec,
            missing: resolved.missing,
        })
    }

    /// The same server statement with its codecs picked again from `registry`.
    pub fn rebuild(&self, py: Python<'_>, registry: &Registry) -> PyResult<Statement> {
        let described = Described {
            param_types: self.param_types.clone(),
            columns: self.returns_rows.then(|| self.columns.clone()),
        };
        let st = Statement::new(
            py,
            self.name.clone(),
            self.query.clone(),
            described,
            self.record_class.clone_ref(py),
            registry,
            self.ignore_custom_codec,
        )?;
        st.closed.store(self.is_closed(), Ordering::Relaxed);
        Ok(st)
    }
}

impl Statement {
    /// True once closed (or scheduled to be).
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// True when nothing refers to it but (maybe) the cache.
    pub fn unreferenced(&self) -> bool {
        self.refs.load(Ordering::Relaxed) == 0
    }
}

#[pymethods]
impl Statement {
    /// True once the statement was closed or scheduled for closing.
    #[getter]
    fn closed(&self) -> bool {
        self.is_closed()
    }

    /// Marks the statement closed: it will not run again (asyncpg's `mark_closed`).
    fn mark_closed(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }

    /// How many PreparedStatement objects hold it.
    #[getter]
    fn refs(&self) -> usize {
        self.refs.load(Ordering::Relaxed)
    }

    /// A PreparedStatement took hold of the statement.
    fn attach(&self) {
        self.refs.fetch_add(1, Ordering::Relaxed);
    }

    /// A PreparedStatement let go; returns how many holders remain.
    fn detach(&self) -> usize {
        let before = self.refs.load(Ordering::Relaxed);
        let after = before.saturating_sub(1);
        self.refs.store(after, Ordering::Relaxed);
        after
    }

    /// The class rows of this statement decode to.
    #[getter]
    fn record_class(&self, py: Python<'_>) -> Py<PyType> {
        self.record_class.clone_ref(py)
    }

    /// True when the statement returns rows (it has a RowDescription).
    #[getter]
    fn returns_rows(&self) -> bool {
        self.returns_rows
    }

    /// The server-side name ("" for the unnamed statement).
    #[getter]
    fn name(&self) -> &str {
        &self.name
    }

    /// Types still to introspect before the statement can run with the right codecs.
    #[getter]
    fn missing_types(&self) -> Vec<u32> {
        self.missing.clone()
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
