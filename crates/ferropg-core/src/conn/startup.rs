//! Startup and authentication, up to AuthenticationOk.

use bytes::BytesMut;

use crate::auth::{self, Scram};
use crate::error::Error;
use crate::message::backend::Message;
use crate::message::{frontend, Authentication};

/// What the client sends in its StartupMessage, and the password to answer with.
#[derive(Debug, Clone, Default)]
pub struct StartupParams {
    /// The role to log in as.
    pub user: String,
    /// The database; the server defaults it to the user's name.
    pub database: Option<String>,
    /// The password, for the methods that need one.
    pub password: Option<String>,
    /// Further run-time parameters (`application_name`, `client_encoding`, ...).
    pub options: Vec<(String, String)>,
}

pub(super) enum StartupStep {
    Continue,
}

enum AuthState {
    Waiting,
    Scram(Box<Scram>),
    Authenticated,
}

pub(super) struct Startup {
    params: StartupParams,
    state: AuthState,
}

impl Startup {
    pub(super) fn new(params: StartupParams) -> Self {
        Startup {
            params,
            state: AuthState::Waiting,
        }
    }

    pub(super) fn authenticated(&self) -> bool {
        matches!(self.state, AuthState::Authenticated)
    }

    pub(super) fn write_startup(&self, out: &mut BytesMut) -> Result<(), Error> {
        let p = &self.params;
        let mut pairs: Vec<(&str, &str)> = vec![("user", p.user.as_str())];
        if let Some(db) = &p.database {
            pairs.push(("database", db.as_str()));
        }
        for (k, v) in &p.options {
            pairs.push((k.as_str(), v.as_str()));
        }
        frontend::startup(pairs, out)?;
        Ok(())
    }

    /// The password to answer with; none given means an empty one, so that the server
    /// (not the client) reports the failure with its own SQLSTATE, as libpq-less drivers do.
    fn password(&self) -> &[u8] {
        self.params.password.as_deref().unwrap_or("").as_bytes()
    }

    pub(super) fn handle(
        &mut self,
        msg: Message<'_>,
        out: &mut BytesMut,
    ) -> Result<StartupStep, Error> {
        let Message::Authentication(auth) = msg else {
            if let Message::NegotiateProtocolVersion { .. } = msg {
                // We ask for 3.0 with no protocol options, which every server speaks.
                return Ok(StartupStep::Continue);
            }
            return Err(Error::Unexpected(format!(
                "{} during startup",
                super::message_name(&msg)
            )));
        };
        match auth {
            Authentication::Ok => {
                if let AuthState::Scram(_) = self.state {
                    return Err(Error::Auth(
                        "SCRAM authentication ended before the server proved itself".into(),
                    ));
                }
                self.state = AuthState::Authenticated;
            }
            Authentication::CleartextPassword => {
                let pw = self.password().to_vec();
                frontend::password(&pw, out)?;
            }
            Authentication::Md5Password { salt } => {
                let hash = auth::md5_password(&self.params.user, self.password(), salt);
                frontend::password(hash.as_bytes(), out)?;
            }
            Authentication::Sasl(mechanisms) => {
                let scram =
                    Scram::start(mechanisms.iter(), self.password(), None).map_err(Error::Auth)?;
                frontend::sasl_initial(scram.mechanism(), scram.message(), out)?;
                self.state = AuthState::Scram(Box::new(scram));
            }
            Authentication::SaslContinue(data) => {
                let AuthState::Scram(scram) = &mut self.state else {
                    return Err(Error::Unexpected("SASL continuation without SASL".into()));
                };
                scram.update(data).map_err(Error::Auth)?;
                frontend::sasl_response(scram.message(), out)?;
            }
            Authentication::SaslFinal(data) => {
                let AuthState::Scram(scram) = &mut self.state else {
                    return Err(Error::Unexpected("SASL final without SASL".into()));
                };
                scram.finish(data).map_err(Error::Auth)?;
                self.state = AuthState::Waiting;
            }
            Authentication::KerberosV5
            | Authentication::Gss
            | Authentication::GssContinue(_)
            | Authentication::Sspi => {
                return Err(Error::Auth(
                    "the server asked for GSSAPI/SSPI authentication, which this client does not support".into(),
                ));
            }
        }
        Ok(StartupStep::Continue)
    }
}
