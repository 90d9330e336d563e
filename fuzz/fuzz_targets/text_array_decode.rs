//! Arrays in text form from arbitrary text: parsing never panics or nests beyond the
//! limit, and whatever parses is written back to a literal that parses to the same tree.
#![no_main]

use ferropg_core::types::text_array::{parse, write, Node, MAX_DIMS};
use libfuzzer_sys::fuzz_target;

fn depth(n: &Node) -> usize {
    match n {
        Node::Elem(_) => 0,
        Node::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for delim in [b',', b';'] {
        if let Ok(node) = parse(text, delim) {
            assert!(depth(&node) <= MAX_DIMS);
            let mut out = String::new();
            write(&node, delim, &mut out).unwrap();
            assert_eq!(parse(&out, delim).as_ref(), Ok(&node), "{out:?}");
        }
    }
});
