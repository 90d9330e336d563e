//! Arbitrary text through the placeholder scanner: it must never panic, must leave
//! text without `%` alone, and must agree with the quoting module: a literal that
//! `quote::literal` built is opaque to it under either `standard_conforming_strings`.
#![no_main]

use ferropg_core::placeholders::{convert, has_numbered, is_script, Parameters};
use ferropg_core::quote;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for scs in [true, false] {
        let converted = convert(text, scs);
        let _ = has_numbered(text, scs);
        let _ = is_script(text, scs);
        if !text.contains('%') {
            let c = converted.expect("text without % always converts");
            assert_eq!(c.sql, text);
            assert_eq!(c.parameters, Parameters::None);
        }
        if let Ok(lit) = quote::literal(text) {
            let sql = format!("SELECT {lit}, %s");
            let c = convert(&sql, scs).expect("a quoted literal hides its %");
            assert_eq!(c.parameters, Parameters::Positional(1));
            assert!(c.sql.ends_with(", $1"));
            let alone = format!("SELECT {lit}");
            assert!(!has_numbered(&alone, scs));
            assert!(!is_script(&alone, scs));
        }
    }
});
