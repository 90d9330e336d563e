//! Python classes of the less common types, looked up on first use: ferropg.types'
//! geometry, BitString and Range, and the ipaddress module's constructors.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

/// The classes, once per interpreter.
pub struct PyTypes {
    /// `ferropg.types.Point`.
    pub point: Py<PyAny>,
    /// `ferropg.types.Box`.
    pub box_: Py<PyAny>,
    /// `ferropg.types.Line`.
    pub line: Py<PyAny>,
    /// `ferropg.types.LineSegment`.
    pub lseg: Py<PyAny>,
    /// `ferropg.types.Path`.
    pub path: Py<PyAny>,
    /// `ferropg.types.Polygon`.
    pub polygon: Py<PyAny>,
    /// `ferropg.types.Circle`.
    pub circle: Py<PyAny>,
    /// `ferropg.types.BitString`.
    pub bitstring: Py<PyAny>,
    /// `ferropg.types.Range`.
    pub range: Py<PyAny>,
    /// `ipaddress.ip_address`.
    pub ip_address: Py<PyAny>,
    /// `ipaddress.ip_interface`.
    pub ip_interface: Py<PyAny>,
    /// `ipaddress.ip_network`.
    pub ip_network: Py<PyAny>,
    /// `(IPv4Network, IPv6Network)`, for isinstance.
    pub networks: Py<PyAny>,
    /// `(IPv4Interface, IPv6Interface)`.
    pub interfaces: Py<PyAny>,
    /// `(IPv4Address, IPv6Address)`.
    pub addresses: Py<PyAny>,
}

static TYPES: PyOnceLock<PyTypes> = PyOnceLock::new();

impl PyTypes {
    /// The classes, imported on first use.
    pub fn get(py: Python<'_>) -> PyResult<&PyTypes> {
        TYPES.get_or_try_init(py, || {
            let t = py.import("ferropg.types")?;
            let ip = py.import("ipaddress")?;
            let get = |m: &Bound<'_, PyModule>, n: &str| -> PyResult<Py<PyAny>> {
                Ok(m.getattr(n)?.unbind())
            };
            let pair = |a: &str, b: &str| -> PyResult<Py<PyAny>> {
                Ok(
                    pyo3::types::PyTuple::new(py, [ip.getattr(a)?, ip.getattr(b)?])?
                        .into_any()
                        .unbind(),
                )
            };
            Ok(PyTypes {
                point: get(&t, "Point")?,
                box_: get(&t, "Box")?,
                line: get(&t, "Line")?,
                lseg: get(&t, "LineSegment")?,
                path: get(&t, "Path")?,
                polygon: get(&t, "Polygon")?,
                circle: get(&t, "Circle")?,
                bitstring: get(&t, "BitString")?,
                range: get(&t, "Range")?,
                ip_address: get(&ip, "ip_address")?,
                ip_interface: get(&ip, "ip_interface")?,
                ip_network: get(&ip, "ip_network")?,
                networks: pair("IPv4Network", "IPv6Network")?,
                interfaces: pair("IPv4Interface", "IPv6Interface")?,
                addresses: pair("IPv4Address", "IPv6Address")?,
            })
        })
    }
}
