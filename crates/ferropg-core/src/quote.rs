//! Values written into SQL text that the client builds (COPY options, arguments inlined
//! into COPY queries, identifiers, listener channels): quoted so that the server reads
//! back exactly the value, whatever the session's settings.
//!
//! A plain `'...'` literal holding a backslash is not safe to build: with
//! `standard_conforming_strings` off (a role, a database or `SET` can turn it off at
//! any time), the backslash escapes the next character, so a value ending in `\` or
//! holding `\'` ends the literal early. An escape string `E'...'` reads the same under
//! both settings once every backslash and every quote in it is doubled, so a value
//! with a backslash is written that way; one without is written `'...'` (quotes
//! doubled), which also reads the same under both settings. Identifiers in double
//! quotes take no backslash escapes in either setting; doubling `"` is enough.
//!
//! Every face builds its SQL through these functions: the rule lives here once.
//!
//! ```
//! use ferropg_core::quote;
//!
//! assert_eq!(quote::literal("it's").unwrap(), "'it''s'");
//! assert_eq!(quote::literal(r"it's a \ test").unwrap(), r"E'it''s a \\ test'");
//! assert_eq!(quote::identifier(r#"my "table""#).unwrap(), r#""my ""table""""#);
//! assert!(quote::literal("nul\0").is_err());
//! ```

use std::fmt;

/// Why a value cannot be written into SQL text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuoteError {
    /// PostgreSQL text cannot hold the NUL character.
    Nul,
    /// A quoted identifier cannot be empty.
    EmptyIdentifier,
}

impl fmt::Display for QuoteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QuoteError::Nul => "a string in SQL text cannot contain the NUL character",
            QuoteError::EmptyIdentifier => "an SQL identifier cannot be empty",
        })
    }
}

impl std::error::Error for QuoteError {}

/// `value` as an SQL string literal: `'...'` with quotes doubled, or, when it holds a
/// backslash, `E'...'` with backslashes and quotes doubled.
pub fn literal(value: &str) -> Result<String, QuoteError> {
    let mut out = String::with_capacity(value.len() + 4);
    push_literal(&mut out, value)?;
    Ok(out)
}

/// Appends `value` to `out` as [`literal`] writes it; `out` is unchanged on error.
pub fn push_literal(out: &mut String, value: &str) -> Result<(), QuoteError> {
    check_nul(value)?;
    if value.contains('\\') {
        out.push('E');
    }
    out.push('\'');
    push_doubling(out, value, |c| c == '\'' || c == '\\');
    out.push('\'');
    Ok(())
}

/// `name` as a quoted SQL identifier: `"..."` with double quotes doubled. The server
/// truncates names longer than 63 bytes, as it does for every identifier.
pub fn identifier(name: &str) -> Result<String, QuoteError> {
    let mut out = String::with_capacity(name.len() + 2);
    push_identifier(&mut out, name)?;
    Ok(out)
}

/// Appends `name` to `out` as [`identifier`] writes it; `out` is unchanged on error.
pub fn push_identifier(out: &mut String, name: &str) -> Result<(), QuoteError> {
    if name.is_empty() {
        return Err(QuoteError::EmptyIdentifier);
    }
    check_nul(name)?;
    out.push('"');
    push_doubling(out, name, |c| c == '"');
    out.push('"');
    Ok(())
}

/// `schema.name` (or just `name`) with both parts quoted.
pub fn qualified_name(schema: Option<&str>, name: &str) -> Result<String, QuoteError> {
    let mut out = String::with_capacity(name.len() + schema.map_or(0, str::len) + 5);
    if let Some(schema) = schema {
        push_identifier(&mut out, schema)?;
        out.push('.');
    }
    push_identifier(&mut out, name)?;
    Ok(out)
}

fn check_nul(value: &str) -> Result<(), QuoteError> {
    if value.as_bytes().contains(&0) {
        Err(QuoteError::Nul)
    } else {
        Ok(())
    }
}

fn push_doubling(out: &mut String, value: &str, doubled: impl Fn(char) -> bool) {
    for c in value.chars() {
        if doubled(c) {
            out.push(c);
        }
        out.push(c);
    }
}

