//! PEP 249's `pyformat` parameters (`%s`, `%(name)s`) turned into PostgreSQL's `$n`,
//! for faces that take generic DB-API code.
//!
//! Placeholders count only outside string literals, quoted identifiers, dollar-quoted
//! strings and comments, so the scan follows PostgreSQL's lexer for those. Whether a
//! backslash escapes inside a plain `'...'` literal depends on the session's
//! `standard_conforming_strings`, which the caller passes in: a scan that guessed
//! wrong would see a placeholder inside a literal, or miss one outside it.
//!
//! `%%` stands for `%` wherever it is, literals included (the paramstyle's escape, as
//! in Python's `%` formatting); any other `%` outside quotes is an error.
//!
//! ```
//! use ferropg_core::placeholders::{convert, Parameters};
//!
//! let c = convert("SELECT %s, '%s', %s -- %s\n, '100%%'", true).unwrap();
//! assert_eq!(c.sql, "SELECT $1, '%s', $2 -- %s\n, '100%'");
//! assert_eq!(c.parameters, Parameters::Positional(2));
//! let c = convert("SELECT %(a)s + %(b)s * %(a)s", true).unwrap();
//! assert_eq!(c.sql, "SELECT $1 + $2 * $1");
//! assert_eq!(c.parameters, Parameters::Named(vec!["a".into(), "b".into()]));
//! ```

use std::fmt;

/// Which placeholders a statement used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parameters {
    /// None at all.
    None,
    /// `count` positional `%s`, numbered in order.
    Positional(usize),
    /// `%(name)s`, each distinct name once, in the order of first use (`$1` is the
    /// first name).
    Named(Vec<String>),
    /// Both kinds in one statement: never valid, reported for the caller's message.
    Mixed,
}

/// A statement with its placeholders numbered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    /// The SQL text with `$n` for each placeholder and `%` for each `%%`.
    pub sql: String,
    /// What the placeholders were.
    pub parameters: Parameters,
}

/// A statement whose placeholders cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaceholderError(pub String);

impl fmt::Display for PlaceholderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PlaceholderError {}

/// Numbers the `pyformat` placeholders of `sql`; `standard_conforming_strings` is the
/// session's setting (on since PostgreSQL 9.1 unless changed).
pub fn convert(
    sql: &str,
    standard_conforming_strings: bool,
) -> Result<Converted, PlaceholderError> {
    substitute(sql, standard_conforming_strings, |slot| {
        Ok(format!("${}", slot.number))
    })
}

/// One placeholder, as [`substitute`] hands it to its callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot<'a> {
    /// Its `$n`: positional placeholders in order; each distinct name once, in the
    /// order of first use.
    pub number: usize,
    /// The name of a `%(name)s`; `None` for `%s`.
    pub name: Option<&'a str>,
}

