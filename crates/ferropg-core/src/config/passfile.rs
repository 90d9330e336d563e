//! The password file's rules (`~/.pgpass`, `PGPASSFILE`, `passfile=`): its lines and
//! which entry gives the password. Reading the file, and libpq's refusal of one that
//! others may read, are the faces' (they own the I/O and the warnings).
//!
//! ```
//! use ferropg_core::config::passfile;
//!
//! let entries = passfile::parse("# comment\ndb1:*:*:app:s3cret\n*:*:*:*:fallback\n");
//! assert_eq!(passfile::lookup(&entries, "db1", 5432, "shop", "app"), Some("s3cret"));
//! assert_eq!(passfile::lookup(&entries, "db2", 5432, "shop", "app"), Some("fallback"));
//! ```

/// One line of the file: host, port, database, user and password, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `hostname:port:database:username:password`, each field as written.
    pub fields: [String; 5],
}

impl Entry {
    /// Whether this entry serves `host`, `port`, `database` and `user`; `*` matches
    /// anything. Fields are compared as written, escapes included, as asyncpg does
    /// (`test\:db` in the file matches a database named `test\:db`).
    pub fn matches(&self, host: &str, port: &str, database: &str, user: &str) -> bool {
        let [h, p, d, u, _] = &self.fields;
        [(h, host), (p, port), (d, database), (u, user)]
            .iter()
            .all(|(field, value)| field.as_str() == "*" || field.as_str() == *value)
    }

    /// The password.
    pub fn password(&self) -> &str {
        &self.fields[4]
    }
}

/// The entries of a password file's text. Blank lines, comments and lines without
/// five fields are skipped. A colon separates fields unless a backslash escapes it;
/// an escaped backslash does not escape the colon after it.
pub fn parse(text: &str) -> Vec<Entry> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(parse_line)
        .collect()
}

fn parse_line(line: &str) -> Option<Entry> {
    let mut fields: Vec<String> = Vec::with_capacity(5);
    let mut field = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            // Kept as written (fields compare escapes included); the next character
            // is never a separator.
            '\\' => {
                field.push(c);
                if let Some(next) = chars.next() {
                    field.push(next);
                }
            }
            ':' if fields.len() < 4 => fields.push(std::mem::take(&mut field)),
            c => field.push(c),
        }
    }
    fields.push(field);
    let fields: [String; 5] = fields.try_into().ok()?;
    Some(Entry { fields })
}

/// The password of the first entry for `host`, `port`, `database` and `user`. A
/// Unix socket's host is written `localhost` in the file: pass that for one.
pub fn lookup<'e>(
    entries: &'e [Entry],
    host: &str,
    port: u16,
    database: &str,
    user: &str,
) -> Option<&'e str> {
    let port = port.to_string();
    entries
        .iter()
        .find(|e| e.matches(host, &port, database, user))
        .map(Entry::password)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_on_unescaped_colons() {
        let entries = parse(
            "\n# comment\nabc:*:*:user:for user@abc\n*:*:test\\:db:test\\\\:with escapes\nshort:line\n",
        );
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].fields[3], "user");
        assert_eq!(entries[1].fields[2], "test\\:db");
        assert_eq!(entries[1].fields[3], "test\\\\");
        assert_eq!(entries[1].password(), "with escapes");
    }

    #[test]
    fn the_first_matching_entry_wins() {
        let entries = parse("abc:*:*:user:one\ncde:5433:*:*:two\n*:*:*:*:three\n");
        assert_eq!(lookup(&entries, "abc", 5432, "d", "user"), Some("one"));
        assert_eq!(lookup(&entries, "cde", 5433, "d", "x"), Some("two"));
        assert_eq!(lookup(&entries, "cde", 5432, "d", "x"), Some("three"));
        assert_eq!(lookup(&[], "cde", 5432, "d", "x"), None);
    }

    #[test]
    fn a_password_may_hold_colons() {
        let entries = parse("h:1:d:u:pa:ss:word\n");
        assert_eq!(entries[0].password(), "pa:ss:word");
    }
}
