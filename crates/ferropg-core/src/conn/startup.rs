//! Startup and authentication, up to AuthenticationOk.

use bytes::BytesMut;

use crate::auth::{self, ChannelBindingMode, Scram};
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
    /// libpq's `channel_binding`.
    pub channel_binding: ChannelBindingMode,
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
    /// The TLS server certificate's binding data, when the connection uses TLS.
    end_point: Option<Vec<u8>>,
    /// A SCRAM-SHA-256-PLUS exchange completed.
    bound: bool,
}

impl Startup {
    pub(super) fn new(params: StartupParams) -> Self {
        Startup {
            params,
            state: AuthState::Waiting,
            end_point: None,
            bound: false,
        }
    }

    /// The connection runs over TLS with this server certificate (DER).
    pub(super) fn set_server_certificate(&mut self, certificate: &[u8]) {
        self.end_point = auth::tls_server_end_point(certificate);
    }

    /// Refuses a method other than bound SCRAM when `channel_binding=require`.
    fn check_binding(&self, method: &str) -> Result<(), Error> {
        if self.params.channel_binding == ChannelBindingMode::Require && !self.bound {
            return Err(Error::Auth(format!(
                "channel binding is required, but the server authenticated the client \
                 with {method}, without channel binding"
            )));
        }
        Ok(())
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
                self.check_binding("no password (trust, or a certificate)")?;
                self.state = AuthState::Authenticated;
            }
            Authentication::CleartextPassword => {
                self.check_binding("a cleartext password")?;
                let pw = self.password().to_vec();
                frontend::password(&pw, out)?;
            }
            Authentication::Md5Password { salt } => {
                self.check_binding("MD5")?;
                let hash = auth::md5_password(&self.params.user, self.password(), salt);
                frontend::password(hash.as_bytes(), out)?;
            }
            Authentication::Sasl(mechanisms) => {
                let scram = Scram::start(
                    mechanisms.iter(),
                    self.password(),
                    self.params.channel_binding,
                    self.end_point.as_deref(),
                )
                .map_err(Error::Auth)?;
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
                self.bound = scram.is_bound();
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
