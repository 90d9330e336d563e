//! inet and cidr as ipaddress objects: inet gives an address when its prefix covers
//! the whole address and an interface otherwise; cidr gives a network (asyncpg's rule).

use bytes::{BufMut, BytesMut};
use ferropg_core::types::network as net;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use super::decode::wire;
use super::encode::type_name;
use super::pytypes::PyTypes;

/// Decodes one inet (`cidr` false) or cidr value.
pub fn decode<'py>(py: Python<'py>, cidr: bool, buf: &[u8]) -> PyResult<Bound<'py, PyAny>> {
    let t = PyTypes::get(py)?;
    let v = net::decode(buf).map_err(wire)?;
    let addr = PyBytes::new(py, v.addr);
    if cidr || v.is_cidr {
        return t.ip_network.bind(py).call1(((addr, v.bits),));
    }
    if v.bits == v.max_bits() {
        t.ip_address.bind(py).call1((addr,))
    } else {
        t.ip_interface.bind(py).call1(((addr, v.bits),))
    }
}

/// Writes an ipaddress object (address, interface or network) or a str.
pub fn encode(cidr: bool, obj: &Bound<'_, PyAny>, buf: &mut BytesMut) -> PyResult<()> {
    let py = obj.py();
    let t = PyTypes::get(py)?;
    let obj = if obj.is_instance_of::<PyString>() {
        let parsed = if cidr {
            t.ip_network.bind(py).call1((obj,))
        } else {
            t.ip_address
                .bind(py)
                .call1((obj,))
                .or_else(|_| t.ip_interface.bind(py).call1((obj,)))
        };
        parsed.map_err(|e| PyValueError::new_err(e.value(py).to_string()))?
    } else {
        obj.clone()
    };
    let (addr, bits): (Bound<'_, PyAny>, u8) = if obj.is_instance(t.networks.bind(py))? {
        (
            obj.getattr("network_address")?,
            obj.getattr("prefixlen")?.extract()?,
        )
    } else if obj.is_instance(t.interfaces.bind(py))? {
        let bits = obj.getattr("network")?.getattr("prefixlen")?.extract()?;
        (obj.getattr("ip")?, bits)
    } else if obj.is_instance(t.addresses.bind(py))? {
        let bits = obj.getattr("max_prefixlen")?.extract()?;
        (obj.clone(), bits)
    } else {
        return Err(PyTypeError::new_err(format!(
            "an ipaddress address, interface or network, or a str expected (got type {})",
            type_name(&obj)
        )));
    };
    let packed: Vec<u8> = addr.getattr("packed")?.extract()?;
    let mut out = Vec::with_capacity(20);
    net::encode(&packed, bits, cidr, &mut out).map_err(|e| PyValueError::new_err(e.0))?;
    buf.put_slice(&out);
    Ok(())
}
