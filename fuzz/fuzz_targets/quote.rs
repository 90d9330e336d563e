//! Arbitrary text through the quoting module: it must never panic, and what it writes
//! must be exactly one literal or identifier that reads back as the input.
#![no_main]

use ferropg_core::quote;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let has_nul = text.contains('\0');
    match quote::literal(text) {
        Ok(lit) => {
            assert!(!has_nul);
            assert!(!lit.contains('\0'));
            assert_eq!(quote::parse_literal(&lit).as_deref(), Some(text));
        }
        Err(_) => assert!(has_nul),
    }
    match quote::identifier(text) {
        Ok(ident) => {
            assert!(!has_nul && !text.is_empty());
            assert_eq!(quote::parse_identifier(&ident).as_deref(), Some(text));
        }
        Err(_) => assert!(has_nul || text.is_empty()),
    }
    // A hostile text is never mistaken for one of ours.
    if let Some(value) = quote::parse_literal(text) {
        assert_eq!(quote::literal(&value).as_deref(), Ok(text));
    }
    if let Some(name) = quote::parse_identifier(text) {
        assert_eq!(quote::identifier(&name).as_deref(), Ok(text));
    }
});
