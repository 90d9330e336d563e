//! The process's environment, files and sockets, as the core's connection rules
//! ask about them ([`ferropg_core::config::Environment`]).

use std::os::unix::fs::{FileTypeExt, PermissionsExt};

use ferropg_core::config::{Environment, FileKind};

/// This process: `std::env` and the file system.
pub(crate) struct Process;

impl Environment for Process {
    fn var(&self, name: &str) -> Option<String> {
        // An empty variable counts as unset (libpq's rule).
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }

    fn home(&self) -> Option<String> {
        self.var("HOME")
    }

    fn read_file(&self, path: &str) -> Result<Option<String>, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    fn file_kind(&self, path: &str) -> Option<FileKind> {
        let meta = std::fs::metadata(path).ok()?;
        Some(FileKind {
            regular: meta.is_file(),
            mode: meta.permissions().mode() & 0o777,
        })
    }

    fn socket_exists(&self, path: &str) -> bool {
        std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
    }
}
