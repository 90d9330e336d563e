//! Arrays in PostgreSQL's text form (`{a,"b c",NULL,{...}}`), for element types that
//! only have a text codec.

use super::{DecodeError, EncodeError};

/// The deepest nesting the server allows.
pub const MAX_DIMS: usize = 6;

/// One level of a parsed array: sub-arrays or elements (`None` for NULL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A (sub-)array.
    Array(Vec<Node>),
    /// An element.
    Elem(Option<String>),
}

/// Parses an array literal whose elements are separated by `delim`. A leading
/// dimension decoration (`[0:2]=`) is accepted and dropped.
pub fn parse(text: &str, delim: u8) -> Result<Node, DecodeError> {
    let bytes = text.as_bytes();
    let mut pos = 0;
    if bytes.first() == Some(&b'[') {
        let eq = text
            .find('=')
            .ok_or(DecodeError("invalid array dimensions"))?;
        pos = eq + 1;
    }
    let mut p = Parser { bytes, pos, delim };
    p.skip_ws();
    let node = p.array(0)?;
    p.skip_ws();
    if p.pos != bytes.len() {
        return Err(DecodeError("trailing data after array"));
    }
    Ok(node)
}

struct Parser<'a> {
    bytes: &'a [u8],
    pos: usize,
    delim: u8,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.pos += 1;
        }
    }

    fn array(&mut self, depth: usize) -> Result<Node, DecodeError> {
        if depth >= MAX_DIMS {
            return Err(DecodeError("array nested too deeply"));
        }
        if self.peek() != Some(b'{') {
            return Err(DecodeError("array must start with '{'"));
        }
        self.pos += 1;
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(Node::Array(items));
        }
        loop {
            self.skip_ws();
            let item = match self.peek() {
                Some(b'{') => self.array(depth + 1)?,
                Some(b'"') => Node::Elem(Some(self.quoted()?)),
                Some(_) => self.unquoted()?,
                None => return Err(DecodeError("array ends early")),
            };
            items.push(item);
            self.skip_ws();
            match self.peek() {
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(Node::Array(items));
                }
                Some(c) if c == self.delim => self.pos += 1,
                _ => return Err(DecodeError("expected a delimiter or '}' in array")),
            }
        }
    }

    fn quoted(&mut self) -> Result<String, DecodeError> {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    break;
                }
                Some(b'\\') => {
                    let c = *self
                        .bytes
                        .get(self.pos + 1)
                        .ok_or(DecodeError("array ends inside an escape"))?;
                    out.push(c);
                    self.pos += 2;
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
                None => return Err(DecodeError("unterminated quoted array element")),
            }
        }
        String::from_utf8(out).map_err(|_| DecodeError("invalid UTF-8 in array element"))
    }

    fn unquoted(&mut self) -> Result<Node, DecodeError> {
        let start = self.pos;
        let mut out = Vec::new();
        while let Some(c) = self.peek() {
            if c == self.delim || c == b'}' || c == b'{' || c == b'"' {
                break;
            }
            if c == b'\\' {
                let e = *self
                    .bytes
                    .get(self.pos + 1)
                    .ok_or(DecodeError("array ends inside an escape"))?;
                out.push(e);
                self.pos += 2;
                continue;
            }
            out.push(c);
            self.pos += 1;
        }
        if self.pos == start {
            return Err(DecodeError("empty unquoted array element"));
        }
        while out.last().is_some_and(|c| c.is_ascii_whitespace()) {
            out.pop();
        }
        let raw = &self.bytes[start..self.pos];
        if !raw.contains(&b'\\') && out.eq_ignore_ascii_case(b"NULL") {
            return Ok(Node::Elem(None));
        }
        String::from_utf8(out)
            .map(|s| Node::Elem(Some(s)))
            .map_err(|_| DecodeError("invalid UTF-8 in array element"))
    }
}

/// Appends one element, quoted when the server could misread it otherwise.
pub fn write_element(value: Option<&str>, delim: u8, out: &mut String) {
    let Some(v) = value else {
        out.push_str("NULL");
        return;
    };
    let needs_quotes = v.is_empty()
        || v.eq_ignore_ascii_case("NULL")
        || v.bytes().any(|c| {
            c == delim || matches!(c, b'{' | b'}' | b'"' | b'\\') || c.is_ascii_whitespace()
        });
    if !needs_quotes {
        out.push_str(v);
        return;
    }
    out.push('"');
    for c in v.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// Writes a nested array literal.
pub fn write(node: &Node, delim: u8, out: &mut String) -> Result<(), EncodeError> {
    match node {
        Node::Elem(v) => write_element(v.as_deref(), delim, out),
        Node::Array(items) => {
            out.push('{');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(char::from(delim));
                }
                write(item, delim, out)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(s: &str) -> Node {
        Node::Elem(Some(s.into()))
    }

    #[test]
    fn parses_what_the_server_writes() {
        assert_eq!(parse("{}", b',').unwrap(), Node::Array(vec![]));
        assert_eq!(
            parse(r#"{a,"b c",NULL,"NULL","x\"y\\z",""}"#, b',').unwrap(),
            Node::Array(vec![
                e("a"),
                e("b c"),
                Node::Elem(None),
                e("NULL"),
                e("x\"y\\z"),
                e("")
            ])
        );
        assert_eq!(
            parse("[0:1]={{1,2},{3,4}}", b',').unwrap(),
            Node::Array(vec![
                Node::Array(vec![e("1"), e("2")]),
                Node::Array(vec![e("3"), e("4")])
            ])
        );
        assert_eq!(
            parse("{(1,2),(3,4);(5,6),(7,8)}", b';').unwrap(),
            Node::Array(vec![e("(1,2),(3,4)"), e("(5,6),(7,8)")])
        );
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "{",
            "{a",
            "{a,}",
            "{\"a}",
            "a",
            "{a}x",
            "{{{{{{{1}}}}}}}",
            "[1:2",
        ] {
            assert!(parse(bad, b',').is_err(), "{bad:?}");
        }
    }

    #[test]
    fn writes_what_parses_back() {
        let node = Node::Array(vec![
            e("plain"),
            e(""),
            e("with space"),
            e("q\"uote"),
            e("NULL"),
            Node::Elem(None),
            e("a,b"),
        ]);
        let mut out = String::new();
        write(&node, b',', &mut out).unwrap();
        assert_eq!(parse(&out, b',').unwrap(), node);
    }
}
