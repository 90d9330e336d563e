//! The fixed-width decoders and the UUID text form, from arbitrary bytes: each decoder
//! accepts exactly its width (and reads it big-endian), the text decoders exactly valid
//! UTF-8, and `parse_uuid`/`format_uuid` round-trip.
#![no_main]

use ferropg_core::types::binary::*;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    assert_eq!(decode_bool(data).is_ok(), matches!(data, [0] | [1]));
    assert_eq!(
        decode_i16(data).ok(),
        data.try_into().ok().map(i16::from_be_bytes)
    );
    assert_eq!(
        decode_i32(data).ok(),
        data.try_into().ok().map(i32::from_be_bytes)
    );
    assert_eq!(
        decode_i64(data).ok(),
        data.try_into().ok().map(i64::from_be_bytes)
    );
    assert_eq!(
        decode_u32(data).ok(),
        data.try_into().ok().map(u32::from_be_bytes)
    );
    assert_eq!(
        decode_f32(data).ok().map(f32::to_bits),
        data.try_into().ok().map(u32::from_be_bytes)
    );
    assert_eq!(
        decode_f64(data).ok().map(f64::to_bits),
        data.try_into().ok().map(u64::from_be_bytes)
    );
    let uuid = decode_uuid(data);
    assert_eq!(uuid.is_ok(), data.len() == 16);
    if let Ok(u) = uuid {
        let text = format_uuid(&u);
        assert_eq!(text.len(), 36);
        assert_eq!(parse_uuid(&text), Some(u));
        assert_eq!(parse_uuid(&text.to_uppercase()), Some(u));
        assert_eq!(parse_uuid(&format!("{{{text}}}")), Some(u));
        assert_eq!(
            parse_uuid(&format!("urn:uuid:{}", text.replace('-', ""))),
            Some(u)
        );
    }
    let utf8 = std::str::from_utf8(data);
    assert_eq!(decode_text(data).ok(), utf8.ok());
    match decode_jsonb(data) {
        Ok(t) => {
            assert_eq!(data.first(), Some(&JSONB_VERSION));
            assert_eq!(t.as_bytes(), &data[1..]);
        }
        Err(_) => assert!(
            data.first() != Some(&JSONB_VERSION) || std::str::from_utf8(&data[1..]).is_err()
        ),
    }
    if let Ok(text) = utf8 {
        if let Some(u) = parse_uuid(text) {
            assert_eq!(parse_uuid(&format_uuid(&u)), Some(u));
            let t = text.trim();
            let t = t.strip_prefix("urn:uuid:").unwrap_or(t);
            let hex = t.bytes().filter(u8::is_ascii_hexdigit).count();
            assert_eq!(hex, 32, "{text:?} parsed with {hex} hex digits");
        }
    }
});
