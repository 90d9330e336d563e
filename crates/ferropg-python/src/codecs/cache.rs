//! Python objects the codecs need on every call, looked up once per interpreter.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDate, PyDateTime, PyDict, PyTuple, PyType, PyTzInfo};

/// Cached classes and constants.
pub struct Cache {
    /// `decimal.Decimal`.
    pub decimal: Py<PyAny>,
    /// Our fast `uuid.UUID` subclass.
    pub uuid: Py<PyType>,
    /// `uuid.UUID` itself.
    pub std_uuid: Py<PyType>,
    /// `datetime.timezone.utc`.
    pub utc: Py<PyTzInfo>,
    /// `datetime.date.max` / `.min`.
    pub date_max: Py<PyDate>,
    /// `datetime.date.min`.
    pub date_min: Py<PyDate>,
    /// Naive `datetime.datetime.max`.
    pub datetime_max: Py<PyDateTime>,
    /// Naive `datetime.datetime.min`.
    pub datetime_min: Py<PyDateTime>,
    /// `collections.abc.Iterable`, `Sized` and `Mapping`: what array input may be.
    pub abc_iterable: Py<PyAny>,
    /// `collections.abc.Sized`.
    pub abc_sized: Py<PyAny>,
    /// `collections.abc.Mapping`.
    pub abc_mapping: Py<PyAny>,
}

static CACHE: PyOnceLock<Cache> = PyOnceLock::new();

impl Cache {
    /// The cache, built on first use.
    pub fn get(py: Python<'_>) -> PyResult<&Cache> {
        CACHE.get_or_try_init(py, || Cache::build(py))
    }

    fn build(py: Python<'_>) -> PyResult<Cache> {
        let decimal = py.import("decimal")?.getattr("Decimal")?.unbind();
        let uuid_mod = py.import("uuid")?;
        let std_uuid = uuid_mod.getattr("UUID")?.cast_into::<PyType>()?;
        let datetime = py.import("datetime")?;
        let date_cls = datetime.getattr("date")?;
        let dt_cls = datetime.getattr("datetime")?;
        let abc = py.import("collections.abc")?;
        Ok(Cache {
            decimal,
            uuid: make_uuid_type(py, &uuid_mod, &std_uuid)?,
            std_uuid: std_uuid.unbind(),
            utc: PyTzInfo::utc(py)?.to_owned().unbind(),
            date_max: date_cls.getattr("max")?.cast_into::<PyDate>()?.unbind(),
            date_min: date_cls.getattr("min")?.cast_into::<PyDate>()?.unbind(),
            datetime_max: dt_cls.getattr("max")?.cast_into::<PyDateTime>()?.unbind(),
            datetime_min: dt_cls.getattr("min")?.cast_into::<PyDateTime>()?.unbind(),
            abc_iterable: abc.getattr("Iterable")?.unbind(),
            abc_sized: abc.getattr("Sized")?.unbind(),
            abc_mapping: abc.getattr("Mapping")?.unbind(),
        })
    }
}

/// Builds `ferropg.pgproto.UUID`: a slot-less subclass of `uuid.UUID`, so instances are
/// `uuid.UUID`s in every way that matters (isinstance, ==, hash, str) but can be made
/// by filling the `int` slot directly instead of running `uuid.UUID.__init__`.
fn make_uuid_type(
    py: Python<'_>,
    uuid_mod: &Bound<'_, PyModule>,
    base: &Bound<'_, PyType>,
) -> PyResult<Py<PyType>> {
    let ns = PyDict::new(py);
    ns.set_item("__slots__", PyTuple::empty(py))?;
    ns.set_item("__module__", "ferropg.pgproto")?;
    ns.set_item("__doc__", "A uuid.UUID built straight from the wire.")?;
    // uuid.UUID.__init__ sets `is_safe`; a class attribute serves every instance.
    ns.set_item("is_safe", uuid_mod.getattr("SafeUUID")?.getattr("unknown")?)?;
    let builtins = py.import("builtins")?;
    let ty = builtins
        .getattr("type")?
        .call1(("UUID", PyTuple::new(py, [base])?, ns))?;
    Ok(ty.cast_into::<PyType>()?.unbind())
}

/// The UUID subclass, for the Python package to export.
pub fn uuid_type(py: Python<'_>) -> PyResult<Py<PyType>> {
    Ok(Cache::get(py)?.uuid.clone_ref(py))
}