/// Replaces each `pyformat` placeholder of `sql` with what `replace` gives for it (and
/// each `%%` with `%`), with [`convert`]'s lexing; the callback's error stops it.
pub fn substitute(
    sql: &str,
    standard_conforming_strings: bool,
    mut replace: impl FnMut(Slot<'_>) -> Result<String, PlaceholderError>,
) -> Result<Converted, PlaceholderError> {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut positional = 0usize;
    let mut names: Vec<String> = Vec::new();
    let mut rest = sql;
    while let Some(c) = rest.chars().next() {
        let quoted = quoted_len(rest, &out, standard_conforming_strings);
        if quoted > 0 {
            // Inside quotes or a comment only `%%` changes.
            out.push_str(&rest[..quoted].replace("%%", "%"));
            rest = &rest[quoted..];
            continue;
        }
        if c != '%' {
            out.push(c);
            rest = &rest[c.len_utf8()..];
            continue;
        }
        let after = &rest[1..];
        if let Some(tail) = after.strip_prefix('%') {
            out.push('%');
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('s') {
            positional += 1;
            out.push_str(&replace(Slot {
                number: positional,
                name: None,
            })?);
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(') {
            let end = inner.find(")s").ok_or_else(|| {
                PlaceholderError("a %( placeholder is not closed with )s".to_owned())
            })?;
            let name = &inner[..end];
            let number = match names.iter().position(|n| n == name) {
                Some(i) => i + 1,
                None => {
                    names.push(name.to_owned());
                    names.len()
                }
            };
            out.push_str(&replace(Slot {
                number,
                name: Some(name),
            })?);
            rest = &inner[end + 2..];
        } else {
            let shown: String = after.chars().take(1).collect();
            return Err(PlaceholderError(format!(
                "unsupported placeholder '%{shown}': use %s or %(name)s, and %% for a percent sign"
            )));
        }
    }
    let parameters = match (positional, names.is_empty()) {
        (0, true) => Parameters::None,
        (n, true) => Parameters::Positional(n),
        (0, false) => Parameters::Named(names),
        _ => Parameters::Mixed,
    };
    Ok(Converted {
        sql: out,
        parameters,
    })
}

/// Whether `sql` holds a `$n` parameter outside quotes and comments (a statement
/// written in PostgreSQL's own style).
pub fn has_numbered(sql: &str, standard_conforming_strings: bool) -> bool {
    let mut rest = sql;
    // What was passed, with each quoted part as one space: enough for the lexer's
    // look back at the previous characters.
    let mut before = String::with_capacity(sql.len());
    while let Some(c) = rest.chars().next() {
        let quoted = quoted_len(rest, &before, standard_conforming_strings);
        if quoted > 0 {
            rest = &rest[quoted..];
            before.push(' ');
            continue;
        }
        if c == '$'
            && rest[1..].starts_with(|d: char| d.is_ascii_digit())
            && !before.ends_with(is_ident_char)
        {
            return true;
        }
        before.push(c);
        rest = &rest[c.len_utf8()..];
    }
    false
}

/// Whether `sql` holds more than one statement: a `;` outside quotes and comments with
/// more than whitespace and comments after it. Such a text cannot be prepared; it runs
/// with the simple protocol.
pub fn is_script(sql: &str, standard_conforming_strings: bool) -> bool {
    let mut rest = sql;
    let mut before = String::with_capacity(sql.len());
    let mut ended = false;
    while let Some(c) = rest.chars().next() {
        let quoted = quoted_len(rest, &before, standard_conforming_strings);
        let comment = rest.starts_with("--") || rest.starts_with("/*");
        if quoted > 0 {
            if ended && !comment {
                return true;
            }
            rest = &rest[quoted..];
            before.push(' ');
            continue;
        }
        if c == ';' {
            ended = true;
        } else if ended && !c.is_whitespace() {
            return true;
        }
        before.push(c);
        rest = &rest[c.len_utf8()..];
    }
    false
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// The length of the quoted string, quoted identifier, dollar-quoted string or
/// comment at the start of `rest` (0 when none starts there); `before` is the text
/// already passed, whose last character tells an `E'...'` prefix and a `$` inside
/// an identifier apart. An unterminated one runs to the end.
fn quoted_len(rest: &str, before: &str, scs: bool) -> usize {
    let bytes = rest.as_bytes();
    let prev = before.chars().last();
    let prev_ident = prev.is_some_and(is_ident_char);
    match bytes[0] {
        b'\'' => {
            // E'...' reads backslash escapes whatever the setting; the E was passed
            // already (it is the previous character, standing alone).
            let escape = !scs
                || (matches!(prev, Some('e' | 'E'))
                    && !before[..before.len() - 1].ends_with(is_ident_char));
            string_len(bytes, b'\'', escape)
        }
        b'"' => string_len(bytes, b'"', false),
        b'-' if bytes.get(1) == Some(&b'-') => rest.find('\n').map_or(rest.len(), |i| i + 1),
        b'/' if bytes.get(1) == Some(&b'*') => block_comment_len(bytes),
        b'$' if !prev_ident => dollar_quoted_len(rest),
        _ => 0,
    }
}

/// A string between `quote`s, a doubled quote standing for one; with `escape`, a
/// backslash escapes the next byte.
fn string_len(bytes: &[u8], quote: u8, escape: bool) -> usize {
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' if escape => i += 2,
            b if b == quote => {
                if bytes.get(i + 1) == Some(&quote) {
                    i += 2;
                } else {
                    return i + 1;
                }
            }
            _ => i += 1,
        }
    }
    bytes.len()
}

/// `/* ... */`, which nests in PostgreSQL.
fn block_comment_len(bytes: &[u8]) -> usize {
    let mut depth = 0usize;
    let mut i = 0;
    while i + 1 < bytes.len() {
        match (bytes[i], bytes[i + 1]) {
            (b'/', b'*') => {
                depth += 1;
                i += 2;
            }
            (b'*', b'/') => {
                depth -= 1;
                i += 2;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    bytes.len()
}

/// `$tag$ ... $tag$` (the tag may be empty); 0 when `rest` starts with `$` but no
/// dollar quote (`$1`, a lone `$`).
fn dollar_quoted_len(rest: &str) -> usize {
    let body = &rest[1..];
    let tag_len = body
        .char_indices()
        .find(|&(_, c)| !(c.is_alphanumeric() || c == '_'))
        .map_or(body.len(), |(i, _)| i);
    let tag = &body[..tag_len];
    if tag.starts_with(|c: char| c.is_ascii_digit()) || !body[tag_len..].starts_with('$') {
        return 0;
    }
    let opener = tag_len + 2;
    let closing = format!("${tag}$");
    rest[opener..]
        .find(&closing)
        .map_or(rest.len(), |i| opener + i + closing.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql(s: &str) -> String {
        convert(s, true).unwrap().sql
    }

    #[test]
    fn placeholders_inside_quotes_and_comments_are_text() {
        assert_eq!(
            sql(
                "SELECT %s, 'a %s', \"col %s\", $$ %s $$, $q$ %s $q$ -- %s\n, /* %s /* %s */ */ %s"
            ),
            "SELECT $1, 'a %s', \"col %s\", $$ %s $$, $q$ %s $q$ -- %s\n, /* %s /* %s */ */ $2"
        );
        assert_eq!(sql("SELECT 'it''s %s', %s"), "SELECT 'it''s %s', $1");
        assert_eq!(sql("SELECT E'\\' %s', %s"), "SELECT E'\\' %s', $1");
    }

    #[test]
    fn backslashes_follow_the_sessions_setting() {
        // With standard_conforming_strings off, '\'' does not end the literal.
        assert_eq!(
            convert("SELECT '\\' %s', %s", false).unwrap().sql,
            "SELECT '\\' %s', $1"
        );
        // With it on, the backslash is a character and the literal ends at the quote.
        assert_eq!(
            convert("SELECT '\\', %s", true).unwrap().sql,
            "SELECT '\\', $1"
        );
        // An identifier ending in e is not an E'' prefix.
        assert_eq!(sql("SELECT name'\\', %s"), "SELECT name'\\', $1");
    }

    #[test]
    fn percent_signs() {
        assert_eq!(
            sql("SELECT 5 %% 3, '100%%', %s"),
            "SELECT 5 % 3, '100%', $1"
        );
        assert!(convert("SELECT 5 % 3", true).is_err());
        assert!(convert("SELECT %d", true).is_err());
        assert!(convert("SELECT %(a", true).is_err());
        assert_eq!(sql("SELECT '5 % 3'"), "SELECT '5 % 3'");
    }

    #[test]
    fn parameters_are_counted_and_named() {
        assert_eq!(
            convert("SELECT 1", true).unwrap().parameters,
            Parameters::None
        );
        assert_eq!(
            convert("SELECT %s, %s", true).unwrap().parameters,
            Parameters::Positional(2)
        );
        assert_eq!(
            convert("SELECT %(x)s, %(y)s, %(x)s", true).unwrap(),
            Converted {
                sql: "SELECT $1, $2, $1".into(),
                parameters: Parameters::Named(vec!["x".into(), "y".into()]),
            }
        );
        assert_eq!(
            convert("SELECT %s, %(y)s", true).unwrap().parameters,
            Parameters::Mixed
        );
    }

    #[test]
    fn dollar_signs_that_are_not_quotes() {
        assert_eq!(sql("SELECT $1, a$b, %s"), "SELECT $1, a$b, $1");
        assert!(has_numbered("SELECT $1", true));
        assert!(has_numbered("SELECT x = any($12::int[])", true));
        assert!(!has_numbered(
            "SELECT '$1', \"$2\", $$ $3 $$, a$1 -- $4",
            true
        ));
        assert!(!has_numbered("SELECT 1", true));
    }

    #[test]
    fn substitution_sees_each_placeholder_once_per_use() {
        let mut seen = Vec::new();
        let c = substitute("SELECT %(a)s, '%(a)s', %(b)s, %(a)s", true, |slot| {
            seen.push((slot.number, slot.name.map(str::to_owned)));
            Ok(format!("<{}>", slot.name.unwrap_or("?")))
        })
        .unwrap();
        assert_eq!(c.sql, "SELECT <a>, '%(a)s', <b>, <a>");
        assert_eq!(
            seen,
            [
                (1, Some("a".into())),
                (2, Some("b".into())),
                (1, Some("a".into()))
            ]
        );
        let e = substitute("SELECT %s", true, |_| Err(PlaceholderError("no".into())));
        assert_eq!(e.unwrap_err().0, "no");
    }

    #[test]
    fn scripts_have_a_second_statement() {
        assert!(is_script(
            "CREATE TABLE t (); INSERT INTO t DEFAULT VALUES",
            true
        ));
        assert!(is_script("SELECT 1;SELECT 2", true));
        assert!(is_script("SELECT 1; 'x'", true));
        assert!(!is_script("SELECT 1;", true));
        assert!(!is_script("SELECT 1; -- done\n /* really */  ", true));
        assert!(!is_script("SELECT ';', \";\", $$;$$ -- ;x\n", true));
        assert!(!is_script("SELECT 1", true));
    }

    #[test]
    fn unterminated_quotes_run_to_the_end() {
        assert_eq!(sql("SELECT 'abc %s"), "SELECT 'abc %s");
        assert_eq!(sql("SELECT $x$ %s"), "SELECT $x$ %s");
        assert_eq!(sql("SELECT /* %s"), "SELECT /* %s");
        assert_eq!(sql("SELECT ü, %s"), "SELECT ü, $1");
    }
}
