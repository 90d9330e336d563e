//! `target_session_attrs`: which kind of server a connection is made to, decided
//! from what each server reports about itself.
//!
//! ```
//! use ferropg_core::config::session::{ServerState, TargetSessionAttrs};
//!
//! let wanted: TargetSessionAttrs = "read-write".parse().unwrap();
//! let standby = ServerState { hot_standby: true, read_only: true };
//! let primary = ServerState { hot_standby: false, read_only: false };
//! assert!(!wanted.accepts(standby) && wanted.accepts(primary));
//! ```

use std::fmt;
use std::str::FromStr;

use super::ConfigError;

/// libpq's `target_session_attrs` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TargetSessionAttrs {
    /// Any server.
    #[default]
    Any,
    /// A server whose sessions accept writes by default.
    ReadWrite,
    /// A server whose sessions are read-only by default (a standby, or a primary
    /// with `default_transaction_read_only`).
    ReadOnly,
    /// A server that is not in recovery.
    Primary,
    /// A server in recovery (a hot standby).
    Standby,
    /// A standby if one is reachable, else any server.
    PreferStandby,
}

/// What a server says about itself: enough to decide every `target_session_attrs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerState {
    /// The server is in recovery (`in_hot_standby`, `pg_is_in_recovery()`).
    pub hot_standby: bool,
    /// New transactions are read-only by default: a standby, or
    /// `default_transaction_read_only` on.
    pub read_only: bool,
}

/// The query that tells a server's state when it did not report it at startup
/// (servers before PostgreSQL 14 do not report `in_hot_standby`): one row of two
/// text columns, read by [`ServerState::from_query`].
pub const STATE_QUERY: &str =
    "SELECT pg_catalog.pg_is_in_recovery()::text, pg_catalog.current_setting('transaction_read_only')";

impl ServerState {
    /// The state from the run-time parameters the server reported at startup
    /// (PostgreSQL 14 and later report `in_hot_standby` and
    /// `default_transaction_read_only`); `None` when they are missing, then ask
    /// with [`STATE_QUERY`].
    pub fn from_parameters<'a>(parameter: impl Fn(&str) -> Option<&'a str>) -> Option<ServerState> {
        let hot_standby = parameter("in_hot_standby")? == "on";
        let default_read_only = parameter("default_transaction_read_only")? == "on";
        Some(ServerState {
            hot_standby,
            read_only: hot_standby || default_read_only,
        })
    }

    /// The state from [`STATE_QUERY`]'s two values.
    pub fn from_query(in_recovery: &str, transaction_read_only: &str) -> ServerState {
        let hot_standby = matches!(in_recovery, "true" | "t" | "on");
        ServerState {
            hot_standby,
            read_only: hot_standby || transaction_read_only == "on",
        }
    }
}

impl TargetSessionAttrs {
    /// Whether a server in `state` is acceptable on the first pass over the hosts.
    pub fn accepts(self, state: ServerState) -> bool {
        match self {
            TargetSessionAttrs::Any => true,
            TargetSessionAttrs::ReadWrite => !state.read_only,
            TargetSessionAttrs::ReadOnly => state.read_only,
            TargetSessionAttrs::Primary => !state.hot_standby,
            TargetSessionAttrs::Standby | TargetSessionAttrs::PreferStandby => state.hot_standby,
        }
    }

    /// Whether a server's state must be known at all (it must not for `any`).
    pub fn needs_state(self) -> bool {
        self != TargetSessionAttrs::Any
    }

    /// With no server accepted on the first pass, whether a second pass takes any
    /// server (`prefer-standby` only).
    pub fn falls_back_to_any(self) -> bool {
        self == TargetSessionAttrs::PreferStandby
    }

    /// The name as libpq writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetSessionAttrs::Any => "any",
            TargetSessionAttrs::ReadWrite => "read-write",
            TargetSessionAttrs::ReadOnly => "read-only",
            TargetSessionAttrs::Primary => "primary",
            TargetSessionAttrs::Standby => "standby",
            TargetSessionAttrs::PreferStandby => "prefer-standby",
        }
    }
}

impl FromStr for TargetSessionAttrs {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Self, ConfigError> {
        Ok(match s {
            "any" => TargetSessionAttrs::Any,
            "read-write" => TargetSessionAttrs::ReadWrite,
            "read-only" => TargetSessionAttrs::ReadOnly,
            "primary" => TargetSessionAttrs::Primary,
            "standby" => TargetSessionAttrs::Standby,
            "prefer-standby" => TargetSessionAttrs::PreferStandby,
            other => {
                return Err(ConfigError(format!(
                    "invalid target_session_attrs value: {other:?} (expected any, read-write, \
                     read-only, primary, standby or prefer-standby)"
                )))
            }
        })
    }
}

impl fmt::Display for TargetSessionAttrs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRIMARY: ServerState = ServerState {
        hot_standby: false,
        read_only: false,
    };
    const READ_ONLY_PRIMARY: ServerState = ServerState {
        hot_standby: false,
        read_only: true,
    };
    const STANDBY: ServerState = ServerState {
        hot_standby: true,
        read_only: true,
    };

    #[test]
    fn each_value_accepts_its_servers() {
        use TargetSessionAttrs::*;
        let cases = [
            (Any, [true, true, true]),
            (ReadWrite, [true, false, false]),
            (ReadOnly, [false, true, true]),
            (Primary, [true, true, false]),
            (Standby, [false, false, true]),
            (PreferStandby, [false, false, true]),
        ];
        for (attrs, expected) in cases {
            let got = [PRIMARY, READ_ONLY_PRIMARY, STANDBY].map(|s| attrs.accepts(s));
            assert_eq!(got, expected, "{attrs}");
            assert_eq!(attrs.as_str().parse::<TargetSessionAttrs>().unwrap(), attrs);
        }
        assert!(PreferStandby.falls_back_to_any() && !Standby.falls_back_to_any());
        assert!("read_write".parse::<TargetSessionAttrs>().is_err());
    }

    #[test]
    fn state_from_parameters_or_a_query() {
        let params = |standby: &'static str, ro: &'static str| {
            move |name: &str| match name {
                "in_hot_standby" => Some(standby),
                "default_transaction_read_only" => Some(ro),
                _ => None,
            }
        };
        assert_eq!(
            ServerState::from_parameters(params("on", "off")),
            Some(STANDBY)
        );
        assert_eq!(
            ServerState::from_parameters(params("off", "on")),
            Some(READ_ONLY_PRIMARY)
        );
        assert_eq!(ServerState::from_parameters(|_| None), None);
        assert_eq!(ServerState::from_query("t", "on"), STANDBY);
        assert_eq!(ServerState::from_query("false", "off"), PRIMARY);
    }
}
