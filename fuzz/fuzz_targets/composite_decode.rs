//! Composite (record), range and multirange framing from arbitrary bytes: parsing never
//! panics, every field or bound it yields lies inside the input, and what parses
//! re-encodes to the same bytes.
#![no_main]

use bytes::BytesMut;
use ferropg_core::types::{begin_length, end_length, range, record};
use libfuzzer_sys::fuzz_target;

fn within(outer: &[u8], inner: &[u8]) -> bool {
    let (o, i) = (outer.as_ptr() as usize, inner.as_ptr() as usize);
    i >= o && i + inner.len() <= o + outer.len()
}

fuzz_target!(|data: &[u8]| {
    if let Ok(fields) = record::parse(data) {
        let declared = fields.len();
        let mut seen = Vec::new();
        let mut failed = false;
        let mut iter = fields.clone();
        for f in iter.by_ref() {
            match f {
                Ok((oid, value)) => {
                    if let Some(v) = value {
                        assert!(within(data, v));
                    }
                    seen.push((oid, value));
                }
                Err(_) => {
                    failed = true;
                    break;
                }
            }
        }
        assert!(seen.len() <= declared);
        if !failed && iter.finish().is_ok() {
            // A complete value re-encodes to itself.
            let mut out = BytesMut::new();
            let mut w = record::Writer::begin(&mut out, seen.len()).unwrap();
            for (oid, value) in &seen {
                match value {
                    None => w.null(&mut out, *oid),
                    Some(v) => {
                        w.start(&mut out, *oid);
                        out.extend_from_slice(v);
                        w.end(&mut out).unwrap();
                    }
                }
            }
            assert_eq!(&out[..], data);
        }
    }
    if let Ok(r) = range::decode(data) {
        for b in [r.lower, r.upper].into_iter().flatten() {
            assert!(within(data, b));
        }
        if r.flags & range::EMPTY != 0 {
            assert!(r.lower.is_none() && r.upper.is_none());
        }
        let mut out = BytesMut::from(&[r.flags][..]);
        for b in [r.lower, r.upper].into_iter().flatten() {
            let at = begin_length(&mut out);
            out.extend_from_slice(b);
            end_length(&mut out, at).unwrap();
        }
        assert_eq!(&out[..], data);
    }
    if let Ok(ranges) = range::split_multirange(data) {
        assert!(ranges.iter().all(|r| within(data, r)));
    }
});
