//! inet/cidr and the geometric types from arbitrary bytes: each decoder accepts only
//! well-formed lengths and values, and what decodes re-encodes to the same bytes.
#![no_main]

use ferropg_core::types::{geometry, network};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = network::decode(data) {
        assert!(v.bits <= v.max_bits());
        assert_eq!(v.addr.len(), if v.v6 { 16 } else { 4 });
        let mut out = Vec::new();
        network::encode(v.addr, v.bits, v.is_cidr, &mut out).unwrap();
        // The flag byte is normalised to 0/1 on the way back.
        assert_eq!(out[0], data[0]);
        assert_eq!(out[1], data[1]);
        assert_eq!(out[2] != 0, data[2] != 0);
        assert_eq!(&out[3..], &data[3..]);
    }
    if let Ok(v) = geometry::decode_f64s::<4>(data) {
        let mut out = Vec::new();
        geometry::encode_f64s(&v, &mut out);
        assert_eq!(out, data);
    }
    assert_eq!(geometry::decode_f64s::<2>(data).is_ok(), data.len() == 16);
    if let Ok((closed, points)) = geometry::decode_path(data) {
        let mut out = vec![data[0]];
        geometry::encode_points(&points, &mut out).unwrap();
        assert_eq!(&out[1..], &data[1..]);
        assert_eq!(closed, data[0] != 0);
    }
});