/// Reads back a literal written by [`literal`]; None if `text` is not exactly one.
/// Tests and the fuzz target use it to check, without a server, that quoting
/// round-trips: it takes only what [`literal`] writes (`''` inside `'...'`; `\\` and
/// `''` inside `E'...'`), so a text that would mean something else to the server's
/// lexer is refused rather than misread.
pub fn parse_literal(text: &str) -> Option<String> {
    check_nul(text).ok()?;
    // The form is part of the check: `E` exactly when the value has a backslash.
    let (body, escaped) = match text.strip_prefix("E'") {
        Some(body) => (body, true),
        None => (text.strip_prefix('\'')?, false),
    };
    let value = parse_literal_body(body, escaped)?;
    (value.contains('\\') == escaped).then_some(value)
}

fn parse_literal_body(body: &str, escaped: bool) -> Option<String> {
    let mut value = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if !escaped => return None,
            '\\' => match chars.next()? {
                '\\' => value.push('\\'),
                _ => return None,
            },
            '\'' => match chars.next() {
                Some('\'') => value.push('\''),
                None => return Some(value),
                Some(_) => return None,
            },
            c => value.push(c),
        }
    }
    None
}

/// Reads back an identifier written by [`identifier`]; None if `text` is not
/// exactly one.
pub fn parse_identifier(text: &str) -> Option<String> {
    check_nul(text).ok()?;
    let body = text.strip_prefix('"')?;
    let mut name = String::with_capacity(body.len());
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        if c == '"' {
            match chars.next() {
                Some('"') => name.push('"'),
                None => return (!name.is_empty()).then_some(name),
                Some(_) => return None,
            }
        } else {
            name.push(c);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_double_quotes_and_backslashes() {
        assert_eq!(literal("").unwrap(), "''");
        assert_eq!(literal("plain").unwrap(), "'plain'");
        assert_eq!(literal("'").unwrap(), "''''");
        assert_eq!(literal("\\").unwrap(), "E'\\\\'");
        assert_eq!(
            literal("\\') TO STDOUT; DROP TABLE canary; --").unwrap(),
            "E'\\\\'') TO STDOUT; DROP TABLE canary; --'"
        );
        assert_eq!(literal("é€😀").unwrap(), "'é€😀'");
    }

    #[test]
    fn identifiers_double_double_quotes() {
        assert_eq!(identifier("t").unwrap(), "\"t\"");
        assert_eq!(identifier("a\"b").unwrap(), "\"a\"\"b\"");
        assert_eq!(identifier("back\\slash'").unwrap(), "\"back\\slash'\"");
        assert_eq!(qualified_name(Some("s\""), "t").unwrap(), "\"s\"\"\".\"t\"");
        assert_eq!(qualified_name(None, "t").unwrap(), "\"t\"");
    }

    #[test]
    fn nul_and_empty_names_are_refused_and_leave_the_output_alone() {
        assert_eq!(literal("a\0b"), Err(QuoteError::Nul));
        assert_eq!(identifier(""), Err(QuoteError::EmptyIdentifier));
        assert_eq!(identifier("\0"), Err(QuoteError::Nul));
        let mut out = String::from("COPY ");
        assert!(push_identifier(&mut out, "x\0").is_err());
        assert!(push_literal(&mut out, "x\0").is_err());
        assert_eq!(out, "COPY ");
    }

    #[test]
    fn parsing_reads_back_exactly_one_quoted_value() {
        for s in ["", "a'b", "\\", "\\'", "''\\\\", "x\"y", "🦀'\\"] {
            assert_eq!(parse_literal(&literal(s).unwrap()).as_deref(), Some(s));
            if !s.is_empty() {
                assert_eq!(
                    parse_identifier(&identifier(s).unwrap()).as_deref(),
                    Some(s)
                );
            }
        }
        assert_eq!(parse_literal("E'a'b'"), None);
        assert_eq!(parse_literal("E'a"), None);
        assert_eq!(parse_literal("'a\\b'"), None);
        assert_eq!(parse_literal("E'ab'"), None);
        assert_eq!(parse_identifier("\"a\"b\""), None);
        assert_eq!(parse_identifier("\"\""), None);
        assert_eq!(parse_literal("E'\0'"), None);
        assert_eq!(parse_identifier("\"\0\""), None);
    }
}
