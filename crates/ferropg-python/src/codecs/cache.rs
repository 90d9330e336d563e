//! Python objects the codecs need on every call, looked up once per interpreter.

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDate, PyDateTime, PyType, PyTzInfo};

/// Cached classes and constants.
pub struct Cache {
    /// `decimal.Decimal`.
    pub decimal: Py<PyAny>,
    /// Our fast `uuid.UUID` subclass.
    pub uuid: Py<PyType>,
    /// `uuid.UUID` itself.
    pub std_uuid: Py<PyType>,
    /// Where `uuid.UUID`'s `int` slot lives in an instance, when its descriptor says.
    pub uuid_int_offset: Option<isize>,
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
        let std_uuid = py.import("uuid")?.getattr("UUID")?.cast_into::<PyType>()?;
        let datetime = py.import("datetime")?;
        let date_cls = datetime.getattr("date")?;
        let dt_cls = datetime.getattr("datetime")?;
        let abc = py.import("collections.abc")?;
        let uuid_int_offset = member_offset(py, &std_uuid, "int");
        Ok(Cache {
            uuid_int_offset,
            decimal,
            uuid: make_uuid_type(py)?,
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

/// The instance offset of `cls`'s slot `name`, if `cls.__dict__[name]` is a member
/// descriptor of an object-typed slot.
fn member_offset(py: Python<'_>, cls: &Bound<'_, PyType>, name: &str) -> Option<isize> {
    let descr = cls.getattr("__dict__").ok()?.get_item(name).ok()?;
    let member_type = py
        .import("types")
        .ok()?
        .getattr("MemberDescriptorType")
        .ok()?;
    if !descr.get_type().is(&member_type) {
        return None;
    }
    // SAFETY: `descr` is exactly a member_descriptor, whose C layout pyo3-ffi mirrors
    // for the running interpreter; `d_member` points at the type's static PyMemberDef.
    unsafe {
        let d = descr.as_ptr().cast::<ffi::PyMemberDescrObject>();
        let member = (*d).d_member.cast::<ffi::PyMemberDef>();
        if member.is_null() || (*member).type_code != ffi::Py_T_OBJECT_EX {
            return None;
        }
        Some((*member).offset)
    }
}

/// Builds `ferropg.pgproto.UUID`: a slot-less subclass of `uuid.UUID`, so instances are
/// `uuid.UUID`s in every way that matters (isinstance, ==, hash, str) but can be made
/// by filling the `int` slot directly instead of running `uuid.UUID.__init__`.
fn make_uuid_type(py: Python<'_>) -> PyResult<Py<PyType>> {
    // `is_safe` is a class attribute (uuid.UUID.__init__ would set it per instance), so
    // uuid's own __setstate__ cannot run on these: they pickle and copy as a plain
    // uuid.UUID, which also unpickles where ferropg is not installed. For the same
    // reason a UUID made from Python sets only `int`. The class is built in a private
    // namespace: no module is registered under the package's names.
    let source = c"
import uuid

class UUID(uuid.UUID):
    \"\"\"A uuid.UUID built straight from the wire.\"\"\"

    __slots__ = ()
    __module__ = 'ferropg.pgproto.pgproto'
    is_safe = uuid.SafeUUID.unknown

    def __init__(self, hex=None, bytes=None, bytes_le=None, fields=None, int=None,
                 version=None, *, is_safe=None):
        parsed = uuid.UUID(hex, bytes, bytes_le, fields, int, version)
        object.__setattr__(self, 'int', parsed.int)

    def __reduce__(self):
        return (uuid.UUID, (None, None, None, None, self.int))
";
    let namespace = pyo3::types::PyDict::new(py);
    py.run(source, Some(&namespace), None)?;
    let class = namespace
        .get_item("UUID")?
        .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("UUID class not built"))?;
    Ok(class.cast_into::<PyType>()?.unbind())
}

/// The UUID subclass, for the Python package to export.
pub fn uuid_type(py: Python<'_>) -> PyResult<Py<PyType>> {
    Ok(Cache::get(py)?.uuid.clone_ref(py))
}
